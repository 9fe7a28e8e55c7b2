"""A one-row summary of what serves each API model id, in one shape for `wanimage models`, `GET /v1/models` (its
`wanimage` extension object) and the playground header: engine, preset, checkpoints, whether
they are on disk and their size there, whether the weights are resident, device and memory."""

from __future__ import annotations

from pathlib import Path

from .base import Engine

BUILTIN_LABEL = "built-in: a small offline model (flat emoji-style sprites), no download"
PRESETS_DOC = "docs/diffusers.md#real-images-in-three-commands"  # in the sources; served: /playground/presets


def summarize(engine: Engine | None, error: str | None) -> dict:
    if engine is None:
        return {"engine": None, "label": f"unavailable: {error}" if error else "not loaded yet", "preset": None,
                "checkpoints": [], "on_disk": None, "disk_bytes": None, "resident": False, "device": None,
                "memory_bytes": 0}
    name = engine.name
    if name == "diffusers":
        return _diffusers(engine.describe())
    if name == "builtin":
        return builtin_summary(engine)
    details = engine.describe()
    return {"engine": name, "label": name, "preset": None, "checkpoints": [], "on_disk": None,
            "disk_bytes": None, "resident": True, "device": details.get("backend"), "memory_bytes": None}


def _diffusers(d: dict) -> dict:
    seen: dict[str, dict] = {}
    for r in d["roles"]:
        c = seen.setdefault(r["checkpoint"], {"source": r["checkpoint"], "roles": [], "on_disk": r["on_disk"],
                                              "disk_bytes": r["disk_bytes"]})
        c["roles"].append(r["role"])
    if d.get("vae"):  # a tiny autoencoder in the VAE's place (presets pull it)
        seen.setdefault(d["vae"]["checkpoint"], {"source": d["vae"]["checkpoint"], "roles": ["vae"],
                                                 "on_disk": d["vae"]["on_disk"], "disk_bytes": d["vae"]["disk_bytes"]})
    checkpoints = list(seen.values())
    known = [c["on_disk"] for c in checkpoints if c["on_disk"] is not None]
    label = f"preset {d['preset']}" if d.get("preset") else f"diffusers {d['family']}"
    where = d["device"] + (", openvino" if d.get("runtime") == "openvino" else "")  # docs/diffusers.md "OpenVINO backend"
    return {"engine": "diffusers", "label": f"{label} ({d['family']}, {where})", "preset": d.get("preset"),
            "family": d["family"], "checkpoints": checkpoints, "on_disk": all(known) if known else None,
            "disk_bytes": d.get("disk_bytes"), "resident": any(r["loaded"] for r in d["roles"]),
            "device": d["device"], "dtype": d["dtype"], "memory_bytes": d["bytes"]}


def builtin_summary(engine, device: str = "cpu") -> dict:
    """The built-in model's row; `engine` None: described from its files, nothing loaded."""
    from .builtin.identity import DEFAULT_WEIGHTS

    files = [p for p in (DEFAULT_WEIGHTS, DEFAULT_WEIGHTS.with_name("concepts.safetensors")) if p.is_file()]
    modules = _modules(engine.model if engine is not None else None)
    memory = sum(t.numel() * t.element_size() for m in modules for t in (*m.parameters(), *m.buffers()))
    device = next((str(p.device) for m in modules for p in m.parameters()), device)
    return {"engine": "builtin", "label": BUILTIN_LABEL, "preset": None, "docs": PRESETS_DOC,
            "checkpoints": [{"source": _short(p), "roles": ["all"], "on_disk": True, "disk_bytes": p.stat().st_size}
                            for p in files],
            "on_disk": bool(files), "disk_bytes": sum(p.stat().st_size for p in files),
            "resident": engine is not None, "device": device, "memory_bytes": memory}


def _modules(obj) -> list:
    if obj is None:  # described from its files: no torch to import
        return []
    import torch

    found, seen = [], set()
    for value in vars(obj).values():
        if isinstance(value, torch.nn.Module) and id(value) not in seen:
            seen.add(id(value))
            found.append(value)
    return found


def _short(path: Path) -> str:
    parts = path.parts
    return "/".join(parts[parts.index("wanimage"):]) if "wanimage" in parts else str(path)
