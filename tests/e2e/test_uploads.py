"""The upload receiver accepts only what its own policy allows; oss:// keys resolve to the file."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.conftest import png_bytes

pytestmark = pytest.mark.store_independent  # uploads live in the image store, owned by their path


def policy(server) -> dict:
    r = httpx.get(server.api_base + "/uploads", params={"action": "getPolicy", "model": "wan2.7-image"})
    assert r.status_code == 200
    return r.json()["output"]


def upload(info: dict, key: str, data: bytes, **overrides) -> httpx.Response:
    form = {"OSSAccessKeyId": info["oss_access_key_id"], "Signature": info["signature"], "policy": info["policy"],
            "key": key, "x-oss-object-acl": info["x_oss_object_acl"],
            "x-oss-forbid-overwrite": info["x_oss_forbid_overwrite"], "success_action_status": "200", **overrides}
    return httpx.post(info["upload_host"], data=form, files={"file": ("x.png", data, "image/png")})


def test_upload_then_use_oss_key(server):
    info = policy(server)
    key = info["upload_dir"] + "/x.png"
    assert upload(info, key, png_bytes(300, 300, (1, 2, 3))).status_code == 200
    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": [
        {"text": "edit"}, {"image": "oss://" + key}]}]}, "parameters": {"size": "1K"}}
    r = httpx.post(server.api_base + "/services/aigc/multimodal-generation/generation", json=body,
                   headers={"X-DashScope-OssResourceResolve": "enable"}, timeout=30)
    assert r.status_code == 200, r.text
    assert server.engine.jobs[-1].images[0].getpixel((0, 0)) == (1, 2, 3)


def test_tampered_policy_refused(server):
    info = policy(server)
    terms = json.loads(base64.b64decode(info["policy"]))
    terms["upload_dir"] = "elsewhere"
    forged = base64.b64encode(json.dumps(terms).encode()).decode()
    r = upload(info, "elsewhere/x.png", png_bytes(), policy=forged)
    assert r.status_code == 403 and r.json()["code"] == "AccessDenied"


def test_key_outside_upload_dir_refused(server):
    info = policy(server)
    for key in ("results/evil.png", info["upload_dir"] + "/../../results/evil.png", "other/x.png"):
        r = upload(info, key, png_bytes())
        assert r.status_code == 403, key


def test_unknown_oss_key_is_a_clear_400(server):
    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": [
        {"text": "edit"}, {"image": "oss://dashscope-instant/nope/x.png"}]}]}, "parameters": {"size": "1K"}}
    r = httpx.post(server.api_base + "/services/aigc/multimodal-generation/generation", json=body)
    assert r.status_code == 400 and r.json()["message"].startswith("image 1:")
