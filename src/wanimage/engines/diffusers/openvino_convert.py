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

import numpy as np
import torch

from ...memory import release_free_memory
from .openvino_backend import convert
from .openvino_calibrate import Calibration, decoder_inputs, unet_inputs
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


def load_vae(folder: Path, variant: str | None) -> torch.nn.Module:
    """A VAE from its own folder (a tiny autoencoder's, or a pipeline's `vae/`), by its config's class."""
    import diffusers

    cls = getattr(diffusers, json.loads((folder / "config.json").read_text())["_class_name"])
    try:
        return cls.from_pretrained(str(folder), variant=variant, torch_dtype=torch.float32).eval()
    except (OSError, ValueError):  # a tiny autoencoder's folder has no variant files
        return cls.from_pretrained(str(folder), torch_dtype=torch.float32).eval()


def decoder_samples(folder: Path, irs: dict[str, str], steps: int | None, guidance: float | None, vae,
                    stem: str, model) -> list | None:
    """The VAE decoder's calibration inputs (openvino_calibrate.decoder_inputs): latents made by the
    pipeline's converted UNet and text encoder (their IR, `irs`), its tokenizer and scheduler."""
    import openvino as ov

    if stem != "decoder":
        return None
    core = ov.Core()
    unet, text = core.compile_model(irs["unet"], "CPU"), core.compile_model(irs["text_encoder"], "CPU")
    tokenizer = load_part(folder, "tokenizer")

    def encode_ids(ids):
        return [np.asarray(text([ids.numpy()])[0])]  # the output a torch text encoder gives first

    calibration = Calibration.of(tokenizer, encode_ids, load_part(folder, "scheduler"),
                                 json.loads((folder / "unet" / "config.json").read_text()), steps, guidance)
    return decoder_inputs(vae, lambda inputs: np.asarray(unet(inputs)[0]), calibration)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("jobs", help="JSON: [[component, quantize kind or '', IR folder], ...]")
    parser.add_argument("--variant")
    parser.add_argument("--steps", type=int, help="the model's steps (a calibrated UNet's sampling run)")
    parser.add_argument("--guidance", type=float, help="the model's guidance (idem)")
    parser.add_argument("--vae", type=Path, help="job `vae`: the VAE's folder (a tiny autoencoder's, or FOLDER/vae)")
    parser.add_argument("--irs", default="{}", help="job `vae`: JSON {unet, text_encoder: their model.xml}, "
                                                   "which make its decoder's calibration latents")
    args = parser.parse_args(argv)
    for name, quantize, out in json.loads(args.jobs):
        with torch.no_grad():
            if name == "vae":  # small; its decoder's calibration runs it up to the decoder
                vae = load_vae(args.vae, args.variant)
                convert(name, vae, Path(out), quantize or None,
                        partial(decoder_samples, args.folder, json.loads(args.irs), args.steps, args.guidance, vae))
                del vae
            else:
                # Loaded in the call, never bound to a name here: convert() holds the only reference
                # and frees the float32 weights once the graph is float16 (sd-turbo's UNet: 3.5 GB
                # that stayed resident through NNCF's calibration while a name here held them).
                convert(name, load_float32(args.folder, name, args.variant), Path(out), quantize or None,
                        partial(unet_samples, args.folder, args.variant, args.steps, args.guidance)
                        if name == "unet" else None)
        gc.collect()
        release_free_memory()
        print(f"converted {name} -> {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
