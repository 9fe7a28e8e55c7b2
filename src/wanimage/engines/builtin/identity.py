"""What the built-in engine is, without loading it: its name, what it can do and where its
weights are. `wanimage models` and the server's model list describe it from these; importing the
engine itself brings torch in (about 3 s on a 2-core machine)."""

from __future__ import annotations

from pathlib import Path

from wanimage.types import Capabilities

NAME = "builtin"
CAPABILITIES = Capabilities(layout=True, previews=True)
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "builtin.safetensors"
