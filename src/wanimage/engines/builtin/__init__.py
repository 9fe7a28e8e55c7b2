"""The built-in engine: adapts wanimage.model's BuiltinModel to the Engine protocol."""

from .engine import DEFAULT_WEIGHTS, BuiltinEngine, load_builtin_engine

__all__ = ["DEFAULT_WEIGHTS", "BuiltinEngine", "load_builtin_engine"]
