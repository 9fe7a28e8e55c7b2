"""Shared pieces for the input-image tests: images made in code and loopback servers in threads."""

from __future__ import annotations

import io
import socket
import ssl
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

from wanimage.errors import InvalidParameter


def image_bytes(
    fmt: str = "PNG", size: tuple[int, int] = (320, 256), mode: str = "RGB", color=(200, 30, 60)
) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format=fmt)
    return buf.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A valid tiny PNG whose header claims `width` x `height` (a decompression bomb's header)."""
    data = bytearray(image_bytes("PNG", (1, 1), "L", 0))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def assert_refused(exc: InvalidParameter, position: int, *fragments: str) -> None:
    assert isinstance(exc, InvalidParameter), repr(exc)
    assert exc.status == 400 and exc.field == "image"
    assert exc.message.startswith(f"image {position}: "), exc.message
    for fragment in fragments:
        assert fragment in exc.message, (fragment, exc.message)


class CountingListener:
    """A TCP listener that only counts the connections it accepts."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def __enter__(self) -> CountingListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


Handler = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def http_server(
    handler: Handler, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
) -> Iterator[ThreadingHTTPServer]:
    """Serve every GET with `handler(request)`; the server counts requests in `.hits`."""

    class _Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.server.hits += 1  # type: ignore[attr-defined]
            handler(self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), _Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.hits = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def send(
    request: BaseHTTPRequestHandler,
    body: bytes,
    status: int = 200,
    content_type: str = "image/png",
    headers: dict[str, str] | None = None,
) -> None:
    request.send_response(status)
    request.send_header("Content-Type", content_type)
    request.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
        request.send_header(k, v)
    request.end_headers()
    request.wfile.write(body)


def url(server: ThreadingHTTPServer, path: str = "/img.png") -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}{path}"
