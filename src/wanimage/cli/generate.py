"""`wanimage generate`: one request run in-process, with the same rules and post-processing as
the server and a progress bar."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from pathlib import Path

from tqdm import tqdm

from ..config import Settings
from ..core.inputs import ImageFetcher, InputImage, decode_image
from ..core.pipeline import Pipeline
from ..core.request import build_request
from ..engines.base import PreviewFn
from ..engines.catalog import build_registry
from ..errors import InvalidParameter
from ..thinking import build_planner
from .common import settings_from

_BBOX = re.compile(r"^(\d+):(\d+),(\d+),(\d+),(\d+)$")


def parse_bboxes(specs: list[str], n_images: int) -> list[list[list[int]]] | None:
    if not specs:
        return None
    boxes: list[list[list[int]]] = [[] for _ in range(n_images)]
    for spec in specs:
        m = _BBOX.match(spec.replace(" ", ""))
        if not m:
            raise InvalidParameter(f"--bbox {spec!r}: use K:x1,y1,x2,y2 (K = image number from 1)", field="bbox_list")
        k = int(m.group(1))
        if not 1 <= k <= n_images:
            raise InvalidParameter(f"--bbox {spec!r}: there is no image {k}", field="bbox_list")
        boxes[k - 1].append([int(m.group(i)) for i in range(2, 6)])
    return boxes


async def _load_images(refs: list[str], settings: Settings) -> list[InputImage]:
    fetcher = ImageFetcher(settings)
    images = []
    for k, ref in enumerate(refs, start=1):
        path = Path(ref).expanduser()
        if path.is_file():
            images.append(decode_image(path.read_bytes(), k, max_bytes=settings.max_image_bytes))
        else:
            images.append(await fetcher.fetch(ref, k))
    return images


async def generate_to_dir(args: argparse.Namespace, settings: Settings) -> list[Path]:
    """The server's own pipeline in this process: same request and seed, same pixels."""
    req = build_request(
        model=args.model,
        prompt=args.prompt,
        images=list(args.image),
        size=args.size,
        n=args.n,
        enable_sequential=args.sequential or None,
        thinking_mode=False if args.no_thinking else None,
        bbox_list=parse_bboxes(args.bbox, len(args.image)),
        color_palette=json.loads(args.palette) if args.palette else None,
        watermark=args.watermark or None,
        seed=args.seed,
    )
    pipeline = Pipeline(build_registry(settings), planner=build_planner(settings),
                        png_level=settings.png_compress_level)
    inputs = [i.image for i in await _load_images(list(req.images), settings)]
    width, height = pipeline.check(req, [im.size for im in inputs])

    with tqdm(total=100, unit="%", desc=f"{req.mode.value} {width}x{height}") as bar:

        def progress(fraction: float, preview: PreviewFn | None = None) -> None:
            bar.update(max(0, int(fraction * 100) - bar.n))

        rendered = await asyncio.to_thread(pipeline.render, req, inputs, progress)
        bar.update(100 - bar.n)

    args.output.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, png in enumerate(rendered.pngs, start=1):
        path = args.output / f"wanimage-{req.seed}-{i}.png"
        path.write_bytes(png)
        paths.append(path)
    return paths


def cmd_generate(args: argparse.Namespace) -> int:
    try:
        paths = asyncio.run(generate_to_dir(args, settings_from(args)))
    except Exception as exc:  # ApiError and friends: one clear line, no trace
        message = getattr(exc, "message", None) or str(exc)
        print(f"error: {message}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    gen = sub.add_parser("generate", help="generate images in-process, without a server")
    gen.add_argument("prompt")
    gen.add_argument("--model", default="wan2.7-image")
    gen.add_argument("--image", action="append", default=[], help="input image: path, URL or data URI (repeat)")
    gen.add_argument("--bbox", action="append", default=[],
                     help="box for an input image as K:x1,y1,x2,y2 (K = 1-based image number; repeat)")
    gen.add_argument("-n", "--n", type=int)
    gen.add_argument("--size", help="1K, 2K, 4K or W*H")
    gen.add_argument("--seed", type=int)
    gen.add_argument("--sequential", action="store_true", help="make a coherent image set")
    gen.add_argument("--no-thinking", action="store_true")
    gen.add_argument("--watermark", action="store_true")
    gen.add_argument("--palette", help='JSON list of {"hex": "#RRGGBB", "ratio": "NN.NN%%"}')
    gen.add_argument("-o", "--output", type=Path, default=Path("."), help="output directory")
    gen.set_defaults(func=cmd_generate)
