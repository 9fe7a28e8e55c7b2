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
from functools import partial
from pathlib import Path

import torch

from ...memory import release_free_memory
from .openvino_backend import convert
from .openvino_calibrate import Calibration, unet_inputs
from .streamed import load_component


def load_float32(folder: Path, name: str, variant: str | None) -> torch.nn.Module:
    """Component `name` of the pipeline folder in float32, as the converter traces it."""
    library, class_name = json.loads((folder / "model_index.json").read_text())[name]
    module = load_component(folder / name, library, class_name, variant, torch.float32)
    if module is None:  # sharded or .bin weights: the library's own loader
        cls = getattr(importlib.import_module(library), class_name)
        module = cls.from_pretrained(str(folder / name), variant=variant, torch_dtype=torch.float32)
    return module.eval()


def load_part(folder: Path, name: str):
    """A pipeline part that holds no weights (tokenizer, scheduler), by model_index.json's class."""
    library, class_name = json.loads((folder / "model_index.json").read_text())[name]
    return getattr(importlib.import_module(library), class_name).from_pretrained(str(folder / name))


def unet_samples(folder: Path, variant: str | None, steps: int | None, guidance: float | None, stem: str,
                 model) -> list:
    """The folder's UNet's calibration inputs (openvino_calibrate.py), made with its own tokenizer,
    text encoder (float32; freed once the inputs are made) and scheduler."""
    unet_config = json.loads((folder / "unet" / "config.json").read_text())
    calibration = Calibration.of(load_part(folder, "tokenizer"), load_float32(folder, "text_encoder", variant),
                                 load_part(folder, "scheduler"), unet_config, steps, guidance)
    return unet_inputs(model, calibration)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("jobs", help="JSON: [[component, quantize kind or '', IR folder], ...]")
    parser.add_argument("--variant")
    parser.add_argument("--steps", type=int, help="the model's steps (a calibrated UNet's sampling run)")
    parser.add_argument("--guidance", type=float, help="the model's guidance (idem)")
    args = parser.parse_args(argv)
    for name, quantize, out in json.loads(args.jobs):
        calibration = partial(unet_samples, args.folder, args.variant, args.steps, args.guidance)
        with torch.no_grad():  # no reference kept here: convert() frees the float32 weights as it goes
            convert(name, load_float32(args.folder, name, args.variant), Path(out), quantize or None,
                    calibration if name == "unet" else None)
        gc.collect()
        release_free_memory()
        print(f"converted {name} -> {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
