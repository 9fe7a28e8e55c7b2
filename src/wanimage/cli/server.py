"""`wanimage generate --server URL`: the same request sent to a running wanimage (or any Wan 2.7
Image API) as an async task, with the task's progress on the bar; nothing is loaded here."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import httpx

from ..core.request import GenerationRequest
from .options import OptionError
from .progress import progress_bar

ASYNC_GENERATION = "/api/v1/services/aigc/image-generation/generation"  # the async endpoint
POLL_SECONDS = 0.25


def _image_ref(ref: Path | str) -> str:
    if isinstance(ref, str):
        return ref
    from PIL import Image  # the MIME type from the bytes, not the file name

    with Image.open(ref) as im:
        mime = Image.MIME.get(im.format or "", "image/png")
    return f"data:{mime};base64,{base64.b64encode(ref.read_bytes()).decode()}"


def request_body(req: GenerationRequest, refs: list[Path | str], options: dict[str, Any]) -> dict[str, Any]:
    """The DashScope wire body for `req`; `options` are the parameters the user set explicitly
    (so the server applies its own defaults to the rest)."""
    content = [{"image": _image_ref(ref)} for ref in refs] + [{"text": req.prompt}]
    parameters = {key: value for key, value in options.items() if value is not None}
    parameters["seed"] = req.seed  # chosen here when not given: it names the files
    return {"model": req.model, "input": {"messages": [{"role": "user", "content": content}]},
            "parameters": parameters}


class ServerClient:
    def __init__(self, base_url: str, api_key: str | None, timeout: float = 30.0) -> None:
        base = base_url.rstrip("/")
        self.base = base[: -len("/api/v1")] if base.endswith("/api/v1") else base
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=self.base, headers=headers, timeout=timeout)

    def _call(self, method: str, path: str, **kwargs) -> dict[str, Any]:
        try:
            answer = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise OptionError(f"--server {self.base}: cannot reach the server ({exc})") from None
        try:
            body = answer.json()
        except ValueError:
            raise OptionError(f"--server {self.base}: HTTP {answer.status_code} with a body that is not JSON; "
                              "is this a wanimage (Wan 2.7 Image API) server?") from None
        if answer.status_code >= 400:
            raise OptionError(f"{body.get('code', answer.status_code)}: {body.get('message', answer.text)}")
        return body

    def submit(self, body: dict[str, Any]) -> str:
        answer = self._call("POST", ASYNC_GENERATION, json=body, headers={"X-DashScope-Async": "enable"})
        return answer["output"]["task_id"]

    def task(self, task_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/tasks/{task_id}")["output"]

    def cancel(self, task_id: str) -> None:
        try:
            self.http.post(f"/api/v1/tasks/{task_id}/cancel")
        except httpx.HTTPError:
            pass

    def download(self, url: str) -> bytes:
        try:
            answer = self.http.get(url)
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            raise OptionError(f"downloading {url}: {exc}") from None
        return answer.content


def _image_urls(output: dict[str, Any]) -> list[str]:
    return [item["image"] for choice in output.get("choices", [])
            for item in choice["message"]["content"] if "image" in item]


def wait_for(client: ServerClient, task_id: str, description: str) -> dict[str, Any]:
    """Poll until the task ends; Ctrl+C cancels it on the server."""
    with progress_bar(description) as bar:
        try:
            while True:
                output = client.task(task_id)
                status = output.get("task_status")
                if status in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"):
                    break
                bar.describe(f"{description} ({'queued' if status == 'PENDING' else 'running'})")
                bar.to(output.get("progress", 0) / 100 * 0.99)
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            client.cancel(task_id)
            raise
        if status == "SUCCEEDED":
            bar.describe(description)
            bar.to(1.0)
    if status != "SUCCEEDED":
        reason = f"{output.get('code', status)}: {output.get('message', '')}".rstrip(": ")
        raise OptionError(f"task {task_id} {status.lower()}: {reason}")
    return output


def run_on_server(req: GenerationRequest, refs: list[Path | str], options: dict[str, Any],
                  server: str, api_key: str | None) -> list[bytes]:
    client = ServerClient(server, api_key)
    task_id = client.submit(request_body(req, refs, options))
    output = wait_for(client, task_id, f"{req.mode.value} on {client.base}")
    return [client.download(url) for url in _image_urls(output)]
