"""What one remote backend is and what it can do: a table of the engine config file with
`engine = "remote"` (docs/remote.md), or the WANIMAGE_REMOTE_* settings for the simple case.

    [models."wan2.7-image"]
    engine = "remote"
    base_url = "http://127.0.0.1:30010/v1"     # an OpenAI-compatible images server
    model = "Qwen/Qwen-Image"                   # the backend's model name ("" : not sent)
    api_key_env = "SGLANG_KEY"                  # or api_key = "..."
    timeout_seconds = 300
    max_concurrency = 2                         # calls in flight to this backend
    generations = true                          # which endpoints and features it has
    edits = true
    edit_max_images = 1                         # images one edit call takes (beyond: stitched)
    mask = false                                # edits take a mask (box edits then send one)
    stream = false                              # stream=true with partial_images
    n = true                                    # one call may ask for n images (the count is checked)

Every key has a default; an unknown key or a wrong type stops start-up with a message naming the
file, the model and the key."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SEED_STYLES = ("body", "sd_cpp", "none")  # `seed` in the body | stable-diffusion.cpp's prompt tag | not sent
MASK_FORMATS = ("alpha", "white")  # OpenAI: transparent = edit | white = edit (grey-scale masks)
RESPONSE_FORMATS = ("b64_json", "url")


class RemoteConfigError(ValueError):
    """A remote table is malformed: the message names the file, the model, the key and the fix."""


@dataclass(frozen=True)
class RemoteConfig:
    base_url: str
    model: str = ""
    api_key: str | None = field(default=None, repr=False)  # never in reprs or logs
    timeout_seconds: float = 300.0
    max_concurrency: int = 1
    attempts: int = 2  # calls per image while the backend is unreachable or answers 5xx
    # what the backend has
    generations: bool = True
    edits: bool = True
    edit_max_images: int = 1
    mask: bool = False
    mask_format: str = "alpha"
    stream: bool = False
    partial_images: int = 2
    n: bool = True
    response_format: str = "b64_json"
    url_hosts: tuple[str, ...] = ()  # hosts `url` answers may come from besides base_url's own
    seed: str = "body"
    # sizes: a list of the sizes it accepts ("1024x1024", ...), else multiples up to max_pixels
    sizes: tuple[str, ...] = ()
    size_multiple: int = 16
    max_pixels: int = 1024 * 1024
    reference_pixels: int = 1024 * 1024  # each reference is downscaled to at most this
    feather: int | None = None  # box edits: feather inside the box edge; None: 1/16 of the box
    palette_prompt: bool = True
    # The backend reads a `negative_prompt` body field (LocalAI, stable-diffusion.cpp's server, ...):
    # a request's negative_prompt is forwarded; otherwise the log says it is not.
    negative_prompt: bool = False
    extra_body: dict = field(default_factory=dict)  # sent with every call (steps, guidance, ...)
    health_interval_seconds: float = 15.0

    @property
    def label(self) -> str:
        """How errors, logs and /health name this backend: its base URL without credentials."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}".rstrip("/")

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""


_KEYS = {f.name: f for f in fields(RemoteConfig)}
_EXTRA_KEYS = {"engine", "api_key_env"}


def _check(cfg: RemoteConfig, where: str) -> None:
    parts = urlsplit(cfg.base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteConfigError(f"{where}.base_url: give the backend's URL ending in /v1, e.g. "
                                f"http://127.0.0.1:30010/v1 (got {cfg.base_url!r})")
    if cfg.max_concurrency < 1 or cfg.attempts < 1 or cfg.edit_max_images < 1:
        raise RemoteConfigError(f"{where}: max_concurrency, attempts and edit_max_images are at least 1")
    if cfg.timeout_seconds <= 0:
        raise RemoteConfigError(f"{where}.timeout_seconds: a positive number of seconds")
    if not (cfg.generations or cfg.edits):
        raise RemoteConfigError(f"{where}: the backend needs at least one of generations, edits")
    for name, allowed in (("seed", SEED_STYLES), ("mask_format", MASK_FORMATS),
                          ("response_format", RESPONSE_FORMATS)):
        if getattr(cfg, name) not in allowed:
            raise RemoteConfigError(f"{where}.{name}: one of {', '.join(allowed)}")
    if not 0 <= cfg.partial_images <= 3:
        raise RemoteConfigError(f"{where}.partial_images: 0 to 3")
    for size in cfg.sizes:
        if parse_wxh(size) is None:
            raise RemoteConfigError(f"{where}.sizes: {size!r} is not WIDTHxHEIGHT, e.g. \"1024x1024\"")


def parse_wxh(size: str) -> tuple[int, int] | None:
    try:
        w, h = (int(v) for v in size.lower().replace("*", "x").split("x"))
    except ValueError:
        return None
    return (w, h) if w > 0 and h > 0 else None


def _typed(name: str, value: Any, where: str) -> Any:
    default = _KEYS[name].default
    if name in ("url_hosts", "sizes"):
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise RemoteConfigError(f"{where}.{name}: a list of strings")
        return tuple(value)
    if name == "extra_body":
        if not isinstance(value, dict):
            raise RemoteConfigError(f"{where}.extra_body: a table of fields sent with every call")
        return dict(value)
    if name == "feather":
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
    elif isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise RemoteConfigError(f"{where}.{name}: expected {type(default).__name__}, got {value!r}")
    return float(value) if isinstance(default, float) and not isinstance(default, bool) else value


def parse_remote(raw: dict, where: str, env: dict[str, str] | None = None) -> RemoteConfig:
    """One model's table (with `engine = "remote"`) -> RemoteConfig."""
    env = os.environ if env is None else env
    unknown = set(raw) - set(_KEYS) - _EXTRA_KEYS
    if unknown:
        raise RemoteConfigError(f"{where}: unknown keys {sorted(unknown)}; see docs/remote.md")
    if not isinstance(raw.get("base_url"), str):
        raise RemoteConfigError(f"{where}.base_url: required, the backend's URL ending in /v1")
    values = {k: _typed(k, v, where) for k, v in raw.items() if k in _KEYS and k != "base_url"}
    key_env = raw.get("api_key_env")
    if key_env is not None:
        if "api_key" in raw:
            raise RemoteConfigError(f"{where}: give api_key or api_key_env, not both")
        if key_env not in env:
            raise RemoteConfigError(f"{where}.api_key_env: the environment variable {key_env} is not set")
        values["api_key"] = env[key_env]
    cfg = RemoteConfig(base_url=raw["base_url"].rstrip("/"), **values)
    _check(cfg, where)
    return cfg


def read_tables(path: Path) -> dict[str, dict]:
    """model id -> its raw table, from the engine config file (.toml, .yaml, .yml). The
    [defaults] table is the diffusers engine's (dtype, offload, ...): remote tables do not take it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"engine config {path} not found; see docs/remote.md and docs/diffusers.md")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise RemoteConfigError(f"{path}: {exc}") from exc
    models = data.get("models") or {}
    if not isinstance(models, dict):
        raise RemoteConfigError(f"{path}: `models` must be a table of model ids")
    return {m: dict(raw) for m, raw in models.items() if isinstance(raw, dict)}


def is_remote(raw: dict) -> bool:
    return raw.get("engine") == "remote"
