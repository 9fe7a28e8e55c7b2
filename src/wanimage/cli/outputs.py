"""Where `wanimage generate` writes: checked before any work, never overwriting by accident."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .options import OptionError


def check_writable(directory: Path) -> None:
    """Create the directory and prove a file can be written there, before generating."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".wanimage-probe-"):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OptionError(f"-o {directory}: cannot write there ({reason}); choose another directory") from None


def output_paths(directory: Path, seed: int, count: int, overwrite: bool) -> list[Path]:
    """wanimage-SEED-I.png; when one of a run's names is taken (and --overwrite is not given)
    the whole run moves to wanimage-SEED-I-2.png, -3, ... so its files stay together."""
    for run in range(1, 10_000):
        suffix = "" if run == 1 else f"-{run}"
        paths = [directory / f"wanimage-{seed}-{i}{suffix}.png" for i in range(1, count + 1)]
        if overwrite or not any(p.exists() for p in paths):
            return paths
    raise OptionError(f"-o {directory}: too many runs with seed {seed} there; use --overwrite or another directory")


def write_all(directory: Path, seed: int, pngs: list[bytes], overwrite: bool) -> list[Path]:
    paths = output_paths(directory, seed, len(pngs), overwrite)
    for path, png in zip(paths, pngs, strict=True):
        path.write_bytes(png)
    return paths
