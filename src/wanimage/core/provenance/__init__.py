"""What every result PNG says about itself (docs/provenance.md): an invisible watermark in the
pixels, XMP labels (IPTC digital source type, GB 45438 `AIGC`), the A1111 `parameters` text, and a
signed C2PA manifest over all of it. `Provenance.finish` is called from the one place that
writes result PNGs (core.pipeline.finish_image), so the server and the CLI mark alike.

Order matters: the watermark changes pixels, so it comes first; the text chunks go into the PNG
before signing, so the C2PA hash covers them too and a changed label breaks the manifest."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ... import __version__
from . import parameters, watermark, xmp
from .c2pa import ContentCredentials, Ingredient, manifest_definition
from .c2pa_datahash import PngData
from .png import itxt_chunk, text_chunk

__all__ = ["ImageFacts", "Ingredient", "Options", "Provenance", "ingredient_of"]


@dataclass(frozen=True)
class ImageFacts:
    """What is known about one result image when it is written."""

    task_id: str
    index: int  # 1-based position among the task's images
    prompt: str
    revised_prompt: str | None
    seed: int
    width: int
    height: int
    model: str
    engine: str
    steps: int | None = None
    ingredients: tuple[Ingredient, ...] = field(default_factory=tuple)


def ingredient_of(data: bytes, position: int, mime: str = "image/png") -> Ingredient:
    return Ingredient(f"input image {position}", mime, hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class Options:
    c2pa: bool = True
    xmp: bool = True
    parameters: bool = True
    watermark: bool = True
    producer: str = "wanimage"
    propagator: str = ""


class Provenance:
    """Built once per process (the C2PA signer is the expensive part); thread-safe."""

    def __init__(self, options: Options, credentials: ContentCredentials | None = None) -> None:
        if options.c2pa and credentials is None:
            raise ValueError("C2PA is on but no credentials were given")
        self.options = options
        self.credentials = credentials if options.c2pa else None
        self.payload = watermark.payload_for(options.producer)

    @classmethod
    def from_settings(cls, settings) -> Provenance:
        options = Options(settings.provenance_c2pa, settings.provenance_xmp, settings.provenance_parameters,
                          settings.provenance_watermark, settings.provenance_producer,
                          settings.provenance_propagator)
        credentials = None
        if options.c2pa:
            credentials = ContentCredentials.from_files(
                settings.provenance_c2pa_cert, settings.provenance_c2pa_key, Path(settings.data_dir),
                alg=settings.provenance_c2pa_alg, tsa_url=settings.provenance_c2pa_tsa_url)
        return cls(options, credentials)

    @classmethod
    def off(cls) -> Provenance:
        return cls(Options(c2pa=False, xmp=False, parameters=False, watermark=False))

    def mark_pixels(self, image: Image.Image, region: Image.Image | None = None) -> Image.Image | np.ndarray:
        """The pixels to write: `image` with the invisible watermark, as the uint8 array that
        encode_png takes without another copy; within a box edit's `region` only (an Image)."""
        if not self.options.watermark:
            return image
        if region is not None:
            return Image.composite(watermark.embed(image, self.payload), image, region)
        return watermark.embed_pixels(image, self.payload)

    def rows(self, pixels: np.ndarray, label: tuple[int, int, np.ndarray] | None = None):
        """For (H, W, 3) uint8 `pixels`: `rows(r0, r1, out)` (postprocess.RowsFn) writing rows r0..r1 of what `mark_pixels` makes
        of them, the visible `label` plate (postprocess.label_patch) in first, so the PNG writer
        marks each slice on its own thread; None when nothing is to be drawn."""
        if label is None and not self.options.watermark:
            return None
        height, width, channels = pixels.shape
        mark = self.options.watermark
        pattern = watermark.pattern(width, height, self.payload) if mark else None  # (H, W * 3)
        y0, x0, plate = label if label is not None else (0, 0, pixels[:0, :0])
        y1, x1 = y0 + plate.shape[0], x0 + plate.shape[1]

        def write(r0: int, r1: int, out: np.ndarray) -> None:
            block = out.reshape(r1 - r0, width, channels)  # (rows, W, 3), the same memory
            if mark:
                watermark.clip(pixels[r0:r1], block)
            else:
                block[:] = pixels[r0:r1]
            top, bottom = max(r0, y0), min(r1, y1)
            if top < bottom:
                labelled = block[top - r0:bottom - r0, x0:x1]
                labelled[:] = plate[top - y0:bottom - y0]
                if mark:
                    watermark.clip(labelled, labelled)
            if pattern is not None:
                out += pattern[r0:r1]

        return write

    def digest(self):
        """A SHA-256 for the PNG writer to feed as it goes (postprocess.png_parts), when the C2PA
        seal's hard binding will take it; else None."""
        if self.credentials is None or self.credentials.path != "data-hash":
            return None
        return hashlib.sha256()

    def chunks(self, facts: ImageFacts) -> list[tuple[bytes, bytes]]:
        """PNG text chunks (type, data) to write before the image data."""
        out = []
        if self.options.xmp:
            label = xmp.aigc_label(producer=self.options.producer, produce_id=f"{facts.task_id}/{facts.index}",
                                   propagator=self.options.propagator,
                                   propagate_id=f"{facts.task_id}/{facts.index}" if self.options.propagator else "")
            out.append(itxt_chunk(xmp.PNG_KEYWORD, xmp.packet(label)))
        if self.options.parameters:
            out.append(text_chunk(parameters.KEYWORD, parameters.text(
                prompt=facts.prompt, revised_prompt=facts.revised_prompt, seed=facts.seed,
                width=facts.width, height=facts.height, model=facts.model, engine=facts.engine,
                steps=facts.steps)))
        return out

    def seal(self, png: PngData, facts: ImageFacts, digest=None) -> bytes:
        """The PNG with a signed C2PA manifest (unchanged when C2PA is off). `png` is its bytes or
        its pieces in order (postprocess.png_parts): hashed piece by piece, joined once; or, with
        `digest` (from `self.digest()`, fed every piece of `png` in order), not hashed again."""
        if self.credentials is None:
            return png if isinstance(png, bytes) else b"".join(png)
        manifest = manifest_definition(title=f"wanimage-{facts.task_id}-{facts.index}.png", version=__version__,
                                       model=facts.model, engine=facts.engine, ingredients=list(facts.ingredients))
        return self.credentials.sign_png(png, manifest, sha256=digest.digest() if digest is not None else None)
