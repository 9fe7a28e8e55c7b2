"""C2PA signing through c2pa-rs's data-hash flow (core/provenance/c2pa_datahash.py), and the
fallback to c2pa.Builder.sign when that flow is missing or fails. Every result is read back
with c2pa.Reader, the library's own validator."""

from __future__ import annotations

import io
import json
import logging

import c2pa
import pytest

from tests.unit.test_provenance import marked_png, photo, png_chunks, with_one_pixel_changed
from wanimage.config import Settings
from wanimage.core.postprocess import encode_png, png_parts
from wanimage.core.provenance import Provenance, c2pa_datahash, ingredient_of
from wanimage.core.provenance.c2pa import ContentCredentials, manifest_definition, read_manifest


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def no_builder_sign(monkeypatch):
    """Builder.sign fails the test if it is called: the fast path must do without it."""
    def refuse(*args, **kwargs):
        raise AssertionError("c2pa.Builder.sign was called")
    monkeypatch.setattr(c2pa.Builder, "sign", refuse)


def credentials(settings: Settings, **options) -> ContentCredentials:
    ContentCredentials.from_files(None, None, settings.data_dir)  # makes the self-signed pair
    directory = settings.data_dir / "c2pa"
    return ContentCredentials((directory / "signer.pem").read_bytes(), (directory / "signer.key").read_bytes(),
                              **options)


def manifest() -> dict:
    return manifest_definition(title="t.png", version="1", model="wan2.7-image", engine="builtin", ingredients=[])


def assert_intact(data: bytes) -> dict:
    reader = c2pa.Reader("image/png", io.BytesIO(data))
    assert reader.get_validation_state() == "Valid"
    failures = [f["code"] for f in reader.get_validation_results()["activeManifest"]["failure"]]
    assert failures == ["signingCredential.untrusted"]
    return json.loads(reader.detailed_json())


def test_results_are_signed_through_the_data_hash_flow(settings, no_builder_sign):
    provenance = Provenance.from_settings(settings)
    assert provenance.credentials.path == "data-hash"
    data = marked_png(provenance)  # finish_image, as the server and the CLI write results
    report = assert_intact(data)
    assert read_manifest(data, "image/png").by_wanimage

    chunks = png_chunks(data)
    assert [kind for kind, _ in chunks[:2]] == [b"IHDR", b"caBX"]  # the manifest right after IHDR
    store = report["manifests"][report["active_manifest"]]["assertion_store"]
    assert store["c2pa.hash.data"]["exclusions"] == [{"start": 33, "length": len(chunks[1][1]) + 12}]

    changed = with_one_pixel_changed(data)
    assert read_manifest(changed, "image/png").failures == ("assertion.dataHash.mismatch",)


def test_the_manifest_is_only_inserted_the_png_is_otherwise_unchanged(settings, no_builder_sign):
    png = encode_png(photo(), 1)
    signed = credentials(settings).sign_png(png, manifest())
    manifest_chunk = 12 + len(png_chunks(signed)[1][1])
    assert signed[:33] + signed[33 + manifest_chunk:] == png
    assert_intact(signed)


def test_a_png_signed_from_its_pieces_is_the_png_with_the_manifest_inserted(settings, no_builder_sign):
    # finish_image hands the seal the encoder's pieces, so the file is joined once: the result
    # is the same file, hashed the same way, whatever the pieces (one piece is cut at IHDR's end)
    parts = png_parts(photo(), 1)
    png = b"".join(parts)
    assert png == encode_png(photo(), 1) and len(parts) > 3
    signer = credentials(settings)
    for pieces in (parts, [png[:20], png[20:40], png[40:]], [png]):
        signed = signer.sign_png(pieces, manifest())
        manifest_chunk = 12 + len(png_chunks(signed)[1][1])
        assert signed[:33] + signed[33 + manifest_chunk:] == png
        assert_intact(signed)
    with pytest.raises(c2pa_datahash.DataHashUnavailable):
        signer._data_hash.sign_png([png[:10]], manifest())  # not a whole PNG head


def test_a_failing_data_hash_call_falls_back_to_builder_sign_and_says_so_once(settings, monkeypatch, caplog):
    def fail(self, png, manifest, **_):
        raise c2pa_datahash.DataHashUnavailable("signing: simulated")
    monkeypatch.setattr(c2pa_datahash.DataHashSigner, "sign_png", fail)
    signer = credentials(settings)
    with caplog.at_level(logging.WARNING, logger="wanimage.core.provenance.c2pa"):
        first = signer.sign_png(encode_png(photo(), 1), manifest())
        second = signer.sign_png(encode_png(photo(seed=1), 1), manifest())
    assert signer.path == "stream"
    assert [r.getMessage() for r in caplog.records if "data-hash" in r.getMessage()] == [
        "C2PA: the data-hash flow failed, signing through Builder.sign from now on: signing: simulated"]
    assert_intact(first)
    assert_intact(second)


def test_a_library_without_the_data_hash_functions_signs_through_builder_sign(settings, monkeypatch, caplog):
    monkeypatch.setitem(c2pa_datahash._FUNCTIONS, "c2pa_no_such_function", ([], None))
    with caplog.at_level(logging.WARNING, logger="wanimage.core.provenance.c2pa"):
        signer = credentials(settings)
    assert signer.path == "stream"
    assert "the data-hash flow is unavailable" in caplog.text and "c2pa_no_such_function" in caplog.text
    data = signer.sign_png(encode_png(photo(), 1), manifest())
    assert_intact(data)
    assert read_manifest(with_one_pixel_changed(data), "image/png").status == "invalid"


def test_both_paths_write_the_same_claims(settings):
    png = encode_png(photo(), 1)
    source = ingredient_of(b"input bytes", 1, "image/jpeg")
    definition = manifest_definition(title="t.png", version="1", model="wan2.7-image", engine="builtin",
                                     ingredients=[source])
    fast = read_manifest(credentials(settings).sign_png(png, definition), "image/png")
    slow = read_manifest(credentials(settings, data_hash=False).sign_png(png, definition), "image/png")
    assert fast == slow
    assert fast.status == "untrusted" and fast.model == "wan2.7-image" and fast.ingredients == (source.sha256,)
