"""Input images: references, formats, size rules, decoding and URL fetching (loopback only)."""

from __future__ import annotations

import asyncio
import base64
import io
import ipaddress
import threading
import time

import httpx
import pytest
from _inputs_helpers import assert_refused, http_server, image_bytes, png_declaring, send, url
from PIL import Image, ImageFile

from wanimage.config import Settings
from wanimage.core.inputs import ImageFetcher, InputImage, decode_image
from wanimage.errors import InvalidParameter

LOCAL = ipaddress.ip_address("127.0.0.1")


def only_127_0_0_1(ip) -> bool:
    return ip == LOCAL


def fetcher(resolve_upload=None, policy=only_127_0_0_1, **settings) -> ImageFetcher:
    return ImageFetcher(Settings(**settings), resolve_upload=resolve_upload, address_allowed=policy)


def fetch(ref: str, position: int = 1, **kwargs) -> InputImage:
    return asyncio.run(fetcher(**kwargs).fetch(ref, position))


def refused(ref: str, position: int = 1, **kwargs) -> InvalidParameter:
    with pytest.raises(InvalidParameter) as info:
        fetch(ref, position, **kwargs)
    return info.value


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- decoding -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "WEBP"])
def test_each_format_decodes_to_rgb(fmt):
    data = image_bytes(fmt, (320, 256))
    img = decode_image(data, 3)
    assert (img.position, img.format, img.width, img.height) == (3, fmt, 320, 256)
    assert img.image.mode == "RGB" and img.data == data
    img.image.getpixel((0, 0))  # fully decoded: pixel access works after the file is closed


@pytest.mark.parametrize("size", [(239, 300), (300, 239), (100, 100)])
def test_too_small_refused(size):
    with pytest.raises(InvalidParameter) as info:
        decode_image(image_bytes("PNG", size), 2)
    assert_refused(info.value, 2, f"{size[0]}x{size[1]}", "between 240 and 8000 px")


@pytest.mark.parametrize("size", [(8001, 1200), (1200, 8001)])
def test_too_large_side_refused(size):
    with pytest.raises(InvalidParameter) as info:
        decode_image(png_declaring(*size), 1)
    assert_refused(info.value, 1, f"{size[0]}x{size[1]}", "between 240 and 8000 px")


def test_limits_are_inclusive():
    assert decode_image(image_bytes("PNG", (1920, 240), "L", 0), 1).width == 1920  # ratio 8
    assert decode_image(image_bytes("PNG", (240, 240), "L", 0), 1).height == 240


@pytest.mark.parametrize("size", [(1921, 240), (240, 1921)])
def test_aspect_ratio_refused(size):
    with pytest.raises(InvalidParameter) as info:
        decode_image(image_bytes("PNG", size, "L", 0), 4)
    assert_refused(info.value, 4, "aspect ratio of 8.00:1", "at most 8 times")


def test_byte_cap_on_decode():
    data = image_bytes("BMP", (300, 300))
    with pytest.raises(InvalidParameter) as info:
        decode_image(data, 1, max_bytes=len(data) - 1)
    assert_refused(info.value, 1, "larger than")
    assert decode_image(data, 1, max_bytes=len(data)).format == "BMP"


@pytest.mark.parametrize("fmt", ["GIF", "TIFF"])
def test_other_formats_refused_and_named(fmt):
    with pytest.raises(InvalidParameter) as info:
        decode_image(image_bytes(fmt, (300, 300)), 1)
    assert_refused(info.value, 1, f"a {fmt} image", "JPEG, PNG, BMP or WEBP")


def test_garbage_refused():
    with pytest.raises(InvalidParameter) as info:
        decode_image(b"<html>not an image</html>", 1)
    assert_refused(info.value, 1, "not a readable image")
    with pytest.raises(InvalidParameter) as info:
        decode_image(b"", 1)
    assert_refused(info.value, 1, "empty")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP"])
def test_truncated_image_refused(fmt):
    noise = Image.effect_noise((600, 600), 64).convert("RGB")
    buf = io.BytesIO()
    noise.save(buf, format=fmt)
    data = buf.getvalue()
    with pytest.raises(InvalidParameter) as info:
        decode_image(data[: len(data) // 2], 1)
    assert_refused(info.value, 1, "corrupt or truncated")


@pytest.mark.parametrize("size", [(30000, 30000), (9000, 9000), (300, 60000)])
def test_decompression_bomb_refused_without_decoding(size, monkeypatch):
    loads = []
    original = ImageFile.ImageFile.load
    monkeypatch.setattr(
        ImageFile.ImageFile, "load", lambda self: loads.append(self) or original(self)
    )
    start = time.perf_counter()
    with pytest.raises(InvalidParameter) as info:
        decode_image(png_declaring(*size), 1)
    assert time.perf_counter() - start < 0.5
    assert loads == []  # refused from the header alone
    assert_refused(info.value, 1, "8000 px")


def test_alpha_is_composited_on_white():
    rgba = Image.new("RGBA", (300, 300), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((1, 1), (0, 0, 0, 255))  # opaque black
    rgba.putpixel((2, 2), (0, 0, 0, 128))  # half-transparent black
    buf = io.BytesIO()
    rgba.save(buf, format="PNG")
    img = decode_image(buf.getvalue(), 1)
    assert img.image.mode == "RGB"
    assert img.image.getpixel((0, 0)) == (255, 255, 255)
    assert img.image.getpixel((1, 1)) == (0, 0, 0)
    assert img.image.getpixel((2, 2)) in {(127, 127, 127), (126, 126, 126)}


def test_palette_transparency_is_composited_on_white():
    p = Image.new("P", (300, 300), 0)
    p.putpalette([0, 0, 255] + [0, 0, 0] * 255)
    buf = io.BytesIO()
    p.save(buf, format="PNG", transparency=0)
    assert decode_image(buf.getvalue(), 1).image.getpixel((5, 5)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when displayed
    buf = io.BytesIO()
    Image.new("RGB", (400, 300), (10, 20, 30)).save(buf, format="JPEG", exif=exif.tobytes())
    img = decode_image(buf.getvalue(), 1)
    assert (img.width, img.height) == (300, 400)


# -- references ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mime", ["jpeg", "jpg", "png", "bmp", "webp", "PNG"])
def test_data_uri(mime):
    data = image_bytes("PNG")
    img = fetch(f"data:image/{mime};base64,{b64(data)}")
    assert img.format == "PNG" and img.data == data  # the bytes decide, not the mime


def test_data_uri_refusals():
    png = b64(image_bytes("PNG"))
    assert_refused(refused(f"data:image/gif;base64,{png}", 2), 2, "'image/gif'", "image/webp")
    assert_refused(refused(f"data:image/png,{png}", 2), 2, "base64-encoded")
    assert_refused(refused("data:image/png;base64,@@@@", 2), 2, "not valid base64")
    assert_refused(refused("data:image/png;base64,", 2), 2, "empty")
    assert_refused(refused(f"data:image/png;base64,{b64(b'hello')}", 2), 2, "readable image")


def test_bare_base64_variants():
    data = image_bytes("WEBP")
    text = b64(data)
    assert fetch(text).data == data
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    assert fetch(wrapped).data == data  # MIME line breaks
    assert fetch(text.rstrip("=")).data == data  # missing padding
    urlsafe = base64.urlsafe_b64encode(data).decode()
    assert fetch(urlsafe).data == data


def test_bare_base64_refusals():
    assert_refused(refused("not base64 at all!", 5), 5, "not valid base64", "http(s) URL")
    assert_refused(refused(b64(b"just some text, no image"), 5), 5, "not a readable image")
    assert_refused(refused("QUJDR", 5), 5, "truncated")


def test_base64_byte_cap():
    data = image_bytes("BMP", (400, 400))  # ~480 kB
    assert_refused(refused(b64(data), 1, max_image_bytes=len(data) - 1), 1, "larger than")
    assert_refused(refused(b64(data), 1, max_image_bytes=1000), 1, "larger than")
    assert fetch(b64(data), max_image_bytes=len(data)).format == "BMP"


@pytest.mark.parametrize(
    "ref, scheme",
    [
        ("file:///etc/passwd", "file"),
        ("FILE:///etc/passwd", "file"),
        ("ftp://example.com/a.png", "ftp"),
        ("gopher://x/", "gopher"),
        ("s3://bucket/key.png", "s3"),
    ],
)
def test_other_schemes_refused(ref, scheme):
    assert_refused(refused(ref, 2), 2, f"{scheme}://", "http(s) URL", "base64", "oss://")


def test_oss_uploads():
    data = image_bytes("JPEG")
    store = {"dashscope-instant/abc/img.jpg": data}
    img = fetch("oss://dashscope-instant/abc/img.jpg", resolve_upload=store.get)
    assert img.format == "JPEG" and img.data == data
    exc = refused("oss://dashscope-instant/gone.jpg", 2, resolve_upload=store.get)
    assert (
        exc.message == "image 2: upload oss://dashscope-instant/gone.jpg not found; upload it again"
    )
    assert_refused(refused("oss://k.png", 2), 2, "not found")  # no upload store at all


def test_fetch_all_keeps_order_and_reports_lowest_failure():
    a, b = image_bytes("PNG", (300, 300)), image_bytes("JPEG", (400, 300))
    images = asyncio.run(fetcher(resolve_upload={"b": b}.get).fetch_all([b64(a), "oss://b"]))
    assert [(i.position, i.format, i.width) for i in images] == [(1, "PNG", 300), (2, "JPEG", 400)]
    with pytest.raises(InvalidParameter) as info:
        asyncio.run(fetcher().fetch_all([b64(a), "file:///x", "ftp://y"]))
    assert_refused(info.value, 2, "file://")
    assert asyncio.run(fetcher().fetch_all([])) == []


# -- URLs (the address policy allows 127.0.0.1 only; test_netguard covers the default) ----------


def test_url_happy_path_sniffs_format():
    data = image_bytes("WEBP")
    with http_server(lambda r: send(r, data, content_type="text/plain")) as server:
        img = fetch(url(server))
    assert img.format == "WEBP" and img.data == data


def test_url_fetches_are_concurrent():
    """Each answer waits until all four requests are in flight: fetched one after another, the
    first would wait in vain and be answered 503."""
    data = image_bytes("PNG")
    all_in = threading.Barrier(4, timeout=5)

    def together(request):
        try:
            all_in.wait()
        except threading.BrokenBarrierError:
            send(request, b"not concurrent", status=503, content_type="text/plain")
            return
        send(request, data)

    with http_server(together) as server:
        images = asyncio.run(fetcher().fetch_all([url(server, f"/{i}") for i in range(4)]))
    assert [i.position for i in images] == [1, 2, 3, 4]


def test_url_http_error_status():
    with http_server(lambda r: send(r, b"nope", status=404, content_type="text/plain")) as server:
        assert_refused(refused(url(server), 3), 3, "HTTP 404")


def test_url_non_image_content():
    with http_server(lambda r: send(r, b"<html></html>", content_type="image/png")) as server:
        assert_refused(refused(url(server)), 1, "not a readable image")


def test_url_connection_refused():
    with http_server(lambda r: None) as server:
        dead = url(server)
    assert_refused(refused(dead, 2), 2, "could not connect")


def test_url_timeout():
    release = threading.Event()

    def hang(request):
        release.wait(5)

    with http_server(hang) as server:
        start = time.perf_counter()
        exc = refused(url(server), 1, fetch_timeout_seconds=0.3)
        release.set()
    assert time.perf_counter() - start < 2
    assert_refused(exc, 1, "timed out after 0.3 s")


def test_url_redirects_followed_and_limited():
    data = image_bytes("PNG")

    def handler(request):
        if request.path == "/img.png":
            send(request, data)
        elif request.path.startswith("/hop"):
            n = int(request.path[4:])
            target = "/img.png" if n == 0 else f"/hop{n - 1}"
            send(request, b"", status=302, headers={"Location": target})
        elif request.path == "/loop":
            send(request, b"", status=307, headers={"Location": "/loop"})
        elif request.path == "/file":
            send(request, b"", status=301, headers={"Location": "file:///etc/passwd"})

    with http_server(handler) as server:
        assert fetch(url(server, "/hop4")).data == data  # 5 redirects: allowed
        assert_refused(refused(url(server, "/hop5")), 1, "more than 5 times")
        assert_refused(refused(url(server, "/loop")), 1, "more than 5 times")
        assert_refused(refused(url(server, "/file")), 1, "unsupported scheme 'file'")


def test_url_content_length_over_cap_refused_before_reading():
    release = threading.Event()

    def handler(request):
        request.send_response(200)
        request.send_header("Content-Length", str(50 * 1024 * 1024))
        request.end_headers()
        request.wfile.write(b"\0" * 1024)
        release.wait(5)  # the rest never comes: a fetcher that reads the body stalls here

    with http_server(handler) as server:
        start = time.perf_counter()
        exc = refused(url(server), 1, max_image_bytes=1024 * 1024)
        release.set()
    assert time.perf_counter() - start < 1.5
    assert_refused(exc, 1, "larger than 1 MB")


def test_url_streaming_cap_stops_reading(monkeypatch):
    cap, chunk, total = 1024 * 1024, 64 * 1024, 512 * 1024 * 1024
    written = []
    done = threading.Event()

    def endless(request):
        request.send_response(200)
        request.send_header("Content-Type", "image/png")
        request.end_headers()  # no Content-Length: the body runs until the connection closes
        block, sent = b"\x89PNG" + b"\0" * (chunk - 4), 0
        try:
            while sent < total:
                request.wfile.write(block)
                sent += len(block)
        except OSError:
            pass
        finally:
            written.append(sent)
            done.set()

    received = []
    original = httpx.Response.aiter_raw

    async def counting(self, chunk_size=None):
        async for part in original(self, chunk_size):
            received.append(len(part))
            yield part

    monkeypatch.setattr(httpx.Response, "aiter_raw", counting)
    with http_server(endless) as server:
        exc = refused(url(server), 2, max_image_bytes=cap)
        assert done.wait(10)
    assert_refused(exc, 2, "larger than 1 MB")
    assert cap < sum(received) <= cap + chunk  # the client read one chunk past the cap, no more
    assert written[0] < total // 4  # the server saw the connection close long before the end
