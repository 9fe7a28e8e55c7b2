"""`wanimage generate`: one request, run in this process (the server's own pipeline: same request
and seed, same pixels) or sent to a running server with `--server URL`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import ApiError
from ..types import MODELS
from .common import settings_from
from .options import PALETTE_HELP, OptionError, check_image_refs, parse_bboxes, parse_palette
from .outputs import check_writable, write_all


def _request(args: argparse.Namespace):
    from ..core.model_rules import rules_for
    from ..core.request import build_request

    refs = check_image_refs(list(args.image))
    thinks = rules_for(args.model).thinking  # other ids rewrite with prompt_extend
    options = {
        "size": args.size,
        "n": args.n,
        "enable_sequential": args.sequential or None,
        "thinking_mode": False if args.no_thinking and thinks else None,
        "prompt_extend": False if args.no_thinking and not thinks else None,
        "negative_prompt": args.negative_prompt,
        "bbox_list": parse_bboxes(args.bbox, len(refs)),
        "color_palette": parse_palette(args.palette),
        "watermark": args.watermark or None,
    }
    req = build_request(model=args.model, prompt=args.prompt, images=[str(r) for r in refs],
                        seed=args.seed, **options)
    return req, refs, options


def generate(args: argparse.Namespace) -> list[Path]:
    req, refs, options = _request(args)  # every rule checked before anything is loaded
    check_writable(args.output)
    if args.server:
        from .server import run_on_server

        api_key = args.api_key or os.environ.get("WANIMAGE_API_KEY") or os.environ.get("DASHSCOPE_API_KEY")
        pngs = run_on_server(req, refs, options, args.server, api_key)
    else:
        from .local import run_here

        pngs = run_here(req, refs, settings_from(args))
    return write_all(args.output, req.seed, pngs, args.overwrite)


def cmd_generate(args: argparse.Namespace) -> int:
    try:
        paths = generate(args)
    except (ApiError, OptionError) as exc:  # one clear line, no trace
        print(f"error: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("canceled", file=sys.stderr)
        return 130
    for path in paths:
        print(path)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    gen = sub.add_parser(
        "generate", help="generate images (in this process, or on a running server with --server)",
        description="Generate images with the rules of the Wan 2.7 Image API. Files are written as "
                    "wanimage-SEED-I.png; a name already taken moves the run to wanimage-SEED-I-2.png.")
    gen.add_argument("prompt", help="what to draw, or what to change in the input images")
    gen.add_argument("--model", default="wan2.7-image", choices=MODELS, metavar="ID",
                     help="API model id: wan2.7-image (default), wan2.7-image-pro, wan2.6-t2i, wan2.6-image, "
                          "qwen-image(-plus, -max), qwen-image-edit(-plus, -max), qwen-image-2.0(-pro)")
    gen.add_argument("--image", action="append", default=[], metavar="PATH|URL",
                     help="input image: a file, an http(s) URL or a data: URI; repeat for up to 9")
    gen.add_argument("--bbox", action="append", default=[], metavar="K:x1,y1,x2,y2",
                     help="a box on input image K (from 1) to edit inside; repeat")
    gen.add_argument("-n", "--n", type=int, metavar="N",
                     help="number of images: 1-4 (default 1); with --sequential up to 12 (default 12)")
    gen.add_argument("--size", metavar="SIZE",
                     help="1K, 2K, 4K (pro text-to-image only) or W*H (default 2K: 2048x2048, or the "
                          "last input image's aspect ratio at about 4 MP)")
    gen.add_argument("--seed", type=int, help="0-2147483647; the same seed gives the same pixels (default: random)")
    gen.add_argument("--sequential", action="store_true", help="make a coherent image set (default: off)")
    gen.add_argument("--no-thinking", action="store_true",
                     help="skip thinking mode, which plans the layout for text-to-image (default: thinking on)")
    gen.add_argument("--negative-prompt", metavar="TEXT",
                     help="what to keep out of the image (up to 500 characters; engines that cannot use it say so "
                          "in the log; default: none)")
    gen.add_argument("--watermark", action="store_true", help='draw the visible "AI generated" mark (default: off)')
    gen.add_argument("--palette", metavar="COLOURS", help=PALETTE_HELP)
    gen.add_argument("-o", "--output", type=Path, default=Path("."), metavar="DIR",
                     help="output directory, created if missing (default: the current directory)")
    gen.add_argument("--overwrite", action="store_true", help="replace files of an earlier run with the same seed (default: keep them, number the new run)")
    gen.add_argument("--server", metavar="URL",
                     help="send the request to a running server (e.g. http://127.0.0.1:8000) instead of "
                          "loading the model here")
    gen.add_argument("--api-key", metavar="KEY",
                     help="API key for --server (default: $WANIMAGE_API_KEY, else $DASHSCOPE_API_KEY)")
    gen.set_defaults(func=cmd_generate)
