"""The models directory: one plain folder per pulled repository, with a manifest of its files.

    <models_dir>/stabilityai--sd-turbo/
        model_index.json, unet/..., vae/...     exactly the files `wanimage pull` selected
        .wanimage-pull.json                     repo, revision, source, {path: bytes}

The manifest is written last, so a pull that was interrupted leaves no manifest and the folder
counts as incomplete (a second pull resumes it). A folder is "on disk" when its manifest exists
and every file in it has its recorded size. The same layout is what `pull --to DIR` writes for an
offline machine and what `pull --from DIR` installs; `from_pretrained` reads the folder as is."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

MANIFEST = ".wanimage-pull.json"


def folder_name(repo: str) -> str:
    return repo.replace("/", "--")


@dataclass
class Status:
    repo: str
    path: Path
    on_disk: bool
    bytes: int  # what is there now
    missing: list[str]  # files of the manifest absent or short; ["(not pulled)"] without a manifest

    @property
    def label(self) -> str:
        return "on disk" if self.on_disk else "missing"


class ModelsDir:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser()

    def path(self, repo: str) -> Path:
        return self.root / folder_name(repo)

    def manifest(self, repo: str) -> dict | None:
        return read_manifest(self.path(repo))

    def status(self, repo: str) -> Status:
        path = self.path(repo)
        manifest = read_manifest(path)
        present = folder_bytes(path)
        if manifest is None:
            return Status(repo, path, False, present, ["(not pulled)"])
        missing = [f for f, size in manifest["files"].items()
                   if not (path / f).is_file() or (path / f).stat().st_size != size]
        return Status(repo, path, not missing, present, missing)

    def install(self, source: Path, repo: str | None = None) -> list[str]:
        """Copy pulled folders from `source` (a `pull --to` directory, or one pulled folder)
        into this models directory; returns the repos installed. Each copy is checked against its manifest."""
        source = Path(source).expanduser()
        folders = [source] if read_manifest(source) else sorted(p for p in source.iterdir() if read_manifest(p))
        if repo is not None:
            folders = [f for f in folders if read_manifest(f)["repo"] == repo]
        if not folders:
            what = f"a pulled copy of {repo}" if repo else "pulled model folders"
            raise FileNotFoundError(f"{source} holds no {what} (folders with {MANIFEST}, as `wanimage pull --to` "
                                    "writes them)")
        installed = []
        for folder in folders:
            manifest = read_manifest(folder)
            check_complete(folder, manifest)
            target = self.path(manifest["repo"])
            if target.resolve() != folder.resolve():
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(folder, target, ignore=shutil.ignore_patterns(".cache"))
            installed.append(manifest["repo"])
        return installed


def read_manifest(path: Path) -> dict | None:
    try:
        data = json.loads((Path(path) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) and data.get("repo") else None


def write_manifest(path: Path, repo: str, revision: str | None, source: str, files: list[str]) -> dict:
    """Record what is in `path` now (each file's size), after a download completed."""
    check = {f: (Path(path) / f).stat().st_size for f in files}
    manifest = {"repo": repo, "revision": revision, "source": source, "files": check,
                "pulled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (Path(path) / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def check_complete(folder: Path, manifest: dict) -> None:
    missing = [f for f, size in manifest["files"].items()
               if not (folder / f).is_file() or (folder / f).stat().st_size != size]
    if missing:
        raise FileNotFoundError(f"{folder} is an incomplete copy of {manifest['repo']}: "
                                f"{len(missing)} file(s) absent or short, e.g. {missing[0]}")


def folder_bytes(path: Path) -> int:
    if not path.is_dir():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and ".cache" not in f.parts)
