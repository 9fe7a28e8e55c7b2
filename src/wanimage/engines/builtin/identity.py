"""What the built-in engine is, without loading it: its name, what it can do and where its
weights are. `wanimage models` and the server's model list describe it from these; importing the
engine itself brings torch in (2.5 s of the 4.4 `wanimage models` took on 2 cores)."""

from __future__ import annotations

from wanimage.model.commands import DEFAULT_WEIGHTS  # the weights `wanimage builtin-export` writes
from wanimage.types import Capabilities

NAME = "builtin"
CAPABILITIES = Capabilities(layout=True, previews=True)
__all__ = ["CAPABILITIES", "DEFAULT_WEIGHTS", "NAME"]
