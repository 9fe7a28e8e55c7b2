"""`wanimage presets`: the curated checkpoints, what each needs, and which fit this machine
(GPU memory from torch, else RAM)."""

from __future__ import annotations

import argparse
import json

from .common import settings_from


def rows(models_dir, gpu_bytes: int | None, ram_bytes: int) -> list[dict]:
    from ..engines.diffusers.models_dir import ModelsDir
    from ..engines.diffusers.presets import PRESETS, fits

    store = ModelsDir(models_dir)
    out = []
    for p in PRESETS.values():
        out.append({
            "name": p.name, "title": p.title, "family": p.family, "device": p.device,
            "fits": fits(p, gpu_bytes, ram_bytes), "on_disk": all(store.status(r).on_disk for r in p.repos),
            "download_bytes": p.download_bytes, "memory_bytes": p.memory_bytes, "memory_note": p.memory_note,
            "roles": {role: r.repo for role, r in p.roles.items()}, "licences": p.licences,
            "gated": [r for r in p.repos if _repo(r).gated], "speed": p.speed, "speed_source": p.speed_source,
            "reads_chinese": p.reads_chinese, "translator": p.translator, "vae": p.vae,
            "dtype": p.settings.get("dtype"), "notes": p.notes,
        })
    return out


def _chinese(row: dict) -> str:
    if row["reads_chinese"]:
        return "read as written (bilingual text encoder)"
    how = f"{row['translator']} (pulled with it)" if row["translator"] else "none (sent as written)"
    return f"translated to English first (its text encoder reads English only): by the thinking LLM when set, else {how}"


def _repo(repo_id: str):
    from ..engines.diffusers.presets import REPOS

    return REPOS[repo_id]


def markdown_table() -> str:
    """The preset table of docs/diffusers.md, generated from the code (a test keeps them equal)."""
    from ..engines.diffusers.presets import PRESETS, REPOS

    lines = ["| preset | family, runs on | checkpoints per role | steps / guidance (pro) | licence | download | "
             "memory | speed |", "|---|---|---|---|---|---|---|---|"]
    for p in PRESETS.values():
        by_repo: dict[str, list[str]] = {}
        for role, r in p.roles.items():
            extra = ", ".join(f"{k} {v}" for k, v in (("steps", r.steps), ("guidance", r.guidance)) if v is not None)
            by_repo.setdefault(r.repo, []).append(role + (f" ({extra})" if extra else ""))
        checkpoints = "<br>".join(
            f"[{repo}]({REPOS[repo].page}){' (' + REPOS[repo].variant + ')' if REPOS[repo].variant else ''}"
            f"{' gated' if REPOS[repo].gated else ''}: {', '.join(roles)}" for repo, roles in by_repo.items())
        if p.vae:  # pulled with it; `vae = "full"` keeps the checkpoint's own VAE
            checkpoints += f"<br>[{p.vae}]({REPOS[p.vae].page}): tiny autoencoder in the VAE's place"
        if p.translator:  # its text encoder reads English only: Chinese prompts are translated first
            checkpoints += f"<br>[{p.translator}]({REPOS[p.translator].page}): Chinese prompts into English"
        steps = f"{p.settings.get('steps')} / {p.settings.get('guidance', p.settings.get('true_cfg', '-'))}"
        if p.pro.get("steps"):
            steps += f" ({p.pro['steps']} steps)"
        speed = p.speed if not p.speed_source else f"{p.speed} ([source]({p.speed_source}))"
        lines.append(f"| `{p.name}` | {p.family}, {p.device} | {checkpoints} | {steps} | {'; '.join(p.licences)} | "
                     f"{p.download_bytes / 1e9:.1f} GB | {p.memory_bytes / 1e9:.1f} GB: {p.memory_note} | {speed} |")
    return "\n".join(lines)


def cmd_presets(args: argparse.Namespace) -> int:
    from ..engines.diffusers.presets import machine_memory

    settings = settings_from(args)
    gpu, ram, label = machine_memory()
    table = rows(settings.resolved_models_dir(), gpu, ram)
    if args.markdown:
        print(markdown_table())
        return 0
    if args.json:
        print(json.dumps({"machine": label, "gpu_bytes": gpu, "ram_bytes": ram, "presets": table}, indent=1))
        return 0
    print(f"this machine: {label}   (* fits: the weights fit in {'GPU memory' if gpu else 'RAM'})")
    print(f"  {'preset':15s} {'runs on':7s} {'download':>9s} {'memory':>8s}  {'on disk':7s}  title")
    for r in table:
        mark = "*" if r["fits"] else " "
        disk = "yes" if r["on_disk"] else "no"
        print(f"{mark} {r['name']:15s} {r['device']:7s} {r['download_bytes'] / 1e9:7.1f}GB {r['memory_bytes'] / 1e9:6.1f}GB"
              f"  {disk:7s}  {r['title']}")
        gated = f"; gated: {', '.join(r['gated'])} (accept the licence on the Hub, set HF_TOKEN)" if r["gated"] else ""
        print(f"  {'':15s} licence: {'; '.join(r['licences'])}{gated}")
        speed = r["speed"] + (f" [{r['speed_source']}]" if r["speed_source"] else "")
        print(f"  {'':15s} speed: {speed}")
        if r["vae"]:
            print(f"  {'':15s} decoder: {r['vae']} (tiny autoencoder, pulled with it; vae = \"full\" in an engine "
                  "config keeps the full VAE)")
        print(f"  {'':15s} Chinese prompts: {_chinese(r)}")
    print("pull one with `wanimage pull NAME`, then `wanimage serve --preset NAME` (docs/diffusers.md)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    presets = sub.add_parser("presets", help="list the model presets and which fit this machine")
    presets.add_argument("--json", action="store_true", help="machine-readable output")
    presets.add_argument("--markdown", action="store_true", help="the table of docs/diffusers.md")
    presets.add_argument("--data-dir", help="data directory (pulled weights in DATA_DIR/models)")
    presets.set_defaults(func=cmd_presets)
