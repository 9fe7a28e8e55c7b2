"""Inputs decoded within a budget: downscaled on decode (JPEG by its decoder's draft, others by one
full decode then reduce), alpha composited on white exactly as before, the size as sent kept for
boxes, and the per-server budget and per-request pixel sum refused with the limit named."""

from __future__ import annotations

import asyncio
import base64
import io
import threading

import pytest
from PIL import Image

from wanimage.config import Settings
from wanimage.core.decoding import DecodeBudget, decode_image, original_size
from wanimage.core.inputs import ImageFetcher
from wanimage.core.job import resolve_job
from wanimage.core.request import build_request
from wanimage.errors import InvalidParameter, Throttling


def encoded(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_a_huge_transparent_png_decodes_small_and_white_keeping_its_size():
    data = encoded(Image.new("RGBA", (8000, 8000), (0, 0, 0, 0)), compress_level=9)
    decoded = decode_image(data, 1, max_pixels=2048 * 2048)
    assert decoded.image.mode == "RGB" and decoded.image.size == (2000, 2000)
    assert (decoded.width, decoded.height) == (8000, 8000) and original_size(decoded.image) == (8000, 8000)
    assert decoded.image.getextrema() == ((255, 255), (255, 255), (255, 255))


def test_alpha_reduced_in_strips_matches_composite_then_reduce():
    image = Image.new("RGBA", (1200, 900), (0, 0, 0, 0))
    for x in range(0, 1200, 7):  # stripes of half-transparent red over clear, across strip borders
        image.paste((220, 30, 30, 128), (x, 0, x + 3, 900))
    expected = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image).convert("RGB")
    decoded = decode_image(encoded(image), 1, max_pixels=300 * 225).image
    reference = expected.reduce(4)
    assert decoded.size == reference.size == (300, 225)
    import numpy as np

    diff = np.abs(np.asarray(decoded, np.int16) - np.asarray(reference, np.int16))
    assert diff.max() <= 1
    small = decode_image(encoded(image), 1).image  # under the limit: exactly the old composite
    assert list(small.getdata()) == list(expected.getdata())


def test_a_large_jpeg_is_scaled_by_its_decoder_and_its_exif_orientation_kept():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    data = encoded(Image.new("RGB", (6000, 4000), (10, 120, 200)), "JPEG", exif=exif.tobytes())
    decoded = decode_image(data, 1, max_pixels=1024 * 1024)
    assert decoded.image.width * decoded.image.height <= 1024 * 1024
    assert decoded.image.height > decoded.image.width  # turned as viewers show it
    assert (decoded.width, decoded.height) == (4000, 6000)


def test_boxes_follow_the_image_as_sent_and_reach_the_engine_scaled():
    data = encoded(Image.new("RGB", (4000, 3000), (0, 0, 0)))
    image = decode_image(data, 1, max_pixels=1000 * 750).image
    box = [2000, 1500, 3999, 2999]
    req = build_request(model="wan2.7-image", prompt="put the cat of image 1 into the box of image 2",
                        images=["x", "x"], size="1K", bbox_list=[[box], [box]])
    job = resolve_job(req, [image, image])
    source = job.source_boxes[0][0]  # the object to take: in the pixels of image 1 as decoded
    assert image.size == (1000, 750) and (source.x1, source.y1, source.x2, source.y2) == (500, 375, 1000, 750)
    edit = job.edit_boxes[0]  # the box edit: in output pixels
    assert (edit.x1, edit.y1, edit.x2, edit.y2) == (job.width // 2, job.height // 2, job.width, job.height)


def test_an_image_larger_than_the_whole_budget_is_400_naming_it():
    data = encoded(Image.new("RGB", (4000, 4000)))
    with pytest.raises(InvalidParameter) as info:
        decode_image(data, 2, budget=DecodeBudget(16 * 1024 * 1024))
    assert info.value.message.startswith("image 2: ") and "WANIMAGE_DECODE_BUDGET_BYTES" in info.value.message


def test_a_spent_budget_is_429_after_a_short_wait():
    budget = DecodeBudget(100 * 1024 * 1024, wait_seconds=0.2)
    held, release = threading.Event(), threading.Event()

    def hog():
        with budget.hold(90 * 1024 * 1024, 1):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=hog)
    thread.start()
    held.wait(5)
    try:
        with pytest.raises(Throttling) as info:
            decode_image(encoded(Image.new("RGB", (2000, 2000))), 1, budget=budget)
        assert "WANIMAGE_DECODE_BUDGET_BYTES" in info.value.message and info.value.retry_after
    finally:
        release.set()
        thread.join()
    assert budget.used == 0
    decode_image(encoded(Image.new("RGB", (2000, 2000))), 1, budget=budget)  # room again


def test_a_request_over_its_pixel_sum_is_400_before_any_decode(tmp_path):
    settings = Settings(data_dir=tmp_path, max_request_pixels=2 * 1000 * 1000)
    refs = ["data:image/png;base64," + base64.b64encode(encoded(Image.new("RGB", (1000, 1000)))).decode()] * 3
    with pytest.raises(InvalidParameter) as info:
        asyncio.run(ImageFetcher(settings).fetch_all(refs))
    assert "WANIMAGE_MAX_REQUEST_PIXELS" in info.value.message and "3,000,000" in info.value.message
    assert len(asyncio.run(ImageFetcher(settings).fetch_all(refs[:2]))) == 2


def test_the_worker_reads_the_pixels_decoded_at_submit_not_the_clients_file(tmp_path, monkeypatch):
    """Submit stores the decoded pixels beside the client's file; the worker loads those, so a
    big input is decoded at full size once. The ingredient is still the hash of the file as sent."""
    import hashlib

    from wanimage.core import pipeline
    from wanimage.core.decoding import DECODED_SUFFIX, decoded_png
    from wanimage.storage.local import LocalImageStore

    store = LocalImageStore(tmp_path / "files", b"k" * 32)
    data = encoded(Image.new("RGB", (3000, 2000), (10, 120, 200)), fmt="JPEG", quality=90)
    submitted = decode_image(data, 1, max_pixels=1024 * 1024)
    store.put_named("inputs/t/1.jpeg", data)
    store.put_named("inputs/t/1.jpeg" + DECODED_SUFFIX, decoded_png(submitted.image))

    def no_second_decode(*args, **kwargs):
        raise AssertionError("the worker decoded the client's file again")

    monkeypatch.setattr(pipeline, "decode_image", no_second_decode)
    images, ingredients = pipeline.load_inputs(store, ["input://inputs/t/1.jpeg"])
    assert images[0].tobytes() == submitted.image.tobytes()
    assert original_size(images[0]) == (3000, 2000)  # boxes keep their meaning in the sent pixels
    assert ingredients[0].sha256 == hashlib.sha256(data).hexdigest() and ingredients[0].mime == "image/jpeg"

    store.put_named("inputs/old/1.jpeg", data)  # queued before the decoded copy existed
    monkeypatch.undo()
    images, _ = pipeline.load_inputs(store, ["input://inputs/old/1.jpeg"])
    assert original_size(images[0]) == (3000, 2000)


def test_a_1k_result_reuses_freed_memory_instead_of_faulting_it_in_again(monkeypatch):
    """After the server's allocator settings, copying a 1K image's pixels again does not map and
    fault in fresh pages (each fault is microseconds on a VM: ~4 ms per 3 MB copy at the old
    1 MiB threshold), and a request of small images does not trim the heap; large decodes do."""
    import resource

    import numpy as np

    from wanimage.core import decoding, inputs

    assert decoding.tune_allocator() is True  # glibc, as on every supported Linux
    image = Image.new("RGB", (1024, 1024), (200, 40, 40))
    for _ in range(2):  # the first copies may grow the heap
        np.asarray(image).copy()

    def faults_of_one_copy() -> int:
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        np.asarray(image).copy()
        return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before

    faults = [faults_of_one_copy() for _ in range(4)]
    assert min(faults) < 100, faults  # 3 MB is 768 pages

    trims = []
    monkeypatch.setattr(inputs, "release_after_decoding",
                        lambda nbytes: trims.append(nbytes >= decoding.TRIM_AFTER_BYTES))
    fetcher = ImageFetcher(Settings())
    small = io.BytesIO()
    Image.new("RGB", (256, 256)).save(small, format="PNG")
    fetcher.decode_all([small.getvalue()])
    fetcher.decode_all([])
    assert trims == [False, False]
