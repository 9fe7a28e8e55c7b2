"""`wanimage generate` in this process: the server's own pipeline, so the same request and seed
give the same pixels as the server."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from ..config import Settings
from ..core.inputs import ImageFetcher, decode_image
from ..core.pipeline import Pipeline
from ..core.provenance import Provenance
from ..core.request import GenerationRequest
from ..engines.base import PreviewFn
from ..engines.factories import build_registry
from ..thinking import build_planner
from .progress import progress_bar


async def _load_images(refs: list[Path | str], settings: Settings):
    fetcher = ImageFetcher(settings)
    images = []
    for k, ref in enumerate(refs, start=1):
        if isinstance(ref, Path):
            images.append(decode_image(ref.read_bytes(), k, max_bytes=settings.max_image_bytes))
        else:
            images.append(await fetcher.fetch(ref, k))
    return [i.image for i in images]


def _quiet_library_bars() -> None:
    """transformers draws its own "Loading weights" bar, which would split ours. It reads
    huggingface_hub's switch when it is imported, so transformers itself is not imported here
    (seconds, for an engine that may never need it)."""
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
    if "transformers" in sys.modules:  # imported already: its own switch was read
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


async def render_here(req: GenerationRequest, refs: list[Path | str], settings: Settings) -> list[bytes]:
    _quiet_library_bars()
    pipeline = Pipeline(build_registry(settings), planner=build_planner(settings),
                        png_level=settings.png_compress_level,
                        provenance=Provenance.from_settings(settings))  # marks on every PNG
    inputs = await _load_images(refs, settings)
    job = pipeline.resolve(req, inputs)
    with progress_bar(f"{req.mode.value} {job.width}x{job.height}") as bar:

        def progress(fraction: float, preview: PreviewFn | None = None) -> None:
            bar.to(fraction * 0.99)  # the last percent is the PNG encoding below

        rendered = await asyncio.to_thread(pipeline.render, job, progress)
        bar.to(1.0)
    return rendered.pngs


def run_here(req: GenerationRequest, refs: list[Path | str], settings: Settings) -> list[bytes]:
    return asyncio.run(render_here(req, refs, settings))
