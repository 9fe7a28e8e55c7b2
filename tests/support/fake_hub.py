"""A Hugging Face Hub on loopback, for `wanimage pull` tests: it serves local folders as model
repositories through the few endpoints huggingface_hub calls (tree listing, revision info, file
HEAD/GET with Range), so the real client runs end to end (HF_ENDPOINT, progress, resume) and
nothing leaves the machine. Repositories may be marked gated or missing to get the Hub's refusals."""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class FakeHub:
    repos: dict[str, Path] = field(default_factory=dict)  # repo id -> folder served as its files
    gated: set[str] = field(default_factory=set)
    byte_budget: int | None = None  # file bytes sent before the line goes dead mid-file...
    outage: bool = True  # ... and stays dead (True), or comes back at once (False: one cut)
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)  # repo -> path -> size to claim
    requests: list[str] = field(default_factory=list)
    url: str = ""

    def files(self, repo: str) -> dict[str, int]:
        root = self.repos[repo]
        real = {p.relative_to(root).as_posix(): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}
        return {**real, **self.sizes.get(repo, {})}

    def start(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                hub.handle(self, head=True)

            def do_GET(self):
                hub.handle(self, head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ routes

    def handle(self, req: BaseHTTPRequestHandler, head: bool) -> None:
        path = urllib.parse.urlparse(req.path).path
        rng = req.headers.get("Range")
        self.requests.append(f"{req.command} {path}" + (f" {rng}" if rng else ""))
        if path.startswith("/api/models/"):
            rest = path.removeprefix("/api/models/")
            repo = "/".join(rest.split("/")[:2])
            if refusal := self.refusal(repo):
                return self.send(req, *refusal)
            kind = rest.split("/")[2] if len(rest.split("/")) > 2 else ""
            if kind == "tree":
                body = [{"type": "file", "path": p, "size": s, "oid": _oid(p)} for p, s in self.files(repo).items()]
                return self.send(req, 200, json.dumps(body).encode(), head=head)
            body = {"id": repo, "modelId": repo, "sha": COMMIT, "private": False,
                    "siblings": [{"rfilename": p} for p in self.files(repo)]}
            return self.send(req, 200, json.dumps(body).encode(), head=head)
        parts = path.lstrip("/").split("/")
        if len(parts) >= 5 and parts[2] == "resolve":
            repo, name = "/".join(parts[:2]), urllib.parse.unquote("/".join(parts[4:]))
            if refusal := self.refusal(repo):
                return self.send(req, *refusal)
            file = self.repos[repo] / name
            if not file.is_file():
                return self.send(req, 404, b'{"error": "Entry not found"}', {"X-Error-Code": "EntryNotFound"})
            return self.send_file(req, file, head)
        self.send(req, 404, b'{"error": "not found"}')

    def refusal(self, repo: str):
        if repo in self.gated:
            return (403, json.dumps({"error": f"Access to model {repo} is restricted. You must have access to it "
                                               "and be authenticated to access it. Please log in."}).encode(),
                    {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access restricted"})
        if repo not in self.repos:
            return 404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"}
        return None

    def send(self, req, status: int, body: bytes, headers: dict | None = None, head: bool = False) -> None:
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        req.send_header("X-Repo-Commit", COMMIT)
        for k, v in (headers or {}).items():
            req.send_header(k, v)
        req.end_headers()
        if not head:
            req.wfile.write(body)

    def send_file(self, req, file: Path, head: bool) -> None:
        data = file.read_bytes()
        start = 0
        rng = req.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng.removeprefix("bytes=").split("-")[0] or 0)
        body = data[start:]
        req.send_response(206 if start else 200)
        req.send_header("Content-Type", "application/octet-stream")
        req.send_header("Accept-Ranges", "bytes")
        req.send_header("Content-Length", str(len(body)))
        req.send_header("X-Repo-Commit", COMMIT)
        req.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        if start:
            req.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        req.end_headers()
        if head:
            return
        if self.byte_budget is not None and len(body) > self.byte_budget:
            sent, self.byte_budget = self.byte_budget, (0 if self.outage else None)
            req.wfile.write(body[:sent])  # then the line goes dead mid-file
            req.wfile.flush()
            req.close_connection = True
            return
        if self.byte_budget is not None:
            self.byte_budget -= len(body)
        req.wfile.write(body)


def _oid(path: str) -> str:
    return hashlib.sha1(path.encode()).hexdigest()
