"""Provenance marks (docs/provenance.md), each read back with a reader other than the writer's:
c2pa.Reader for the manifest, Pillow's getxmp() for the XMP, Pillow's text chunks for the
parameters, and the watermark's detector after the edits images go through."""

from __future__ import annotations

import datetime
import io
import json
import struct
import zlib

import c2pa
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image, ImageDraw, ImageFilter

from wanimage import __version__
from wanimage.cli import main as cli_main
from wanimage.config import Settings
from wanimage.core.job import resolve_job
from wanimage.core.pipeline import finish_image
from wanimage.core.postprocess import encode_png
from wanimage.core.provenance import ImageFacts, Provenance, ingredient_of, watermark
from wanimage.core.provenance import xmp as xmp_labels
from wanimage.core.provenance.c2pa import TRAINED_ALGORITHMIC_MEDIA, read_manifest
from wanimage.core.provenance.verify import verify_bytes
from wanimage.core.request import build_request

AIGC_KEYS = ["Label", "ContentProducer", "ProduceID", "ReservedCode1", "ContentPropagator", "PropagateID",
             "ReservedCode2"]


def photo(width: int = 512, height: int = 512, seed: int = 0) -> Image.Image:
    """Smooth colour fields, shapes with soft edges and sensor noise: a photo to the detector."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) / max(width, height)
    base = np.stack([128 + 90 * np.sin(3 * x + seed), 120 + 70 * np.cos(4 * y), 140 + 80 * np.sin(5 * x * y)], -1)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(25):
        x0, y0, r = int(rng.integers(0, width)), int(rng.integers(0, height)), int(rng.integers(10, width // 5))
        draw.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    noisy = np.asarray(img.filter(ImageFilter.GaussianBlur(1.5)), np.float32) + rng.normal(0, 5, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def facts(**changes) -> ImageFacts:
    base = dict(task_id="0b6f3c1e-task", index=2, prompt="a red fox, in snow", revised_prompt="a red fox, in deep snow",
                seed=42, width=512, height=512, model="wan2.7-image", engine="builtin", steps=4)
    return ImageFacts(**(base | changes))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def marked_png(provenance: Provenance, image: Image.Image | None = None, **changes) -> bytes:
    job = resolve_job(build_request(model="wan2.7-image", prompt="a red fox, in snow", seed=42), [])
    return finish_image(image or photo(), job, 1, provenance, facts(**changes))


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        out.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def with_one_pixel_changed(data: bytes) -> bytes:
    """The same file, every chunk kept (the manifest too), one byte of pixel data changed."""
    parts = [b"\x89PNG\r\n\x1a\n"]
    for kind, body in png_chunks(data):
        if kind == b"IDAT":
            raw = bytearray(zlib.decompress(body))
            raw[1000] ^= 0x01
            body = zlib.compress(bytes(raw))
        parts.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body)))
    return b"".join(parts)


# ------------------------------------------------------------------------------------------ C2PA


def test_manifest_validates_and_says_what_made_the_image(settings):
    provenance = Provenance.from_settings(settings)
    inputs = (ingredient_of(b"first input bytes", 1, "image/jpeg"), ingredient_of(b"second", 2))
    data = marked_png(provenance, ingredients=inputs)

    reader = c2pa.Reader("image/png", io.BytesIO(data))
    assert reader.get_validation_state() == "Valid"  # intact; the self-made signer is not trusted
    failures = [f["code"] for f in reader.get_validation_results()["activeManifest"]["failure"]]
    assert failures == ["signingCredential.untrusted"]
    manifest = reader.get_active_manifest()
    assert manifest["claim_generator_info"][0]["name"] == "wanimage"
    assert manifest["claim_generator_info"][0]["version"] == __version__
    actions = next(a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions"))["data"]["actions"]
    created = next(a for a in actions if a["action"] == "c2pa.created")
    assert created["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert created["parameters"]["org.wanimage.model"] == "wan2.7-image"
    assert created["parameters"]["org.wanimage.engine"] == "builtin"
    hashes_written = [i["metadata"]["org.wanimage.sha256"] for i in manifest["ingredients"]]
    assert hashes_written == [i.sha256 for i in inputs]
    assert all(i["relationship"] == "inputTo" and "thumbnail" not in i for i in manifest["ingredients"])


def test_a_changed_pixel_breaks_the_manifest(settings):
    data = marked_png(Provenance.from_settings(settings))
    changed = with_one_pixel_changed(data)
    assert Image.open(io.BytesIO(changed)).size == (512, 512)
    reader = c2pa.Reader("image/png", io.BytesIO(changed))
    assert reader.get_validation_state() == "Invalid"
    report = read_manifest(changed, "image/png")
    assert report.status == "invalid" and "assertion.dataHash.mismatch" in report.failures


def test_self_signed_certificate_is_made_once_in_the_data_dir(settings):
    Provenance.from_settings(settings)
    cert_path = settings.data_dir / "c2pa" / "signer.pem"
    first = cert_path.read_bytes()
    Provenance.from_settings(settings)  # a restart keeps the key
    assert cert_path.read_bytes() == first
    cert = x509.load_pem_x509_certificate(first)
    assert cert.issuer == cert.subject  # self-signed ...
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca  # ... end-entity
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey) and cert.public_key().curve.name == "secp256r1"
    assert oct((settings.data_dir / "c2pa" / "signer.key").stat().st_mode & 0o777) == "0o600"


def _certificate(subject: str, key, issuer: str, issuer_key, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    usage = dict(content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False,
                 encipher_only=False, decipher_only=False)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, **usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def test_a_chain_from_settings_signs_and_a_trusted_root_makes_it_valid(tmp_path):
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = _certificate("Example Root", root_key, "Example Root", root_key, ca=True)
    leaf = _certificate("images.example.com", leaf_key, "Example Root", root_key, ca=False)
    pem = serialization.Encoding.PEM
    (tmp_path / "chain.pem").write_bytes(leaf.public_bytes(pem) + root.public_bytes(pem))
    (tmp_path / "leaf.key").write_bytes(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                               serialization.NoEncryption()))
    (tmp_path / "root.pem").write_bytes(root.public_bytes(pem))
    settings = Settings(data_dir=tmp_path / "data", provenance_c2pa_cert=tmp_path / "chain.pem",
                        provenance_c2pa_key=tmp_path / "leaf.key")
    data = marked_png(Provenance.from_settings(settings))

    assert not (tmp_path / "data" / "c2pa").exists()  # nothing self-made when a chain is given
    untrusted = read_manifest(data, "image/png")
    assert untrusted.status == "untrusted" and untrusted.signer == "images.example.com"
    trusted = read_manifest(data, "image/png", trust_anchors=(tmp_path / "root.pem").read_bytes())
    assert trusted.status == "valid" and trusted.by_wanimage and trusted.model == "wan2.7-image"


def test_half_a_configured_signer_is_refused(tmp_path):
    (tmp_path / "chain.pem").write_text("x")
    with pytest.raises(ValueError, match="both"):
        Provenance.from_settings(Settings(data_dir=tmp_path, provenance_c2pa_cert=tmp_path / "chain.pem"))


# ------------------------------------------------------------------------------------------ XMP


def test_xmp_labels_read_back_with_pillows_parser(settings):
    data = marked_png(Provenance.from_settings(settings))
    image = Image.open(io.BytesIO(data))
    description = image.getxmp()["xmpmeta"]["RDF"]["Description"]  # Pillow + defusedxml, not our reader
    assert description["DigitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    label = json.loads(description["AIGC"])
    assert list(label) == AIGC_KEYS
    assert label == {"Label": "1", "ContentProducer": "wanimage", "ProduceID": "0b6f3c1e-task/2",
                     "ReservedCode1": "", "ContentPropagator": "", "PropagateID": "", "ReservedCode2": ""}
    assert xmp_labels.NS_TC260.encode() in image.info["XML:com.adobe.xmp"].encode()


def test_producer_and_propagator_come_from_settings(tmp_path):
    settings = Settings(data_dir=tmp_path, provenance_producer="Example Co. 91110000", provenance_propagator="pics.example")
    label = json.loads(Image.open(io.BytesIO(marked_png(Provenance.from_settings(settings)))).getxmp()
                       ["xmpmeta"]["RDF"]["Description"]["AIGC"])
    assert label["ContentProducer"] == "Example Co. 91110000" and label["ContentPropagator"] == "pics.example"
    assert label["PropagateID"] == label["ProduceID"] == "0b6f3c1e-task/2"


def test_hostile_xmp_is_refused_not_expanded():
    bomb = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>')
    with pytest.raises(ValueError, match="does not parse"):
        xmp_labels.read(bomb)


# ------------------------------------------------------------------------------------------ parameters


def test_parameters_chunk_in_the_a1111_format(settings):
    info = Image.open(io.BytesIO(marked_png(Provenance.from_settings(settings)))).info
    assert info["parameters"] == ('a red fox, in snow\nSteps: 4, Seed: 42, Size: 512x512, Model: wan2.7-image, '
                                  'Engine: builtin, Revised prompt: "a red fox, in deep snow"')


def test_parameters_keep_non_latin_prompts(settings):
    data = marked_png(Provenance.from_settings(settings), prompt="一只红色的狐狸", revised_prompt=None)
    assert Image.open(io.BytesIO(data)).info["parameters"].startswith("一只红色的狐狸\nSteps: 4, Seed: 42")


def test_each_part_turns_off(tmp_path):
    off = dict(provenance_c2pa=False, provenance_xmp=False, provenance_parameters=False, provenance_watermark=False)
    plain = photo()
    data = marked_png(Provenance.from_settings(Settings(data_dir=tmp_path, **off)), plain)
    assert [kind for kind, _ in png_chunks(data)] == [b"IHDR", b"IDAT", b"IEND"]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), np.asarray(plain))
    assert not (tmp_path / "c2pa").exists()
    only_params_off = Provenance.from_settings(Settings(data_dir=tmp_path, provenance_parameters=False))
    info = Image.open(io.BytesIO(marked_png(only_params_off))).info
    assert "parameters" not in info and "XML:com.adobe.xmp" in info


# ------------------------------------------------------------------------------------------ watermark


def _reencode(image: Image.Image, fmt: str, **options) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


@pytest.mark.parametrize("edit", ["none", "half size + JPEG 75", "crop 80%", "WEBP"])
def test_watermark_survives_what_images_go_through(edit):
    payload = watermark.payload_for("wanimage")
    marked = watermark.embed(photo(1024, 768, seed=3), payload)
    w, h = marked.size
    edited = {
        "none": lambda: marked,
        "half size + JPEG 75": lambda: _reencode(marked.resize((w // 2, h // 2), Image.Resampling.LANCZOS), "JPEG", quality=75),
        "crop 80%": lambda: marked.crop((97, 41, 97 + round(w * 0.8), 41 + round(h * 0.8))),
        "WEBP": lambda: _reencode(marked, "WEBP"),
    }[edit]()
    found = watermark.detect(edited)
    assert found.found and found.confidence > watermark.THRESHOLD + 2 and found.payload == payload


def test_watermark_costs_little_and_is_not_found_where_it_was_never_put():
    for seed in range(6):
        plain = photo(640, 480, seed=seed)
        assert not watermark.detect(plain).found
        marked = watermark.embed(plain, 123)
        mse = np.mean((np.asarray(marked, np.float64) - np.asarray(plain, np.float64)) ** 2)
        assert 10 * np.log10(255**2 / mse) > 40  # dB
    flat = Image.new("RGB", (600, 400), (250, 250, 250))
    ImageDraw.Draw(flat).rectangle((100, 100, 300, 300), fill=(20, 90, 200))
    assert not watermark.detect(flat).found


def test_watermark_is_full_strength_on_white_and_black():
    """The values are clipped to [2, 253] before the mark goes on, so pure white and black carry
    all of it (+-2) instead of the half a saturating add would leave."""
    for level, expected in ((255, {251, 255}), (0, {0, 4}), (128, {126, 130})):
        marked = np.asarray(watermark.embed(Image.new("RGB", (256, 256), (level,) * 3), 9))
        assert set(np.unique(marked)) == expected
        assert abs(int(np.count_nonzero(marked == max(expected))) - marked.size // 2) < marked.size // 10


def test_the_marked_pixels_go_into_the_png_as_they_are(settings):
    provenance = Provenance.from_settings(settings)
    image = photo(320, 200)
    pixels = provenance.mark_pixels(image)
    assert isinstance(pixels, np.ndarray) and pixels.shape == (200, 320, 3) and pixels.dtype == np.uint8
    assert np.array_equal(pixels, np.asarray(watermark.embed(image, provenance.payload)))
    decoded = Image.open(io.BytesIO(encode_png(pixels, 1, provenance.chunks(facts()))))
    assert decoded.mode == "RGB" and np.array_equal(np.asarray(decoded), pixels)
    rgba = np.dstack((pixels, np.full((200, 320), 77, np.uint8)))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_png(rgba, 0)))), rgba)
    with pytest.raises(ValueError, match="uint8"):
        encode_png(pixels.astype(np.float32))


def test_watermark_keeps_alpha():
    rgba = photo(300, 300).convert("RGBA")
    rgba.putalpha(Image.new("L", (300, 300), 77))
    marked = watermark.embed(rgba, 5)
    assert marked.mode == "RGBA" and marked.getchannel("A").getextrema() == (77, 77)


# ------------------------------------------------------------------------------------------ verify


def test_verify_reads_every_mark_and_exits_zero_only_when_one_is_found(settings, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANIMAGE_DATA_DIR", str(settings.data_dir))
    marked = tmp_path / "marked.png"
    marked.write_bytes(marked_png(Provenance.from_settings(settings)))
    plain = tmp_path / "plain.png"
    plain.write_bytes(encode_png(photo()))

    assert cli_main(["verify", str(marked)]) == 0
    out = capsys.readouterr().out
    assert "C2PA:       valid, untrusted signer - wanimage " in out
    assert '"ProduceID": "0b6f3c1e-task/2"' in out and "DigitalSourceType trainedAlgorithmicMedia" in out
    assert "parameters: a red fox, in snow | Steps: 4, Seed: 42" in out
    assert "watermark:  found, payload" in out and "(matches producer 'wanimage')" in out
    assert cli_main(["verify", str(plain)]) == 1
    out = capsys.readouterr().out
    assert "C2PA:       none" in out and "watermark:  not found" in out and "=> no wanimage mark" in out
    assert cli_main(["verify", str(tmp_path / "missing.png")]) == 2


def test_verify_reports_a_broken_manifest_but_still_finds_the_watermark(settings):
    report = verify_bytes(with_one_pixel_changed(marked_png(Provenance.from_settings(settings))), "x.png")
    assert report.c2pa.status == "invalid" and report.watermark.found and report.marked("wanimage")


def test_verify_never_raises_on_junk():
    report = verify_bytes(b"not an image at all", "junk.bin")
    assert report.error and not report.marked("wanimage")


def test_a_box_edit_keeps_every_pixel_outside_its_boxes(settings):
    """Palette transfer and the invisible watermark stay inside a box edit's region; the labels
    and the manifest still describe the whole file."""
    from wanimage.core.job import make_job
    from wanimage.core.pipeline import edit_region
    from wanimage.types import Box, Mode

    source = photo(512, 384, seed=3)
    palette = [{"hex": "#C2185B", "ratio": "60.00%"}, {"hex": "#FFFFFF", "ratio": "30.00%"},
               {"hex": "#000000", "ratio": "10.00%"}]
    req = build_request(model="wan2.7-image", prompt="x", images=["https://example.com/a.png"],
                        bbox_list=[[[100, 50, 300, 250]]], color_palette=palette, seed=1)
    job = make_job(model="wan2.7-image", mode=Mode.EDIT, prompt="x", original_prompt="x", width=1024, height=768,
                   n=1, seed=1, images=[source], boxes=[[Box(100, 50, 300, 250)]],
                   palette=[e.to_color() for e in req.color_palette])
    region = edit_region(job)
    assert region.getbbox() == (200, 100, 600, 500)  # the box in output pixels
    generated = source.resize((1024, 768))
    png = finish_image(generated, job, 1, Provenance.from_settings(settings), facts(width=1024, height=768), region)
    out = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    before = np.asarray(generated).astype(int)
    inside = np.asarray(region) > 0
    assert np.array_equal(out[~inside], before[~inside])  # bit for bit outside the box
    assert np.abs(out[inside] - before[inside]).mean() > 1  # palette and mark inside it
    assert read_manifest(png, "image/png").by_wanimage  # signed over the finished file


@pytest.mark.parametrize("label", [True, False])
def test_finish_image_marks_on_the_png_writers_threads_as_on_the_whole_image(settings, monkeypatch, label):
    """The fast path (marks drawn per slice, the file hashed as slices finish) writes the pixels
    of the plain one (label, then invisible mark, on the whole image), and a manifest that holds."""
    from wanimage.core import postprocess

    monkeypatch.setattr(postprocess.os, "cpu_count", lambda: 4)
    provenance = Provenance.from_settings(settings)
    req = build_request(model="wan2.7-image", prompt="a red fox", size="1024*1024", seed=1, thinking_mode=False,
                        watermark=label)
    job = resolve_job(req, [])
    image = photo(1024, 1024)
    data = finish_image(image, job, 1, provenance, facts(width=1024, height=1024))
    expected = provenance.mark_pixels(postprocess.add_watermark(image) if label else image)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), expected)
    assert sum(kind == b"IDAT" for kind, _ in png_chunks(data)) > 1
    report = read_manifest(data, "image/png")
    assert report.status == "untrusted" and report.failures == () and report.by_wanimage
    assert watermark.detect(Image.open(io.BytesIO(data))).found
