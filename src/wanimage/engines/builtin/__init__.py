"""The built-in engine: adapts wanimage.model's BuiltinModel to the Engine protocol.

`BuiltinEngine` and `load_builtin_engine` are imported on first use (they bring torch in);
`DEFAULT_WEIGHTS` is light (identity.py)."""

from .identity import DEFAULT_WEIGHTS

__all__ = ["DEFAULT_WEIGHTS", "BuiltinEngine", "load_builtin_engine"]


def __getattr__(name: str):
    if name in ("BuiltinEngine", "load_builtin_engine"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
