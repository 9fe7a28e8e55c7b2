"""`wanimage generate`'s options turned into request fields, with one clear line for each mistake
a user can make on the command line (before anything is loaded or sent)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import InvalidParameter

_BBOX = re.compile(r"^(\d+):(\d+),(\d+),(\d+),(\d+)$")
_PALETTE_ITEM = re.compile(r"^(#[0-9a-fA-F]{6}):(\d+(?:\.\d+)?)%?$")
_REMOTE = ("http://", "https://", "data:", "oss://")
PALETTE_HELP = ('colours with their share: "#C2185B:60,#F8BBD0:25,#FFFFFF:15" (percent, summing to 100), '
                'or the API\'s JSON list [{"hex": "#C2185B", "ratio": "60.00%%"}, ...]')


class OptionError(ValueError):
    """A command-line mistake; its text is printed after "error: "."""


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


def parse_palette(text: str | None) -> list[dict] | None:
    """The API's JSON list, or the short form HEX:PERCENT,... ."""
    if not text:
        return None
    if text.lstrip().startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise OptionError(f"--palette: not valid JSON ({exc.msg} at character {exc.pos}); "
                              f"give {PALETTE_HELP.replace('%%', '%')}") from None
    entries = []
    for item in text.split(","):
        m = _PALETTE_ITEM.match(item.strip())
        if not m:
            raise OptionError(f"--palette {text!r}: {item.strip()!r} is not HEX:PERCENT; "
                              f"give {PALETTE_HELP.replace('%%', '%')}")
        entries.append({"hex": m.group(1).upper(), "ratio": f"{float(m.group(2)):.2f}%"})
    return entries


def is_remote(ref: str) -> bool:
    return ref.startswith(_REMOTE)


def check_image_refs(refs: list[str]) -> list[Path | str]:
    """Local paths must exist and be files; URLs and data URIs pass through as they are."""
    out: list[Path | str] = []
    for ref in refs:
        if is_remote(ref):
            out.append(ref)
            continue
        path = Path(ref).expanduser()
        if not path.exists():
            raise OptionError(f"--image {ref}: no such file (give a path, an http(s) URL or a data: URI)")
        if not path.is_file():
            raise OptionError(f"--image {ref}: not a file")
        out.append(path)
    return out
