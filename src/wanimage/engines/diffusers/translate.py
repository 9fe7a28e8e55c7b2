"""Chinese prompts for checkpoints whose text encoder reads English only.

CLIP (SD 2.1 / SD-Turbo, SDXL, SDXL-Turbo; FLUX.1 beside an English T5) was trained on English captions: a Chinese prompt
becomes unrelated tokens and an unrelated image. For those families the engine translates a
prompt holding any CJK ideograph before it reaches the pipeline, with the configured LLM
rewriter when there is one (the same endpoint as thinking/llm.py, called through llm_chat.py), else with a small MarianMT zh->en model pulled
with the preset (Helsinki-NLP/opus-mt-zh-en). The translation is what the model is given and
what the API reports as the revised prompt. Bilingual checkpoints (Qwen-Image, Z-Image, FLUX.2,
Wan's UMT5) get the prompt as written."""

from __future__ import annotations

import gc
import logging
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...llm_chat import LlmFailure, chat
from ...memory import drop_clean_file_pages, release_free_memory
from ..job import GenerationJob

log = logging.getLogger(__name__)

# CJK Unified Ideographs, Extension A, Compatibility Ideographs, Extensions B-F (supplementary plane)
_IDEOGRAPH = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
# text encoders that read English only: CLIP (SD, SDXL), CLIP + T5 v1.1 trained on English C4 (FLUX.1)
CLIP_FAMILIES = frozenset({"sd", "sdxl", "flux"})
MAX_NEW_TOKENS = 200  # CLIP reads 77 tokens: a longer translation would be cut anyway
REMEMBERED = 1024  # translations kept per engine (a long-running server must not grow without end)


def has_chinese(text: str | None) -> bool:
    """Any CJK ideograph: the prompt is Chinese, or mixes Chinese with other words."""
    return bool(text) and _IDEOGRAPH.search(text) is not None


def reads_chinese(family: str) -> bool:
    return family not in CLIP_FAMILIES


@dataclass(frozen=True)
class LlmEndpoint:
    """The thinking-mode LLM (Settings.thinking_llm_*), plain data so an engine factory pickles
    (Ray replicas build engines from it)."""

    url: str
    model: str
    key: str | None
    timeout: float


TRANSLATE_PROMPT = """Translate the user's image prompt into English for an image generator that reads
only English. Keep every detail, count, colour and position; keep English words as they are.
Answer with the English prompt only, nothing else."""


def llm_translation(llm: LlmEndpoint, text: str) -> str:
    """One chat call: `text` in English. Raises LlmFailure (also for an empty answer)."""
    messages = [{"role": "system", "content": TRANSLATE_PROMPT}, {"role": "user", "content": text}]
    content = chat(llm.url, llm.model, messages, timeout=llm.timeout, key=llm.key)
    english = re.sub(r"<think>.*?</think>", "", content, flags=re.S).strip().strip('"')
    if not english:
        raise LlmFailure(f"no translation in {content[:80]!r}")
    return english


def int8_weights(model, folder: Path):
    """`model` with its Linear layers in int8 (torch's dynamic quantization: int8 weights, each
    call's activations quantized as it runs, as CTranslate2 runs OPUS-MT models by default), its
    token embedding in 8-bit rows (a scale and zero point per row: one module for the three places
    that share the weight), and nothing left reading the weight file's memory mapping, whose pages
    are then dropped. opus-mt-zh-en's shape with random weights, 40 tokens from a 20-token prompt:
    0.57-0.62 CPU seconds against 1.05-1.32 in float32; about +0.15 GB resident after translating
    against +0.24 with a float32 embedding and +0.33 all float32 (docs/diffusers.md "CPU side by
    side"). Quantized layer by layer, the mapped pages dropped after each, so the float32 file is
    never resident whole beside the int8 copies."""
    import torch

    files = list(folder.glob("*.safetensors"))

    def drop_mapped_pages() -> None:
        for path in files:
            drop_clean_file_pages(path)

    quantize = torch.ao.quantization.quantize_dynamic
    layers = [layer for block in model.modules() if isinstance(block, torch.nn.ModuleList) for layer in block]
    in_layers = {id(module) for layer in layers for module in layer.modules()}
    outside = {name: torch.ao.quantization.default_dynamic_qconfig for name, module in model.named_modules()
               if isinstance(module, torch.nn.Linear) and id(module) not in in_layers}
    with warnings.catch_warnings():  # torch's notices that its quantization moves to torchao (2.13 has it)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor, torch.quantize_per_channel")
        warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated", category=DeprecationWarning)
        # the vocabulary-sized weights first, while little else is resident: the output projection
        # (lm_head) and the token embedding read the same 133 MB of the file (the load's peak 0.05 GB lower)
        quantize(model, outside, dtype=torch.qint8, inplace=True)
        drop_mapped_pages()
        int8_embeddings(model)
        # every other tensor but the Linear weights (quantized below) copied off the mapping:
        # norms, positions and the Linear biases, which the int8 layers keep as they are
        kept: dict[int, torch.Tensor] = {}
        for module in model.modules():
            own = [module.bias] if isinstance(module, torch.nn.Linear) else [*module.parameters(recurse=False),
                                                                              *module.buffers(recurse=False)]
            kept.update((id(t), t) for t in own if t is not None and not t.is_quantized)
        for tensor in kept.values():
            tensor.data = tensor.data.clone()
        drop_mapped_pages()
        for layer in layers:
            quantize(layer, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
            drop_mapped_pages()
    gc.collect()
    release_free_memory()
    return model


def int8_embeddings(model) -> None:
    """Every plain nn.Embedding in `model` replaced by torch's 8-bit one (rows quantized with their
    own scale and zero point), built once per weight: Marian's shared, encoder and decoder token
    embeddings are one weight (65001 x 512: 133 MB in float32, 34 MB so). Subclasses (Marian's
    sinusoidal positions) stay as they are."""
    import torch
    from torch.ao.nn.quantized import Embedding as Int8Embedding

    made: dict[int, torch.nn.Module] = {}
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is not torch.nn.Embedding:
                continue
            if id(child.weight) not in made:
                child.qconfig = torch.ao.quantization.float_qparams_weight_only_qconfig
                made[id(child.weight)] = Int8Embedding.from_float(child)
            setattr(parent, name, made[id(child.weight)])


class MarianTranslator:
    """A MarianMT zh->en checkpoint (a transformers folder), loaded on first use, on the CPU with
    int8 Linear layers and embedding (int8_weights: about 0.15 GB; a prompt takes well under a second), greedy so
    the same prompt translates the same way."""

    def __init__(self, path: str, before_load: Callable[[], None] | None = None) -> None:
        self.path = path
        self.before_load = before_load  # makes room: the engine's pipelines hand back their work buffers
        self._model = self._tokenizer = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                if self.before_load is not None:
                    self.before_load()
                from transformers import MarianMTModel, MarianTokenizer

                folder = Path(self.path).expanduser()
                self._tokenizer = MarianTokenizer.from_pretrained(folder)
                self._model = int8_weights(MarianMTModel.from_pretrained(folder).eval(), folder)
        return self._tokenizer, self._model

    def __call__(self, text: str) -> str:
        import torch

        tokenizer, model = self._load()
        batch = tokenizer([text], return_tensors="pt", truncation=True)
        with torch.inference_mode():
            out = model.generate(**batch, max_new_tokens=MAX_NEW_TOKENS, num_beams=1, do_sample=False)
        return tokenizer.decode(out[0], skip_special_tokens=True).strip()


class PromptTranslator:
    """Chinese -> English for one engine: the LLM first, the Marian model when the LLM fails or is
    not configured. None from `english` when nothing can translate (the prompt goes as written)."""

    def __init__(self, llm: LlmEndpoint | None, marian_path: str | None,
                 before_load: Callable[[], None] | None = None) -> None:
        self.llm = llm
        self.marian = MarianTranslator(marian_path, before_load) if marian_path else None
        self._seen: dict[str, str] = {}  # a set's shared context and retries translate once

    @property
    def available(self) -> bool:
        return self.llm is not None or self.marian is not None

    def english(self, text: str) -> str | None:
        if text in self._seen:
            return self._seen[text]
        if text in self._seen.values():  # already a translation (a prepared job): never translate it again
            return text
        out = None
        if self.llm is not None:
            try:
                out = llm_translation(self.llm, text)
            except LlmFailure as exc:
                log.warning("translation by the LLM at %s failed (%s)%s", self.llm.url, exc,
                            "; the MarianMT model translates" if self.marian else "")
        if not out and self.marian is not None:
            out = self.marian(text)
        if out:
            if len(self._seen) >= REMEMBERED:
                self._seen.clear()
            self._seen[text] = out
        return out or None


def in_english(job: GenerationJob, translator: PromptTranslator | None, model: str) -> GenerationJob:
    """The job with every Chinese prompt (and negative prompt) translated; the revised prompt is
    the translation, so the API says what the model was given. Unchanged without Chinese."""
    texts = [*job.prompts, job.revised_prompt or job.prompt, job.negative_prompt]
    if not any(has_chinese(t) for t in texts):
        return job
    if translator is None or not translator.available:
        log.warning("%s: a Chinese prompt goes to a text encoder that reads English only (CLIP), and no "
                    "translator is configured: pull the preset's translation model or set an LLM rewriter", model)
        return job

    def english(text: str | None) -> str | None:
        return (translator.english(text) or text) if has_chinese(text) else text

    revised = english(job.revised_prompt or job.prompt)
    log.info("%s: Chinese prompt translated for CLIP: %r -> %r", model, job.prompt, revised)
    return job.model_copy(update={"prompts": tuple(english(p) for p in job.prompts), "revised_prompt": revised,
                                  "negative_prompt": english(job.negative_prompt)})
