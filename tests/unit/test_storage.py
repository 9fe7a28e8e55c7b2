"""LocalImageStore and the /files router: real files under tmp_path, the router on a bare app."""

from __future__ import annotations

import os
import stat
import time
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from wanimage.api import files
from wanimage.core.files import Files, RecentResults
from wanimage.errors import AccessDenied, ApiError, NotFound
from wanimage.storage import InvalidKey, LocalImageStore

PNG = b"\x89PNG\r\n\x1a\n" + b"fake image body"
BASE = "http://testserver"


@pytest.fixture
def store(tmp_path) -> LocalImageStore:
    return LocalImageStore.open(tmp_path / "data", ttl_seconds=3600)


@pytest.fixture
def client(store) -> TestClient:
    app = FastAPI()
    app.state.service = SimpleNamespace(files=Files(store))  # the one thing the files route asks for
    app.include_router(files.router)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)

    return TestClient(app, raise_server_exceptions=False)


def split(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return parts.path, query["Expires"][0], query["Signature"][0]


# -- secret ------------------------------------------------------------------------------------


def test_secret_is_created_private_and_reused(tmp_path):
    data = tmp_path / "data"
    first = LocalImageStore.open(data)
    key_file = data / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(bytes.fromhex(key_file.read_text().strip())) == 32
    key = first.put(PNG, prefix="results")
    url = first.signed_url(key, BASE, now=1000.0)
    again = LocalImageStore.open(data)  # a restart signs identically
    assert again.signed_url(key, BASE, now=1000.0) == url
    assert not list(data.glob(".secret.*"))  # the temporary file is gone


def test_secret_lives_outside_the_served_root(store, tmp_path):
    assert store.root == tmp_path / "data" / "files"
    assert not (store.root / "secret.key").exists()


# -- objects -----------------------------------------------------------------------------------


def test_put_read_exists_delete(store):
    key = store.put(PNG, prefix="results")
    prefix, day, name = key.split("/")
    assert prefix == "results" and len(day) == 10 and name.endswith(".png") and len(name) == 36
    assert store.read(key) == PNG and store.exists(key)
    assert store.path(key).is_file()
    assert not [p for p in store.path(key).parent.iterdir() if p.name.startswith(".")]
    assert store.delete(key) is True and store.delete(key) is False
    assert not store.exists(key)
    with pytest.raises(NotFound):
        store.read(key)


def test_put_named_replaces_and_delete_prefix(store):
    store.put_named("uploads/abc/photo one.jpg", b"1")
    store.put_named("uploads/abc/photo one.jpg", b"2")
    store.put_named("uploads/abc/sub/x.png", b"3")
    store.put_named("uploads/keep/y.png", b"4")
    assert store.read("uploads/abc/photo one.jpg") == b"2"
    assert store.delete_prefix("uploads/abc") == 2
    assert not store.exists("uploads/abc/sub/x.png") and store.exists("uploads/keep/y.png")
    assert store.delete_prefix("uploads/none") == 0


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../secret.key",
        "a/../../secret.key",
        "a/./b.png",
        "a//b.png",
        "a\\..\\b.png",
        "a/b\x00.png",
        "a/.hidden.png",
        "results/",
        "x" * 2000,
    ],
)
def test_unsafe_keys_are_refused(store, key):
    with pytest.raises(InvalidKey):
        store.path(key)
    with pytest.raises(InvalidKey):
        store.put_named(key, b"x")
    assert not store.exists(key)


def test_symlink_out_of_the_root_is_refused(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "loot.png").write_bytes(b"secret")
    (store.root / "link").symlink_to(outside)
    with pytest.raises(InvalidKey):
        store.read("link/loot.png")


def test_purge_older_than(store):
    old = store.put(PNG, prefix="results")
    new = store.put(PNG, prefix="uploads")
    stale_tmp = store.path(old).parent / ".x.png.tmp"
    stale_tmp.write_bytes(b"half")
    past = time.time() - 7200
    os.utime(store.path(old), (past, past))
    os.utime(stale_tmp, (past, past))
    assert store.purge_older_than(3600) == 2
    assert not store.exists(old) and store.exists(new)
    assert not (store.root / "results").exists()  # emptied directories go too
    assert store.root.is_dir()


# -- signatures --------------------------------------------------------------------------------


def test_signed_url_verifies_until_it_expires(store):
    key = store.put(PNG, prefix="results")
    now = 1_700_000_000.0
    path, expires, signature = split(store.signed_url(key, BASE + "/", now=now))
    assert path == f"/files/{key}" and int(expires) == int(now) + 3600
    assert store.verify(key, expires, signature, now=now + 3599) == int(expires)
    with pytest.raises(AccessDenied, match="expired"):
        store.verify(key, expires, signature, now=now + 3601)


@pytest.mark.parametrize("tamper", ["key", "expires", "signature", "missing", "malformed"])
def test_tampered_signatures_are_refused(store, tamper):
    key = store.put(PNG, prefix="results")
    _, expires, signature = split(store.signed_url(key, BASE))
    other = store.put(PNG, prefix="results")
    args = {
        "key": (other, expires, signature),
        "expires": (key, str(int(expires) + 1), signature),
        "signature": (key, expires, ("0" if signature[0] != "0" else "1") + signature[1:]),
        "missing": (key, None, signature),
        "malformed": (key, expires, "é" * 64),
    }[tamper]
    with pytest.raises(AccessDenied):
        store.verify(*args)


def test_other_secret_does_not_verify(tmp_path, store):
    key = store.put(PNG, prefix="results")
    _, expires, signature = split(store.signed_url(key, BASE))
    stranger = LocalImageStore(tmp_path / "other", os.urandom(32))
    with pytest.raises(AccessDenied):
        stranger.verify(key, expires, signature)


# -- router ------------------------------------------------------------------------------------


def test_router_serves_a_signed_file(store, client):
    key = store.put(PNG, prefix="results")
    response = client.get(store.signed_url(key, BASE))
    assert response.status_code == 200
    assert response.content == PNG
    assert response.headers["content-type"] == "image/png"
    cache = response.headers["cache-control"]
    assert cache.startswith("private, max-age=") and 3500 < int(cache.split("=")[1]) <= 3600
    head = client.head(store.signed_url(key, BASE))
    assert head.status_code == 200 and head.headers["content-length"] == str(len(PNG))


def test_router_answers_the_same_whether_it_reads_the_file_whole_or_streams_it(store, client, monkeypatch):
    """Small files are read in one go (fewer thread hops), big ones streamed by FileResponse:
    a client sees the same bytes and validators either way, and ranges are still honoured."""
    body = os.urandom(3000)
    url = store.signed_url(store.put(body, prefix="results"), BASE)
    whole = client.get(url)
    monkeypatch.setattr(files, "WHOLE_READ_MAX_BYTES", 0)
    streamed = client.get(url)
    assert whole.content == streamed.content == body
    for name in ("content-length", "etag", "last-modified", "accept-ranges", "content-type"):
        assert whole.headers[name] == streamed.headers[name], name
    part = client.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == body[10:20]


def test_router_answers_a_result_kept_in_memory_as_it_answers_from_the_file(store, client):
    """The GET that follows a sync answer takes the bytes a worker here just stored from memory:
    the same body and validators as a read of the file, and only while the file exists."""
    key = store.put(PNG, prefix="results")
    url = store.signed_url(key, BASE)
    from_file = client.get(url)
    client.app.state.service.files.recent.add(key, PNG)
    from_memory = client.get(url)
    assert from_memory.content == from_file.content == PNG
    for name in ("content-length", "etag", "last-modified", "accept-ranges", "content-type", "cache-control"):
        assert from_memory.headers[name] == from_file.headers[name], name
    path, expires, _ = split(url)
    assert client.get(path, params={"Expires": expires, "Signature": "0" * 64}).status_code == 403
    store.delete(key)
    assert client.get(url).status_code == 404


def test_recent_results_are_bounded_in_bytes_and_age():
    clock = SimpleNamespace(t=0.0)
    recent = RecentResults(max_bytes=10, max_age=30, clock=lambda: clock.t)
    recent.add("a", b"1234")
    recent.add("b", b"5678")
    recent.add("c", b"90ab")  # 12 bytes: the oldest goes
    assert (recent.get("a"), recent.get("b"), recent.get("c")) == (None, b"5678", b"90ab")
    recent.add("big", b"x" * 11)  # larger than the whole budget: never kept
    assert recent.get("big") is None and recent.get("c") == b"90ab"
    clock.t = 31
    assert recent.get("c") is None
    recent.add("d", b"1")  # adding drops what aged out
    assert list(recent._items) == ["d"]
    for _ in range(12):  # a key stored again is counted once: nothing else is pushed out
        recent.add("e", b"12")
    assert recent.get("d") == b"1" and recent._bytes == 3


def test_router_serves_keys_that_need_quoting(store, client):
    store.put_named("uploads/u1/photo one é.jpg", b"jpeg")
    response = client.get(store.signed_url("uploads/u1/photo one é.jpg", BASE))
    assert response.status_code == 200 and response.content == b"jpeg"
    assert response.headers["content-type"] == "image/jpeg"


def test_router_refuses_unsigned_expired_and_tampered(store, client):
    key = store.put(PNG, prefix="results")
    path, expires, signature = split(store.signed_url(key, BASE))
    assert client.get(path).status_code == 403
    assert client.get(path, params={"Expires": expires}).status_code == 403
    bad = {"Expires": expires, "Signature": signature[::-1]}
    assert client.get(path, params=bad).status_code == 403
    assert client.get(path, params={"Expires": "soon", "Signature": signature}).status_code == 403
    old_path, old_expires, old_signature = split(
        store.signed_url(key, BASE, now=time.time() - 7200)
    )
    expired = client.get(old_path, params={"Expires": old_expires, "Signature": old_signature})
    assert expired.status_code == 403 and expired.json()["code"] == "AccessDenied"


def test_router_answers_404_for_a_purged_file(store, client):
    key = store.put(PNG, prefix="results")
    url = store.signed_url(key, BASE)
    store.delete(key)
    response = client.get(url)
    assert response.status_code == 404 and response.json()["code"] == "NotFound"


@pytest.mark.parametrize(
    "raw_path",
    [
        "/files/../secret.key",
        "/files/%2e%2e/secret.key",
        "/files/%2E%2E%2Fsecret.key",
        "/files/results/%2e%2e/%2e%2e/secret.key",
        "/files//etc/passwd",
        "/files/%2Fetc%2Fpasswd",
        "/files/..%5Csecret.key",
        "/files/a%00.png",
    ],
)
def test_router_never_leaves_the_root(store, client, raw_path):
    secret = (store.root.parent / "secret.key").read_text()
    for query in ({}, {"Expires": "9999999999", "Signature": "0" * 64}):
        response = client.get(raw_path, params=query)
        assert response.status_code in (403, 404), (raw_path, response.status_code)
        assert secret not in response.text
    assert client.get("/files/").status_code in (403, 404)


def test_router_refuses_a_validly_signed_unsafe_key(store, client):
    key = "../secret.key"
    expires = str(int(time.time()) + 60)
    signature = store._signature(key, int(expires))  # forged with the real secret
    response = client.get(
        "/files/%2e%2e/secret.key", params={"Expires": expires, "Signature": signature}
    )
    # the handler is reached (the client does not normalise %2e%2e) and refuses the key itself
    assert response.status_code == 403 and response.json()["code"] == "AccessDenied"


def test_usage_counts_objects_and_bytes_but_not_temporaries(tmp_path):
    from wanimage.storage.local import LocalImageStore

    store = LocalImageStore(tmp_path / "files", b"s" * 32)
    store.put_named("uploads/d/a.png", b"12345")
    store.put_named("uploads/d/sub/b.png", b"123")
    (tmp_path / "files" / "uploads" / "d" / ".a.png.x.tmp").write_bytes(b"half")
    assert store.usage("uploads/d") == (2, 8)
    assert store.usage("uploads/none") == (0, 0)
