"""The child process that converts a pulled folder's components to OpenVINO IR (run by
openvino_backend.convert_in_child, at a server's first start or by `wanimage pull`):

    python -m wanimage.engines.diffusers.openvino_convert FOLDER '[["unet", "int8", "OUT"], ...]' [--variant fp16]

Each component is read in float32 (streamed.load_component, else from_pretrained), traced,
compressed where asked and saved to its OUT folder, then freed before the next, so the process
peaks at its largest component rather than their sum."""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import sys
from pathlib import Path

import torch

from ...memory import release_free_memory
from .openvino_backend import convert
from .streamed import load_component


def load_float32(folder: Path, name: str, variant: str | None) -> torch.nn.Module:
    """Component `name` of the pipeline folder in float32, as the converter traces it."""
    library, class_name = json.loads((folder / "model_index.json").read_text())[name]
    module = load_component(folder / name, library, class_name, variant, torch.float32)
    if module is None:  # sharded or .bin weights: the library's own loader
        cls = getattr(importlib.import_module(library), class_name)
        module = cls.from_pretrained(str(folder / name), variant=variant, torch_dtype=torch.float32)
    return module.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("jobs", help="JSON: [[component, quantize kind or '', IR folder], ...]")
    parser.add_argument("--variant")
    args = parser.parse_args(argv)
    for name, quantize, out in json.loads(args.jobs):
        with torch.no_grad():  # no reference kept here: convert() frees the float32 weights as it goes
            convert(name, load_float32(args.folder, name, args.variant), Path(out), quantize or None)
        gc.collect()
        release_free_memory()
        print(f"converted {name} -> {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
