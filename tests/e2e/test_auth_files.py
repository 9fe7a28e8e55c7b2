"""API keys in both dialects, the CLI's refusal to serve the network without keys, and the
signed, expiring file URLs (api-spec.md §1.2, §2.5, §4.6)."""

from __future__ import annotations

import base64
import http.client
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest

from tests.conftest import png_bytes
from tests.support.server import free_port, start_server

pytestmark = pytest.mark.store_independent  # API keys are checked at the edge; file URLs are signed, not stored

SYNC = "/api/v1/services/aigc/multimodal-generation/generation"
GENERATIONS = "/v1/images/generations"
EDITS = "/v1/images/edits"
PNG = png_bytes(320, 240)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def ds_body(prompt: str = "a red fox") -> dict:
    return {
        "model": "wan2.7-image",
        "input": {"messages": [{"role": "user", "content": [{"text": prompt}]}]},
        "parameters": {"size": "768*768"},
    }


# ------------------------------------------------------------------ API keys


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, database):
    """One server with keys for the module: the tests below only read how it answers."""
    running = start_server(tmp_path_factory.mktemp("keyed"), api_keys="k1,k2", database_url=database())
    yield running
    running.stop()


def _requests(server, headers: dict[str, str]):
    """(dialect, response) for one call of each kind."""
    base = server.base_url
    yield "dashscope", httpx.post(base + SYNC, json=ds_body(), headers=headers, timeout=60)
    yield "dashscope", httpx.get(base + "/api/v1/tasks/no-such-task", headers=headers)
    yield "openai", httpx.post(base + GENERATIONS, json={"prompt": "a red fox", "size": "768*768"}, headers=headers,
                               timeout=60)
    yield "openai", httpx.post(base + EDITS, data={"prompt": "a red fox", "size": "768*768"},
                               files=[("image", ("a.png", PNG, "image/png"))], headers=headers, timeout=60)
    yield "openai", httpx.get(base + "/v1/models", headers=headers)


def _assert_401(resp: httpx.Response, dialect: str) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers.get("x-request-id")
    body = resp.json()
    if dialect == "dashscope":
        assert set(body) == {"request_id", "code", "message"}
        assert body["code"] == "InvalidApiKey"
        assert body["request_id"] == resp.headers["x-request-id"]
        assert "API-key" in body["message"]
    else:
        assert body["error"]["code"] == "InvalidApiKey"
        assert body["error"]["type"] == "authentication_error"
        assert "API-key" in body["error"]["message"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "k1"},
     {"Authorization": "Basic azE6"}],
    ids=["none", "empty", "bearer-only", "no-scheme", "basic"],
)
def test_missing_key_401(keyed, headers):
    for dialect, resp in _requests(keyed, headers):
        _assert_401(resp, dialect)
        text = resp.json()["message"] if dialect == "dashscope" else resp.json()["error"]["message"]
        assert text == "No API-key provided."


@pytest.mark.parametrize("token", ["k3", "k1k2", "k1,k2", "K1", "k", "k1 k2"])
def test_wrong_key_401(keyed, token):
    for dialect, resp in _requests(keyed, {"Authorization": f"Bearer {token}"}):
        _assert_401(resp, dialect)
        text = resp.json()["message"] if dialect == "dashscope" else resp.json()["error"]["message"]
        assert text == "Invalid API-key provided."


@pytest.mark.parametrize("header", ["Bearer k1", "Bearer k2", "bearer k1", "BEARER  k2"])
def test_right_key_200(keyed, header):
    for _dialect, resp in _requests(keyed, {"Authorization": header}):
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("application/json")


def test_health_is_open(keyed):
    resp = httpx.get(keyed.base_url + "/health")
    assert resp.status_code == 200 and resp.json()["status"] == "ok"


def test_result_urls_need_no_key(keyed):
    resp = httpx.post(keyed.base_url + SYNC, json=ds_body(), headers={"Authorization": "Bearer k1"}, timeout=60)
    url = resp.json()["output"]["choices"][0]["message"]["content"][0]["image"]
    got = httpx.get(url)
    assert got.status_code == 200 and got.content.startswith(PNG_MAGIC)


# ------------------------------------------------------------------ CLI bind guard


def _serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANIMAGE_")}
    env["WANIMAGE_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [sys.executable, "-m", "wanimage.cli", "serve", "--port", str(free_port()), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_cli_refuses_network_bind_without_keys(tmp_path, host):
    proc = _serve(tmp_path, "--host", host)
    assert proc.returncode == 2, proc.stderr
    assert "WANIMAGE_API_KEYS" in proc.stderr and "--insecure" in proc.stderr
    assert host in proc.stderr
    assert not (tmp_path / "data").exists()  # it stopped before loading or creating anything


def test_cli_console_script_refuses_too(tmp_path):
    script = Path(sys.executable).with_name("wanimage")
    assert script.exists(), "make install puts the wanimage console script beside the interpreter"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANIMAGE_")}
    proc = subprocess.run([str(script), "serve", "--host", "0.0.0.0", "--port", str(free_port())],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "--api-keys" in proc.stderr and "--insecure" in proc.stderr


# ------------------------------------------------------------------ signed file URLs


@pytest.fixture(scope="module")
def result_url(server) -> str:
    body = {
        "model": "wan2.7-image",
        "input": {"messages": [{"role": "user", "content": [
            {"text": "put a box here"},
            {"image": "data:image/png;base64," + base64.b64encode(PNG).decode()},
        ]}]},
        "parameters": {"size": "768*768"},
    }
    resp = httpx.post(server.base_url + SYNC, json=body, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()["output"]["choices"][0]["message"]["content"][0]["image"]


def _key_of(url: str) -> str:
    return unquote(urlsplit(url).path.removeprefix("/files/"))


def _secret_bytes(server) -> list[bytes]:
    text = (server.settings.data_dir / "secret.key").read_bytes()
    return [text.strip(), bytes.fromhex(text.decode().strip())]


def _raw_get(server, target: str) -> tuple[int, bytes]:
    """GET with the request target sent verbatim (httpx would normalise `..` away)."""
    host, port = urlsplit(server.base_url).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", target)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_result_url_works(server, result_url):
    assert result_url.startswith(server.base_url + "/files/")
    query = parse_qs(urlsplit(result_url).query)
    assert set(query) == {"Expires", "Signature"}
    assert int(query["Expires"][0]) > time.time() + 23 * 3600  # valid 24 h
    resp = httpx.get(result_url)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "image/png"
    assert resp.content.startswith(PNG_MAGIC)
    assert "private" in resp.headers["cache-control"]
    head = httpx.head(result_url)
    assert head.status_code == 200 and head.headers["content-type"] == "image/png"


def _with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for k, v in changes.items():
        if v is None:
            query.pop(k, None)
        else:
            query[k] = v
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return parts._replace(query=qs).geturl()


def _assert_403(resp: httpx.Response) -> None:
    assert resp.status_code == 403, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json()["code"] == "AccessDenied"
    assert not resp.content.startswith(PNG_MAGIC)


def test_tampered_signature_403(result_url):
    signature = parse_qs(urlsplit(result_url).query)["Signature"][0]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    _assert_403(httpx.get(_with_query(result_url, Signature=flipped)))
    _assert_403(httpx.get(_with_query(result_url, Signature="0" * 64)))
    _assert_403(httpx.get(_with_query(result_url, Signature="not-hex")))
    _assert_403(httpx.get(_with_query(result_url, Signature=None)))
    _assert_403(httpx.get(_with_query(result_url, Expires=None)))
    _assert_403(httpx.get(result_url.split("?")[0]))


def test_extended_expiry_breaks_the_signature(result_url):
    expires = int(parse_qs(urlsplit(result_url).query)["Expires"][0])
    _assert_403(httpx.get(_with_query(result_url, Expires=str(expires + 3600))))


def test_signature_is_bound_to_the_key(server, result_url):
    other = _key_of(result_url).replace(".png", "0.png")
    url = result_url.replace(urlsplit(result_url).path, "/files/" + other)
    _assert_403(httpx.get(url))


def test_expired_url_403(server, result_url):
    key = _key_of(result_url)
    old = server.service.images.signed_url(key, server.base_url, now=time.time() - 2 * 86400)
    assert int(parse_qs(urlsplit(old).query)["Expires"][0]) < time.time()
    resp = httpx.get(old)
    _assert_403(resp)
    assert "expired" in resp.json()["message"]


@pytest.mark.parametrize(
    "target",
    [
        "/files/../secret.key",
        "/files/%2e%2e/secret.key",
        "/files/%2E%2E/secret.key",
        "/files/results/../../secret.key",
        "/files/results/%2e%2e/%2e%2e/secret.key",
        "/files/..%2fsecret.key",
        "/files/%2e%2e%2fsecret.key",
        "/files//etc/passwd",
        "/files/..\\secret.key",
        "/files/../secret.key?Expires=9999999999&Signature=" + "0" * 64,
    ],
)
def test_traversal_never_serves_the_secret(server, result_url, target):
    status, content = _raw_get(server, target)
    assert status in (403, 404), (status, content[:200])
    for secret in _secret_bytes(server):
        assert secret not in content


@pytest.mark.parametrize("key", ["../secret.key", "results/../../secret.key", "/etc/passwd", ".hidden.png"])
def test_traversal_refused_even_with_a_valid_signature(server, result_url, key):
    # Defence in depth: a key that slipped past signing must still not leave the store.
    store = server.service.images
    expires = int(time.time()) + 3600
    signature = store._signature(key, expires)
    target = f"/files/{key}?Expires={expires}&Signature={signature}"
    status, content = _raw_get(server, target)
    assert status in (403, 404), (status, content[:200])
    for secret in _secret_bytes(server):
        assert secret not in content


def test_missing_file_with_valid_signature_404(server):
    key = "results/2000-01-01/00000000000000000000000000000000.png"
    url = server.service.images.signed_url(key, server.base_url)
    resp = httpx.get(url)
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/json")
