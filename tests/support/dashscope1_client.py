"""A dashscope 1.x client, run by the pinned SDK's own python (`.venv-sdk1`, made by `make sdk1`) and
never imported by the suite: `python dashscope1_client.py SURFACE [ARG]` calls one ImageGeneration
surface against DASHSCOPE_HTTP_BASE_URL with DASHSCOPE_API_KEY, and prints one JSON line with the
SDK's version, then one per response the SDK returned, for tests/e2e/test_dashscope_sdk1.py to check.
It uses only the SDK and the standard library: the 1.x venv has nothing else."""

import json
import sys

from dashscope.aigc.image_generation import ImageGeneration
from dashscope.api_entities.dashscope_response import Message
from dashscope.version import __version__

MODEL = "wan2.7-image"


def user(*content: dict) -> list:
    return [Message(role="user", content=list(content))]


def call(prompt: str):
    yield ImageGeneration.call(model=MODEL, messages=user({"text": prompt}), n=2, size="1K", seed=7)


def async_call_and_wait(prompt: str):
    task = ImageGeneration.async_call(model=MODEL, messages=user({"text": prompt}), size="1K")
    yield task
    yield ImageGeneration.wait(task=task)
    yield ImageGeneration.fetch(task=task.output.task_id)


def stream(prompt: str):
    yield from ImageGeneration.call(model=MODEL, messages=user({"text": prompt}), size="1K", stream=True)


def list_tasks(prompt: str):
    task = ImageGeneration.async_call(model=MODEL, messages=user({"text": prompt}), size="1K")
    yield ImageGeneration.wait(task=task)
    yield ImageGeneration.list(status="SUCCEEDED", page_size=50)


def local_file(path: str):
    """A path on this machine: the SDK uploads it (upload policy, then the OSS-style form post)."""
    yield ImageGeneration.call(model=MODEL, messages=user({"text": "make it blue"}, {"image": path}), size="1K")


def refused(prompt: str):
    yield ImageGeneration.call(model=MODEL, messages=user({"text": prompt}), n=9, size="1K")


SURFACES = {f.__name__: f for f in (call, async_call_and_wait, stream, list_tasks, local_file, refused)}


def seen(rsp) -> dict:
    """What a 1.x user reads from a response (output and usage are dicts in 1.x as in 2.x)."""
    return {"status_code": rsp.status_code, "code": rsp.code, "message": rsp.message,
            "output": rsp.output, "usage": getattr(rsp, "usage", None)}


def main() -> None:
    surface, arg = sys.argv[1:3]
    print(json.dumps({"version": __version__}), flush=True)
    for rsp in SURFACES[surface](arg):
        print(json.dumps(seen(rsp), default=dict), flush=True)


if __name__ == "__main__":
    main()
