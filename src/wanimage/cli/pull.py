"""`wanimage pull PRESET|REPO_ID`: the files a preset's pipelines load, into the models
directory (or `--to DIR`, a plain folder to carry to an offline machine; `--from DIR` installs
such a copy). Downloads go through huggingface_hub (progress, resume, HF_TOKEN, HF_ENDPOINT) or,
with `--source modelscope`, the modelscope package."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import settings_from


def _targets(name: str | None, variant: str | None) -> tuple[str | None, list]:
    """(preset name or None, [Repo]) for a preset name or a repository id."""
    from ..engines.diffusers.presets import PRESETS, REPOS, Repo

    if name is None:
        return None, []
    if name in PRESETS:
        return name, [REPOS[r] if variant is None else _with_variant(REPOS[r], variant) for r in PRESETS[name].repos]
    if "/" in name:
        known = REPOS.get(name)
        if known is not None:
            return None, [known if variant is None else _with_variant(known, variant)]
        return None, [Repo(name, "see the repository page", f"https://huggingface.co/{name}", 0, variant=variant)]
    raise ValueError(f"{name!r} is neither a preset ({', '.join(PRESETS)}) nor a Hub repository id (owner/name)")


def _with_variant(repo, variant: str):
    from dataclasses import replace

    return replace(repo, variant=variant or None)


def _pull_one(repo, root: Path, args: argparse.Namespace) -> None:
    from ..engines.diffusers import hub
    from ..engines.diffusers.models_dir import ModelsDir
    from ..units import human

    store = ModelsDir(root)
    status = store.status(repo.id)
    if status.on_disk:
        print(f"{repo.id}: already on disk in {status.path} ({human(status.bytes)})")
        return
    if args.source == "modelscope":
        if not repo.modelscope and repo.id in _known():
            raise hub.PullError(f"{repo.id} is not published on modelscope.cn as far as wanimage knows; "
                                "pull it from Hugging Face (set HF_ENDPOINT for a mirror)")
        model_id = repo.modelscope or repo.id
        print(f"{repo.id}: from modelscope.cn ({model_id}) into {status.path}")
        manifest = hub.pull_modelscope(repo.id, model_id, status.path, repo.variant, args.revision)
    else:
        plan = hub.plan_huggingface(repo.id, status.path, repo.variant, args.revision, repo.licence_url,
                                    kind=repo.kind)
        left = plan.remaining()
        print(f"{repo.id}: {len(plan.files)} files, {human(plan.total)}"
              f"{f' ({human(left)} left to fetch)' if left < plan.total * 0.99 else ''}"
              f"{f', variant {repo.variant}' if repo.variant else ''}, from {hub.endpoint()} into {status.path}")
        print(f"  licence: {repo.licence} ({repo.licence_url})")
        if args.dry_run:
            for f, size in plan.files.items():
                print(f"  {size / 1e6:10.1f} MB  {f}")
            return
        hub.check_free_space(plan)
        manifest = hub.download_huggingface(plan, args.revision, repo.licence_url)
    total = sum(manifest["files"].values())
    print(f"{repo.id}: done, {len(manifest['files'])} files, {human(total)} in {status.path}")


def _known() -> set[str]:
    from ..engines.diffusers.presets import REPOS

    return set(REPOS)


def cmd_pull(args: argparse.Namespace) -> int:
    from ..engines.diffusers.hub import PullError
    from ..engines.diffusers.models_dir import ModelsDir

    settings = settings_from(args)
    models_dir = Path(args.models_dir).expanduser() if args.models_dir else settings.resolved_models_dir()
    try:
        preset, repos = _targets(args.name, args.variant)
        if args.from_dir:
            installed = []
            for repo in repos or [None]:
                installed += ModelsDir(models_dir).install(Path(args.from_dir), repo.id if repo else None)
            for repo_id in installed:
                print(f"{repo_id}: installed in {ModelsDir(models_dir).path(repo_id)}")
        else:
            if not repos:
                raise ValueError("name a preset or a repository id to pull (or --from DIR to install a copy)")
            root = Path(args.to).expanduser() if args.to else models_dir
            for repo in repos:
                _pull_one(repo, root, args)
            if args.to and not args.dry_run:
                print(f"carry {root} to the other machine, then run there: "
                      f"wanimage pull {args.name} --from {root}")
    except (PullError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return 130
    if preset and not args.to and not args.dry_run:
        status = _convert_for_openvino(preset, models_dir, settings.engine_config)
        if status:
            return status
        flag = f" --models-dir {models_dir}" if args.models_dir else ""
        print(f"serve it: wanimage serve --preset {preset}{flag}")
    return 0


def _convert_for_openvino(preset: str, models_dir: Path, engine_config: Path | None) -> int:
    """Where the preset runs on OpenVINO here (the CPU presets' default when openvino is installed,
    or a config file's `backend = "openvino"`), its IR is made now, in a child process, so that the
    server's first start loads it instead of converting (docs/diffusers.md "OpenVINO backend")."""
    from ..engines.diffusers.config import EngineConfigError
    from ..engines.diffusers.preset_config import PresetNotReady, preset_configs
    from ..errors import ApiError

    try:
        configs = preset_configs(preset, models_dir, models_dir, engine_config)
        if any(cfg.backend == "openvino" for cfg in configs.values()):
            import importlib.util

            if importlib.util.find_spec("openvino") is None:
                print("backend = \"openvino\" needs the openvino package: pip install 'wanimage[openvino]'",
                      file=sys.stderr)
                return 1
            from ..engines.diffusers.openvino_backend import convert_ahead

            convert_ahead(configs, echo=print)
    except (PresetNotReady, EngineConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ApiError as exc:  # a conversion that failed: its message names the component
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    pull = sub.add_parser("pull", help="download a preset's (or a Hub repository's) weights")
    pull.add_argument("name", nargs="?", help="a preset (`wanimage presets`) or a Hub repository id (owner/name)")
    pull.add_argument("--to", metavar="DIR", help="write plain folders here (to carry offline) instead of the models dir")
    pull.add_argument("--from", dest="from_dir", metavar="DIR", help="install folders written by `pull --to DIR`")
    pull.add_argument("--source", choices=["huggingface", "modelscope"], default="huggingface",
                      help="huggingface (HF_ENDPOINT for a mirror, HF_TOKEN for gated repos) or modelscope")
    pull.add_argument("--variant", help="weight variant to fetch, e.g. fp16 ('' for the plain files)")
    pull.add_argument("--revision", help="branch, tag or commit (default: the main branch)")
    pull.add_argument("--models-dir", help="where weights live (default: WANIMAGE_MODELS_DIR, else DATA_DIR/models)")
    pull.add_argument("--data-dir", type=Path, help="data directory (models go to DATA_DIR/models)")
    pull.add_argument("--dry-run", action="store_true", help="list the files and sizes, download nothing")
    pull.set_defaults(func=cmd_pull)
