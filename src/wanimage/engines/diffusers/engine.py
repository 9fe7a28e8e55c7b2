"""DiffusersEngine: one API model id served by one family's diffusers pipelines.

    job mode            role (pipeline)     what the engine does around the pipeline call
    text-to-image       text_to_image       n calls, image i with generator seed + i
    text-to-image-set   text_to_image       per-image prompts ("image 1: ..."); images 2.. are edits
                        (+ edit)            of image 1 when the model has an edit role (chaining)
    edit, no boxes      edit                the input images as references (grouped/stitched
                                            beyond the family's limit, or a clear error)
    edit with boxes     inpaint             the last image at output size is the canvas, its boxes
                                            the mask; outside every box the output is the canvas,
                                            exactly (feathered blend inside the box edges)
    image-to-image-set  edit                per-image prompts as edits of the references (+ image 1)

Every call generates at the family's size (a multiple of its patch, at most max_generate_pixels),
then the result is resized to exactly the job size, with an optional img2img refine pass (the
second pass for 4K). One pipeline call per image: image i is reproducible alone, the same seed
gives the same pixels, and pipelines that take one prompt per call (Qwen EditPlus) need no
special case. Pipelines load on first use and unload after `idle_unload_seconds` (loader.py)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from functools import partial
from inspect import signature

import torch
from PIL import Image

from ...errors import InvalidParameter
from ...types import Box, Capabilities, Mode
from ..base import Canceled, Engine, GenerationJob, ProgressFn
from .acceleration import check_device
from .base import (
    Family,
    StepCallback,
    box_alpha,
    cap_pixels,
    composite,
    crop_sources,
    ensure_min_side,
    generation_size,
    generator,
    group_references,
    mask_image,
    palette_prompt,
    resize_exact,
    scale_boxes,
)
from .config import Checkpoint, ModelConfig, parse_size
from .loader import PipelineLoader, PipelinePool, local_path, module_bytes, resolve_dtype
from .models_dir import check_complete, folder_bytes, read_manifest
from .translate import LlmEndpoint, PromptTranslator, in_english, reads_chinese

log = logging.getLogger(__name__)


@dataclass
class _Call:
    role: str
    prompt: str
    seed: int
    refs: list[Image.Image]
    canvas: Image.Image | None = None  # inpaint: the last input image at output size
    boxes: list[Box] | None = None  # inpaint: boxes in output pixels


class DiffusersEngine(Engine):
    name = "diffusers"

    def __init__(self, model: str, cfg: ModelConfig, family: Family, device: str = "cpu",
                 pool: PipelinePool | None = None, preset: str | None = None, devices: list[str] | None = None,
                 llm: LlmEndpoint | None = None):
        self.model, self.cfg, self.family, self.preset = model, cfg, family, preset
        # CLIP reads English only: Chinese prompts are translated first (translate.py)
        self.pool = pool or PipelinePool()
        # its model loads at the first Chinese prompt, once the pipelines' work buffers are handed back
        self.translator = None if reads_chinese(family.name) else PromptTranslator(
            llm, cfg.translator, before_load=self.pool.release_buffers)
        self.device = cfg.device or device
        self.dtype = resolve_dtype(cfg.dtype, self.device)
        # FP8 / flash attention on a CPU refused here; `devices`: a context-parallel model's ranks (ranks.py)
        check_device(cfg, self.device, f"model {model}", devices)
        self.loader = PipelineLoader(model, cfg, family.hub_hint, self.device, self.dtype)
        for role, ckpt in cfg.roles.items():
            if ckpt.is_local and not ckpt.is_tiny and not local_path(ckpt.source).exists():
                raise FileNotFoundError(
                    f"{model}: the {role} checkpoint {ckpt.source} does not exist; download it with "
                    f"`hf download <repo id> --local-dir {ckpt.source}` ({family.hub_hint}) or use a Hub id"
                )
        self.capabilities = self._capabilities()
        if cfg.preload:
            for role in cfg.roles:
                self.pipeline(role)
            self._warm_up()

    # ------------------------------------------------------------------ capabilities

    def _capabilities(self) -> Capabilities:
        roles = self.cfg.roles
        modes = set()
        if "text_to_image" in roles:
            modes |= {Mode.TEXT_TO_IMAGE, Mode.TEXT_TO_IMAGE_SET}
        if "edit" in roles:
            modes |= {Mode.EDIT, Mode.IMAGE_TO_IMAGE_SET}
        if "inpaint" in roles:
            modes.add(Mode.EDIT)
        # stitching takes any count (the server caps it at 9); "error" refuses beyond the limit
        limit = 9 if self.cfg.reference_strategy == "stitch" else max(1, self.max_references)
        return Capabilities(modes=frozenset(modes), max_input_images=limit, bbox="inpaint" in roles,
                            unboxed_edits="edit" in roles, family=self.family.name,
                            palette=self.cfg.palette_prompt, previews=True)

    @property
    def max_references(self) -> int:
        return self.cfg.max_references or self.family.max_references

    # ------------------------------------------------------------------ generate

    def generate(self, job: GenerationJob, progress: ProgressFn) -> list[Image.Image]:
        with self.pool.lock:
            began = self.pool.clock()
            try:
                return self._generate(job, progress)
            finally:
                self.pool.touch(began)

    def prepare(self, job: GenerationJob) -> GenerationJob:
        """The job as this model reads it: Chinese prompts in English for a CLIP text encoder
        (core/pipeline.py reports the result as the revised prompt); as it is otherwise."""
        return job if self.translator is None else in_english(job, self.translator, self.model)

    def _generate(self, job: GenerationJob, progress: ProgressFn) -> list[Image.Image]:
        job = self.prepare(job)  # a no-op when the caller prepared it (no Chinese left)
        prompts = [palette_prompt(p, job.palette) if self.cfg.palette_prompt else p for p in job.prompts]
        if job.mode is Mode.TEXT_TO_IMAGE:
            if self.cfg.max_batch > 1 and job.n > 1:
                return self._run_batched(job, prompts[0], progress)
            calls = [_Call("text_to_image", p, job.seed + i, []) for i, p in enumerate(prompts)]
            return [self._run(job, c, progress, i, len(calls)) for i, c in enumerate(calls)]
        if job.mode is Mode.TEXT_TO_IMAGE_SET:
            chain = self.cfg.chain_sets and "edit" in self.cfg.roles
            out: list[Image.Image] = []
            for i, p in enumerate(prompts):
                if chain and i:
                    call = _Call("edit", p, job.seed + i, self._references([out[0]]))
                else:
                    call = _Call("text_to_image", p, job.seed + i, [])
                out.append(self._run(job, call, progress, i, len(prompts)))
            return out
        refs = crop_sources([im.convert("RGB") for im in job.images], job.source_boxes)
        if job.mode is Mode.EDIT and job.edit_boxes:
            canvas = resize_exact(refs[-1], job.width, job.height)
            calls = [_Call("inpaint", p, job.seed + i, refs[:-1], canvas, list(job.edit_boxes))
                     for i, p in enumerate(prompts)]
            return [self._run(job, c, progress, i, len(calls)) for i, c in enumerate(calls)]
        refs = self._references(refs)  # no `edit` role: submit refused edits without boxes (capabilities)
        if job.mode is Mode.EDIT:
            calls = [_Call("edit", p, job.seed + i, refs) for i, p in enumerate(prompts)]
            return [self._run(job, c, progress, i, len(calls)) for i, c in enumerate(calls)]
        out = []  # IMAGE_TO_IMAGE_SET
        for i, p in enumerate(prompts):
            chain = self.cfg.chain_sets and i and len(refs) < self.max_references
            chained = refs + self._references([out[0]]) if chain else refs
            out.append(self._run(job, _Call("edit", p, job.seed + i, chained), progress, i, len(prompts)))
        return out

    def _references(self, refs: list[Image.Image]) -> list[Image.Image]:
        refs = [cap_pixels(r, self.cfg.reference_pixels) for r in refs]
        if len(refs) > self.max_references:  # "stitch"; with "error", submit refused them (capabilities)
            refs = group_references(refs, self.max_references, self.cfg.reference_pixels)
        return [ensure_min_side(r, self.family.min_reference_side) for r in refs]

    # ------------------------------------------------------------------ one pipeline call

    def _run_batched(self, job: GenerationJob, prompt: str, progress: ProgressFn) -> list[Image.Image]:
        """Text-to-image in calls of up to max_batch images, one generator per image (seed + i),
        so image i equals the unbatched image i within float rounding (docs/diffusers.md)."""
        width, height = self._generation_size(job)
        out: list[Image.Image] = []
        for first in range(0, job.n, self.cfg.max_batch):
            seeds = [job.seed + i for i in range(first, min(job.n, first + self.cfg.max_batch))]
            images = self._call("text_to_image", {}, prompt, seeds, width, height, progress,
                                first / job.n, (first + len(seeds)) / job.n, job.negative_prompt)
            for i, image in zip(range(first, first + len(seeds)), images, strict=True):
                call = _Call("text_to_image", prompt, job.seed + i, [])
                out.append(self._finish(job, call, image, progress, (i + 1) / job.n, (i + 1) / job.n))
        return out

    def _generation_size(self, job: GenerationJob) -> tuple[int, int]:
        return generation_size(job.width, job.height, self.family.multiple,
                               self.cfg.max_generate_pixels or self.family.native_pixels)

    def _run(self, job: GenerationJob, call: _Call, progress: ProgressFn, i: int, count: int) -> Image.Image:
        """One image: the pipeline at generation size, resize (and refine) to the job size, and
        for box edits the exact composite onto the canvas."""
        refine = self.cfg.refine_strength > 0 and "refine" in self.cfg.roles
        width, height = self._generation_size(job)
        upscaled = width * height < job.width * job.height
        share = (1.0 / count) * (0.7 if refine and upscaled else 1.0)  # progress share of the main pass
        start = i / count
        kwargs = self._role_kwargs(call, width, height)
        image = self._call(call.role, kwargs, call.prompt, [call.seed], width, height, progress, start,
                           start + share, job.negative_prompt)[0]
        return self._finish(job, call, image, progress, start + share, (i + 1) / count)

    def _finish(self, job: GenerationJob, call: _Call, image: Image.Image, progress: ProgressFn,
                start: float, end: float) -> Image.Image:
        """Resize to the job size, refine when upscaled, composite box edits onto the canvas."""
        refine = self.cfg.refine_strength > 0 and "refine" in self.cfg.roles
        width, height = self._generation_size(job)
        upscaled = width * height < job.width * job.height
        image = resize_exact(image, job.width, job.height)
        if refine and upscaled:
            rw, rh = generation_size(job.width, job.height, self.family.multiple, None)
            kw = self.family.refine_kwargs(resize_exact(image, rw, rh), self.cfg.refine_strength)
            image = self._call("refine", kw, call.prompt, [call.seed], rw, rh, progress, start, end,
                               job.negative_prompt)[0]
            image = resize_exact(image, job.width, job.height)
        if call.canvas is not None:
            image = composite(image, call.canvas, box_alpha(call.boxes or [], job.width, job.height, self.cfg.feather))
        return image

    def _role_kwargs(self, call: _Call, width: int, height: int) -> dict:
        if call.role == "edit":
            return self.family.edit_kwargs(call.refs, width, height)
        if call.role == "inpaint":
            canvas = resize_exact(call.canvas, width, height)
            boxes = scale_boxes(call.boxes or [], call.canvas.size, (width, height))
            refs = call.refs
            if refs and not self.family.inpaint_references:
                log.warning("%s: %s box edits use the last image only; %d reference image(s) ignored",
                            self.model, self.family.name, len(refs))
                refs = []
            return self.family.inpaint_kwargs(canvas, mask_image(boxes, width, height),
                                              self._references(refs) if refs else [])
        return {}

    def _call(self, role: str, kwargs: dict, prompt: str, seeds: list[int], width: int, height: int,
              progress: ProgressFn, start: float, end: float, negative: str | None = None) -> list[Image.Image]:
        """One pipeline call for len(seeds) images (one generator each): their images. `negative`:
        the request's negative prompt, which wins over the config's."""
        steps_kw = self._sampling_kwargs(role, negative)
        callback = StepCallback(progress, start, end, steps_kw["num_inference_steps"],
                                partial(self._preview, width=width, height=height))
        batch = {"generator": generator(seeds[0])} if len(seeds) == 1 else {
            "generator": [generator(s) for s in seeds], self.family.batch_argument: len(seeds)}
        args = {"prompt": prompt, "width": width, "height": height, **batch,
                "callback_on_step_end": callback, "callback_on_step_end_tensor_inputs": ["latents"],
                **steps_kw, **kwargs, **self.cfg.call_kwargs}
        result = self._invoke(role, args)
        if callback.canceled:
            raise Canceled
        return self.family.images_of(result)[: len(seeds)]

    def _sampling_kwargs(self, role: str, negative: str | None) -> dict:
        """The family's call arguments for this role; with a request's negative prompt, that prompt
        in the config's place (the family still decides whether the role uses one, e.g. Qwen-Image
        only under true CFG, FLUX.1 Fill never), and never given to a pipeline without the argument."""
        cfg = self._role_config(role)
        if negative is None:
            return self.family.sampling_kwargs(role, cfg)
        kw = self.family.sampling_kwargs(role, replace(cfg, negative_prompt=negative))
        if "negative_prompt" in kw and "negative_prompt" not in signature(self.pipeline(role).__call__).parameters:
            del kw["negative_prompt"]
        if kw.get("negative_prompt") != negative:
            log.info("%s: negative_prompt ignored by the %s %s pipeline (it takes none, or only with true CFG)",
                     self.model, self.family.name, role)
        return kw

    def _warm_up(self) -> None:
        """compile + preload: one 2-step text-to-image call per configured size (batch 1), so the
        first requests at those sizes do not pay for compilation (compile is once per shape)."""
        if not (self.cfg.compile and self.cfg.warmup_sizes and "text_to_image" in self.cfg.roles):
            return
        for size in self.cfg.warmup_sizes:
            w, h = parse_size(size)
            width, height = generation_size(w, h, self.family.multiple,
                                            self.cfg.max_generate_pixels or self.family.native_pixels)
            began = time.monotonic()
            self._invoke("text_to_image", {"prompt": "warm-up", "width": width, "height": height,
                                           "generator": generator(0), **self.family.sampling_kwargs("text_to_image", self.cfg),
                                           "num_inference_steps": 2, **self.cfg.call_kwargs})
            log.info("%s: compiled for %dx%d in %.1fs", self.model, width, height, time.monotonic() - began)

    def _invoke(self, role: str, args: dict):
        """The pipeline call itself (ranks.py sends it to every rank of a context-parallel model)."""
        return self.pipeline(role)(**args)

    def _role_config(self, role: str) -> ModelConfig:
        """The model's config with this role's own steps / guidance, where its checkpoint sets them."""
        ckpt = self.cfg.roles.get(role)
        if ckpt is None or (ckpt.steps is None and ckpt.guidance is None):
            return self.cfg
        return replace(self.cfg, steps=ckpt.steps or self.cfg.steps,
                       guidance=ckpt.guidance if ckpt.guidance is not None else self.cfg.guidance)

    def _preview(self, pipe, latents: torch.Tensor, width: int, height: int) -> list[Image.Image]:
        return self.family.preview(pipe, latents, width, height)

    # ------------------------------------------------------------------ pipelines (loader.py)

    def _key(self, role: str, ckpt: Checkpoint) -> tuple[str, tuple]:
        """The role's pipeline class name and its key in the pool."""
        cls_name = ckpt.pipeline or self.family.pipelines[role]
        return cls_name, (ckpt.source, ckpt.revision, ckpt.variant, cls_name, self.loader.placement())

    def pipeline(self, role: str):
        """The pipeline for a role, from the pool shared by every model of the config file: loaded
        on first use (sharing modules with a loaded pipeline of the same checkpoint), resident
        until idle_unload_seconds without use."""
        ckpt = self.cfg.roles.get(role)
        if ckpt is None:
            raise InvalidParameter(f"model: {self.model} on this server has no {role} checkpoint", field="model")
        cls_name, key = self._key(role, ckpt)
        return self.pool.get(key, lambda siblings: self.loader.build(cls_name, ckpt, role, siblings),
                             self.cfg.idle_unload_seconds)

    def unload(self) -> None:
        """Drop this model's pipelines from the pool (shared modules stay while others use them)."""
        for role, ckpt in self.cfg.roles.items():
            self.pool.drop(self._key(role, ckpt)[1])

    # ------------------------------------------------------------------ introspection

    def describe(self) -> dict:
        """For `wanimage models`: the roles, their checkpoints, and what is resident (bytes of
        parameters and buffers; modules shared between roles are counted once)."""
        seen: set[int] = set()
        rows = []
        for role, ckpt in self.cfg.roles.items():
            cls_name, key = self._key(role, ckpt)
            pipe = self.pool.peek(key)
            nbytes = module_bytes(pipe, seen) if pipe is not None else 0
            rows.append({"role": role, "checkpoint": ckpt.source, "pipeline": cls_name,
                         "loaded": pipe is not None, "bytes": nbytes, **disk_state(ckpt)})
        vae = self.loader.vae_source()
        return {"model": self.model, "family": self.family.name, "preset": self.preset, "device": self.device,
                "dtype": str(self.dtype).removeprefix("torch."), "offload": self.cfg.offload, "runtime": self.cfg.backend,
                "vae": {"checkpoint": vae, **disk_state(Checkpoint(vae), component=True)} if vae else None,
                "roles": rows, "bytes": sum(r["bytes"] for r in rows),
                "disk_bytes": sum({r["checkpoint"]: r["disk_bytes"] or 0 for r in rows}.values())}


def disk_state(ckpt: Checkpoint, component: bool = False) -> dict:
    """on_disk: True / False for a local folder (complete by its pull manifest when it has one),
    None for a Hub id (from_pretrained's cache decides) and tiny components (built in memory).
    `component`: one diffusers model (config.json), not a pipeline (model_index.json)."""
    if ckpt.is_tiny or not ckpt.is_local:
        return {"on_disk": None, "disk_bytes": None}
    path = local_path(ckpt.source)
    manifest = read_manifest(path)
    on_disk = path.is_dir() and (path / ("config.json" if component else "model_index.json")).is_file()
    if manifest is not None:
        try:
            check_complete(path, manifest)
        except FileNotFoundError:
            on_disk = False
    return {"on_disk": on_disk, "disk_bytes": folder_bytes(path)}
