"""S3ImageStore against a real SeaweedFS with credentials: objects, retention, presigned URLs that
the store itself checks (tampered, expired, foreign ones refused), 503 when the store is gone, and
a wanimage server whose result URLs point at the store. Loopback only."""

from __future__ import annotations

import base64
import io
import os
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from PIL import Image

from tests.conftest import png_bytes
from tests.support.seaweed import TcpForwarder, start_seaweed, tcp_peers
from tests.support.server import start_server
from wanimage.config import Settings
from wanimage.errors import NotFound, ServiceUnavailable
from wanimage.storage import ImageStore, open_image_store
from wanimage.storage.s3 import LIFECYCLE_RULE_ID, S3ImageStore, make_client

pytestmark = pytest.mark.slow

PNG = png_bytes(64, 48)


@pytest.fixture(scope="module")
def seaweed():
    running = start_seaweed()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def store(seaweed, tmp_path_factory):
    # Built the way the server builds it: from WANIMAGE_S3_* settings (bucket created, rule put).
    settings = Settings(data_dir=tmp_path_factory.mktemp("unused"), **seaweed.settings("images"))
    built = open_image_store(settings)
    assert isinstance(built, S3ImageStore) and isinstance(built, ImageStore)
    return built


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


# -- objects and retention ------------------------------------------------------------------


def test_put_read_exists_and_delete(store):
    key = store.put(PNG, prefix="results")
    assert key.startswith("results/") and key.endswith(".png")
    assert store.read(key) == PNG and store.exists(key)
    assert not store.exists("results/none.png") and not store.exists("../escape")
    with pytest.raises(NotFound):
        store.read("results/none.png")
    store.put_named("uploads/u1/a.png", PNG)
    store.put_named("uploads/u1/b/c.jpg", b"jpeg")
    store.put_named("uploads/u10/d.png", PNG)  # shares the text "uploads/u1", not the directory
    assert store.delete_prefix("uploads/u1") == 2
    assert not store.exists("uploads/u1/a.png") and store.exists("uploads/u10/d.png")
    assert store.delete("uploads/u10/d.png") and not store.delete("uploads/u10/d.png")


def test_purge_older_than(store):
    key = store.put(PNG, prefix="results")
    assert store.purge_older_than(3600) == 0 and store.exists(key)
    assert store.purge_older_than(3600, now=time.time() + 3605) >= 1  # as if an hour went by
    assert not store.exists(key)


def test_bucket_has_the_two_day_expiry_rule(store):
    # 2 days: SDK uploads live 48 h (results go at 24 h by the retention pass)
    rules = store.client.get_bucket_lifecycle_configuration(Bucket=store.bucket)["Rules"]
    ours = [r for r in rules if r["ID"] == LIFECYCLE_RULE_ID]
    assert ours and ours[0]["Expiration"] == {"Days": 2} and ours[0]["Status"] == "Enabled"
    store.ensure_bucket()  # idempotent: a second start neither fails nor duplicates the rule
    rules = store.client.get_bucket_lifecycle_configuration(Bucket=store.bucket)["Rules"]
    assert [r["ID"] for r in rules].count(LIFECYCLE_RULE_ID) == 1


def test_the_one_day_rule_of_earlier_versions_is_replaced(store):
    old = {"ID": "wanimage-expire-after-1-day", "Status": "Enabled", "Filter": {"Prefix": ""},
           "Expiration": {"Days": 1}}
    store.client.put_bucket_lifecycle_configuration(Bucket=store.bucket, LifecycleConfiguration={"Rules": [old]})
    store.ensure_bucket()
    rules = store.client.get_bucket_lifecycle_configuration(Bucket=store.bucket)["Rules"]
    assert [r["ID"] for r in rules] == [LIFECYCLE_RULE_ID]


# -- presigned URLs, checked by the store ----------------------------------------------------


@pytest.fixture(scope="module")
def key(store):
    return store.put(PNG, prefix="results")


def test_presigned_url_fetches_the_image(seaweed, store, key):
    url = store.signed_url(key, "http://ignored.invalid")
    assert url.startswith(f"{seaweed.endpoint}/{store.bucket}/{key}?")
    assert dict(parse_qsl(urlsplit(url).query))["X-Amz-Expires"] == "86400"  # valid 24 h
    r = httpx.get(url)
    assert r.status_code == 200 and r.content == PNG and r.headers["content-type"] == "image/png"


def test_unsigned_url_refused(seaweed, store, key):
    assert httpx.get(f"{seaweed.endpoint}/{store.bucket}/{key}").status_code == 403


def test_tampered_signature_refused(store, key):
    url = store.signed_url(key, "")
    sig = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    assert httpx.get(with_query(url, **{"X-Amz-Signature": flipped})).status_code == 403


def test_extended_expiry_breaks_the_signature(store, key):
    url = store.signed_url(key, "", expires_in=60)
    assert httpx.get(with_query(url, **{"X-Amz-Expires": "604800"})).status_code == 403


def test_signature_is_bound_to_the_key(store, key):
    other = store.put(b"other", prefix="results", suffix=".bin")
    url = store.signed_url(other, "")
    assert httpx.get(url.replace(other, key)).status_code == 403


def test_expired_url_refused(store, key):
    url = store.signed_url(key, "", expires_in=1)
    time.sleep(2.1)  # X-Amz-Date has whole seconds: 2.1 s is past any 1 s lifetime
    r = httpx.get(url)
    assert r.status_code == 403 and b"expired" in r.content.lower()


def test_wrong_secret_refused(seaweed, store, key):
    forger = make_client(seaweed.endpoint, seaweed.access_key, "0" * 40, "us-east-1")
    url = S3ImageStore(forger, store.bucket).signed_url(key, "")
    assert httpx.get(url).status_code == 403
    stranger = make_client(seaweed.endpoint, "nobody", seaweed.secret_key, "us-east-1")
    assert httpx.get(S3ImageStore(stranger, store.bucket).signed_url(key, "")).status_code == 403


def test_url_is_signed_for_the_public_endpoint(seaweed, store, key):
    """wanimage reaches the store at one address, clients at another: the signature covers Host,
    so only a URL signed for the public address works there."""
    internal = TcpForwarder(seaweed.ports["s3.port"])
    try:
        client = make_client(f"http://127.0.0.1:{internal.port}", seaweed.access_key, seaweed.secret_key, "us-east-1")
        signer = make_client(seaweed.endpoint, seaweed.access_key, seaweed.secret_key, "us-east-1")
        split = S3ImageStore(client, store.bucket, signer=signer)
        assert split.read(key) == PNG  # through the internal address
        public_url = split.signed_url(key, "")
        assert public_url.startswith(seaweed.endpoint) and httpx.get(public_url).content == PNG
        internal_url = S3ImageStore(client, store.bucket).signed_url(key, "")
        moved = internal_url.replace(f"127.0.0.1:{internal.port}", f"127.0.0.1:{seaweed.ports['s3.port']}")
        assert httpx.get(moved).status_code == 403
    finally:
        internal.close()


# -- through a wanimage server ---------------------------------------------------------------


def image_urls(body: dict) -> list[str]:
    return [c["image"] for ch in body["output"]["choices"] for c in ch["message"]["content"] if "image" in c]


def finished(api_base: str, task_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        out = httpx.get(f"{api_base}/tasks/{task_id}").json()["output"]
        if out["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED") or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


def test_text_to_image_url_points_at_the_store(seaweed, tmp_path):
    server = start_server(tmp_path, workers=1, **seaweed.settings("results-e2e"))
    try:
        body = {"model": "wan2.7-image", "parameters": {"size": "1K", "n": 1},
                "input": {"messages": [{"role": "user", "content": [{"text": "a red apple"}]}]}}
        r = httpx.post(server.api_base + "/services/aigc/multimodal-generation/generation", json=body, timeout=60)
        assert r.status_code == 200, r.text
        [url] = image_urls(r.json())
        assert url.startswith(f"{seaweed.endpoint}/results-e2e/results/"), url
        image = httpx.get(url)
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(image.content)).size == (1024, 1024)
        assert httpx.get(server.base_url + "/files/x.png").status_code == 404  # no local file route
        # Nothing but loopback: the test process (server, boto3, httpx) and SeaweedFS.
        for pid in (seaweed.pid, os.getpid()):
            assert tcp_peers(pid) <= {"127.0.0.1"}, (pid, tcp_peers(pid))
    finally:
        server.stop()


def test_store_down_is_503_not_500(tmp_path):
    own = start_seaweed()  # its own store: this test stops it
    server = start_server(tmp_path, workers=1, **own.settings("gone"))
    try:
        own.stop()
        # 1. A request path that writes (the input image is stored at submit): 503, retry later.
        edit = {"model": "wan2.7-image", "parameters": {"size": "1K"},
                "input": {"messages": [{"role": "user", "content": [
                    {"image": "data:image/png;base64," + base64.b64encode(png_bytes(512, 512)).decode()},
                    {"text": "make it blue"}]}]}}
        r = httpx.post(server.api_base + "/services/aigc/image-generation/generation", json=edit,
                       headers={"X-DashScope-Async": "enable"}, timeout=60)
        assert r.status_code == 503 and r.json()["code"] == "ServiceUnavailable", r.text
        assert r.headers["retry-after"] == "2" and "Traceback" not in r.text
        with pytest.raises(ServiceUnavailable):
            server.service.images.read("results/any.png")
        # 2. A task whose result cannot be stored ends FAILED with the same code, not RUNNING.
        text = {"model": "wan2.7-image", "parameters": {"size": "1K"},
                "input": {"messages": [{"role": "user", "content": [{"text": "an apple"}]}]}}
        r = httpx.post(server.api_base + "/services/aigc/image-generation/generation", json=text,
                       headers={"X-DashScope-Async": "enable"}, timeout=60)
        out = finished(server.api_base, r.json()["output"]["task_id"])
        assert out["task_status"] == "FAILED" and out["code"] == "ServiceUnavailable", out
    finally:
        server.stop()
        own.stop()


def test_first_put_rides_out_a_store_still_starting():
    """A fresh SeaweedFS may answer 5xx until its first volume registers: the first put retries;
    once a put has worked, a 5xx is the store's trouble and surfaces at once as a 503."""
    from botocore.stub import Stubber

    client = make_client("http://127.0.0.1:9", "k", "s", "us-east-1")  # stubbed: nothing is sent
    store = S3ImageStore(client, "images")
    with Stubber(client) as stub:
        stub.add_client_error("put_object", "InternalError", http_status_code=500)
        stub.add_response("put_object", {})
        store.put_named("results/a.png", PNG)
        stub.add_client_error("put_object", "InternalError", http_status_code=500)
        with pytest.raises(ServiceUnavailable):
            store.put_named("results/b.png", PNG)
        stub.assert_no_pending_responses()


def test_usage_counts_the_objects_and_bytes_under_a_directory(store):
    store.put_named("uploads/usage-test/a.png", PNG)
    store.put_named("uploads/usage-test/b.png", PNG + PNG)
    assert store.usage("uploads/usage-test") == (2, 3 * len(PNG))
    assert store.usage("uploads/usage-none") == (0, 0)
