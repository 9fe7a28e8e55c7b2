"""Downloads for `wanimage pull`, through the hubs' own clients: `huggingface_hub` (progress bars,
resume of interrupted files, HF_TOKEN, HF_ENDPOINT mirrors all come from it) and, for users in
mainland China, the optional `modelscope` package. Only the files `repo_files.select_files` keeps
are fetched, into a plain folder of the models directory (models_dir.py); the manifest is written
once every file is there."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .models_dir import folder_bytes, write_manifest
from .repo_files import NotAPipeline, select_component_files, select_files, select_model_files

DISK_MARGIN = 1 * 10**9  # keep a gigabyte free beyond the download


class PullError(RuntimeError):
    """A pull that cannot go on: the message says why and what to do."""


@dataclass
class Plan:
    repo: str
    files: dict[str, int]  # selected path -> bytes (published size)
    target: Path

    @property
    def total(self) -> int:
        return sum(self.files.values())

    def remaining(self) -> int:
        """Bytes still to fetch: files absent from the target or of another size."""
        return sum(size for f, size in self.files.items()
                   if not (self.target / f).is_file() or (self.target / f).stat().st_size != size)


def endpoint() -> str:
    from huggingface_hub import constants

    return os.environ.get("HF_ENDPOINT") or constants.ENDPOINT


def check_free_space(plan: Plan, disk_usage: Callable = shutil.disk_usage) -> None:
    where = plan.target
    while not where.exists():
        where = where.parent
    free = disk_usage(where).free
    need = plan.remaining()
    if need + DISK_MARGIN > free:
        raise PullError(f"{plan.repo}: {need / 1e9:.2f} GB to download but {free / 1e9:.2f} GB free on {where} "
                        f"(and {DISK_MARGIN / 1e9:.0f} GB kept free): free some space or pull elsewhere with --to DIR")


# ------------------------------------------------------------------------------ Hugging Face


def _hf_errors(repo: str, licence_url: str | None):
    """Translate huggingface_hub's refusals into messages that say what to do."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    class _Translate:
        def __enter__(self):
            return self

        def __exit__(self, kind, exc, tb):
            page = licence_url or f"https://huggingface.co/{repo}"
            token = "HF_TOKEN is set" if os.environ.get("HF_TOKEN") else "no HF_TOKEN is set"
            if isinstance(exc, GatedRepoError):
                raise PullError(
                    f"{repo} is gated: the Hub serves it only to accounts that accepted its licence ({token}). "
                    f"Open {page}, accept the licence, then set HF_TOKEN to a token of that account "
                    "(https://huggingface.co/settings/tokens) or run `hf auth login`, and pull again") from exc
            if isinstance(exc, RepositoryNotFoundError):
                raise PullError(f"{repo}: no such repository on {endpoint()} (or it is private and {token}); "
                                "check the id, or set HF_TOKEN") from exc
            if isinstance(exc, Exception) and not isinstance(exc, PullError | NotAPipeline):
                # HfHubHTTPError, httpx's connection errors, timeouts: the hub is not reachable
                raise PullError(f"{repo}: {endpoint()} refused or could not be reached ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''}). Set HF_ENDPOINT to a mirror, "
                                "use --source modelscope, or carry a copy made with `wanimage pull --to DIR` "
                                "and install it with `wanimage pull --from DIR`") from exc
            return False

    return _Translate()


def plan_huggingface(repo: str, target: Path, variant: str | None, revision: str | None = None,
                     licence_url: str | None = None, kind: str = "pipeline") -> Plan:
    """List the repository, read its model_index.json, select the files to fetch (`kind`: "model",
    a transformers model folder such as a preset's translator; "component", one diffusers model
    such as a tiny autoencoder)."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.hf_api import RepoFile

    with _hf_errors(repo, licence_url):
        api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None)
        tree = {e.path: e.size for e in api.list_repo_tree(repo, recursive=True, revision=revision)
                if isinstance(e, RepoFile)}
        if kind != "pipeline":
            return _plan_model(repo, tree, target, kind)
        index = None
        if "model_index.json" in tree:
            target.mkdir(parents=True, exist_ok=True)
            index_path = hf_hub_download(repo, "model_index.json", revision=revision, local_dir=target,
                                         endpoint=os.environ.get("HF_ENDPOINT") or None)
            index = json.loads(Path(index_path).read_text())
    return _plan(repo, tree, index, variant, target)


def _plan(repo: str, tree: dict[str, int], index: dict | None, variant: str | None, target: Path) -> Plan:
    try:
        selected = select_files(tree, index, variant)
    except NotAPipeline as exc:
        raise PullError(f"{repo}: {exc}") from exc
    except ValueError as exc:
        raise PullError(f"{repo}: {exc}") from exc
    return Plan(repo, {f: tree[f] for f in selected}, target)


def _plan_model(repo: str, tree: dict[str, int], target: Path, kind: str = "model") -> Plan:
    select = select_component_files if kind == "component" else select_model_files
    try:
        return Plan(repo, {f: tree[f] for f in select(tree)}, target)
    except ValueError as exc:
        raise PullError(f"{repo}: {exc}") from exc


def download_huggingface(plan: Plan, revision: str | None = None, licence_url: str | None = None) -> dict:
    """Fetch the plan's files into its target (resuming partial files), then write the manifest."""
    from huggingface_hub import snapshot_download

    with _hf_errors(plan.repo, licence_url):
        snapshot_download(plan.repo, revision=revision, local_dir=plan.target, allow_patterns=list(plan.files),
                          endpoint=os.environ.get("HF_ENDPOINT") or None)
    return _finish(plan, revision, "huggingface")


def _finish(plan: Plan, revision: str | None, source: str) -> dict:
    short = [f for f, size in plan.files.items()
             if not (plan.target / f).is_file() or (plan.target / f).stat().st_size != size]
    if short:
        raise PullError(f"{plan.repo}: the download ended with {len(short)} file(s) missing or short "
                        f"(e.g. {short[0]}); run the same pull again to resume")
    return write_manifest(plan.target, plan.repo, revision, source, list(plan.files))


# ------------------------------------------------------------------------------ ModelScope


def _modelscope():
    try:
        import modelscope  # noqa: F401
        from modelscope import snapshot_download
        from modelscope.hub.api import HubApi
    except ImportError as exc:
        raise PullError("--source modelscope needs the modelscope package, which wanimage does not install by "
                        "default: run `.venv/bin/pip install modelscope` (or `pip install 'wanimage[modelscope]'`) "
                        "and pull again") from exc
    return HubApi, snapshot_download


def pull_modelscope(repo: str, model_id: str, target: Path, variant: str | None,
                    revision: str | None = None) -> dict:
    """The same selection, fetched from modelscope.cn by its own client."""
    HubApi, snapshot_download = _modelscope()
    try:
        entries = HubApi().get_model_files(model_id, revision=revision or "master", recursive=True)
        tree = {e["Path"]: int(e.get("Size") or 0) for e in entries if e.get("Type") != "tree"}
        index = None
        if "model_index.json" in tree:
            snapshot_download(model_id, revision=revision, local_dir=str(target), allow_patterns=["model_index.json"])
            index = json.loads((target / "model_index.json").read_text())
        plan = _plan(repo, tree, index, variant, target)
        check_free_space(plan)
        snapshot_download(model_id, revision=revision, local_dir=str(target), allow_patterns=list(plan.files))
    except PullError:
        raise
    except Exception as exc:  # the modelscope client raises its own types, and requests' ones
        raise PullError(f"{model_id} on modelscope.cn: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                        ) from exc
    return _finish(plan, revision, "modelscope")


__all__ = ["Plan", "PullError", "check_free_space", "download_huggingface", "endpoint", "folder_bytes",
           "plan_huggingface", "pull_modelscope"]
