"""C2PA signing of a PNG in one hashlib pass: c2pa-rs's data-hashed embeddable flow.

`c2pa.Builder.sign` copies the whole PNG through Python stream callbacks (for a 1K image,
about 280 reads and 250 writes of 8 KB) and hashes it: 3.2-3.5 ms. c2pa-rs has a lower-level
flow for writers that place the manifest themselves, and the native library that c2pa-python
ships and loads exports it as C functions, which c2pa-python 0.38 does not wrap. This module
calls those functions of that same library with ctypes:

1. `c2pa_builder_data_hashed_placeholder`: the manifest, unsigned, as a PNG `caBX` chunk of
   the size the signed one will have;
2. that chunk goes right after IHDR (offset 33), and the DataHash assertion excludes it, so
   the hash covers every other byte of the file: exactly the bytes of the PNG without it,
   which hashlib hashes in one pass (SHA-256: the claim's algorithm, and with SHA-NI the
   fastest of those C2PA allows);
3. `c2pa_builder_sign_data_hashed_embeddable` signs a claim holding that hash and returns the
   signed `caBX` chunk, padded to the placeholder's size, which takes the placeholder's place.

Readers see an ordinary embedded manifest with a `c2pa.hash.data` hard binding, which is what
`Builder.sign` writes for a PNG too. Any failure here (symbols missing in another build of the
library, an error from a call) raises `DataHashUnavailable`, and `ContentCredentials` falls
back to `Builder.sign`."""

from __future__ import annotations

import ctypes
import hashlib
import json
import threading
import weakref
from collections.abc import Sequence

import c2pa

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
AFTER_IHDR = 8 + 8 + 13 + 4  # signature; IHDR: length and type, 13 bytes of data, CRC
_FORMAT = b"image/png"

_P = ctypes.c_void_p
_BYTES_OUT = ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte))
# name: (argument types, result type), from c2pa-rs c2pa_c_ffi/src/c_api.rs
_FUNCTIONS = {
    "c2pa_settings_new": ([], _P),
    "c2pa_settings_update_from_string": ([_P, ctypes.c_char_p, ctypes.c_char_p], ctypes.c_int),
    "c2pa_context_builder_new": ([], _P),
    "c2pa_context_builder_set_settings": ([_P, _P], ctypes.c_int),  # copies the settings
    "c2pa_context_builder_build": ([_P], _P),  # consumes the context builder
    "c2pa_signer_from_info": ([ctypes.POINTER(c2pa.C2paSignerInfo)], _P),
    "c2pa_signer_reserve_size": ([_P], ctypes.c_int64),
    "c2pa_builder_from_context": ([_P], _P),
    "c2pa_builder_with_definition": ([_P, ctypes.c_char_p], _P),  # consumes the builder it is given
    "c2pa_builder_data_hashed_placeholder": ([_P, ctypes.c_size_t, ctypes.c_char_p, _BYTES_OUT], ctypes.c_int64),
    "c2pa_builder_sign_data_hashed_embeddable": ([_P, _P, ctypes.c_char_p, ctypes.c_char_p, _P, _BYTES_OUT],
                                                 ctypes.c_int64),
    "c2pa_error": ([], _P),
    "c2pa_free": ([_P], ctypes.c_int),
}


class DataHashUnavailable(Exception):
    """The data-hash flow cannot be used here, or a call of it failed."""


PngData = bytes | Sequence[bytes | memoryview]  # a PNG's bytes, or its pieces in order


def split_at(pieces: list, offset: int) -> tuple[list, list]:
    """The pieces before byte `offset` of their concatenation and those from it, a piece that
    straddles it cut in two (memoryview slices: no copy)."""
    for index, piece in enumerate(pieces):
        if offset <= 0:
            return pieces[:index], pieces[index:]
        if len(piece) > offset:
            view = memoryview(piece)
            return [*pieces[:index], view[:offset]], [view[offset:], *pieces[index + 1:]]
        offset -= len(piece)
    return pieces, []


def _load() -> ctypes.CDLL:
    """The native library c2pa-python loaded, with our own function objects (their argtypes
    are declared here and cannot clash with c2pa-python's)."""
    loaded = getattr(getattr(c2pa, "c2pa", None), "_lib", None)
    path = getattr(loaded, "_name", None)
    if not path:
        raise DataHashUnavailable("cannot find the native library c2pa-python loaded")
    try:
        lib = ctypes.CDLL(path)
        for name, (argtypes, restype) in _FUNCTIONS.items():
            function = getattr(lib, name)
            function.argtypes, function.restype = argtypes, restype
    except (OSError, AttributeError) as exc:  # another build of the library, without these symbols
        raise DataHashUnavailable(str(exc)) from exc
    return lib


class DataHashSigner:
    """A signer and a context built once; `sign_png` embeds a signed manifest in a PNG."""

    def __init__(self, info: c2pa.C2paSignerInfo, settings: dict) -> None:
        self._lib = lib = _load()
        self._lock = threading.Lock()  # one context and signer shared by the worker threads
        native_settings = self._made(lib.c2pa_settings_new(), "settings")
        try:
            if lib.c2pa_settings_update_from_string(native_settings, json.dumps(settings).encode(), b"json") != 0:
                raise self._error("settings")
            context_builder = self._made(lib.c2pa_context_builder_new(), "context builder")
            if lib.c2pa_context_builder_set_settings(context_builder, native_settings) != 0:
                lib.c2pa_free(context_builder)
                raise self._error("context settings")
            self._context = self._made(lib.c2pa_context_builder_build(context_builder), "context")
        finally:
            lib.c2pa_free(native_settings)
        try:
            self._signer = self._made(lib.c2pa_signer_from_info(ctypes.byref(info)), "signer")
        except DataHashUnavailable:
            lib.c2pa_free(self._context)
            raise
        self._reserve = int(lib.c2pa_signer_reserve_size(self._signer))
        weakref.finalize(self, _free, lib, self._signer, self._context)

    def sign_png(self, png: PngData, manifest: dict, *, sha256: bytes | None = None) -> bytes:
        """The signed PNG; `png` its bytes or its pieces in order (postprocess.png_parts), hashed
        piece by piece (unless `sha256`, their SHA-256, was computed as they were made) and
        joined once, with the manifest, into the file returned."""
        pieces = [png] if isinstance(png, bytes | bytearray | memoryview) else list(png)
        head, tail = split_at(pieces, AFTER_IHDR)
        first = b"".join(head)
        if len(first) != AFTER_IHDR or first[:8] != PNG_SIGNATURE or first[12:16] != b"IHDR":
            raise DataHashUnavailable("not a PNG that starts with IHDR")
        lib = self._lib
        with self._lock:
            builder = self._made(lib.c2pa_builder_from_context(self._context), "builder")
            builder = self._made(lib.c2pa_builder_with_definition(builder, json.dumps(manifest).encode()),
                                 "manifest definition")
        try:
            with self._lock:
                placeholder = self._bytes(lambda out: lib.c2pa_builder_data_hashed_placeholder(
                    builder, self._reserve, _FORMAT, out), "placeholder")
            # The hash covers the file minus the manifest chunk at AFTER_IHDR: the PNG as it is now.
            # Outside the lock: hashlib lets go of the GIL, so two workers hash at once.
            if sha256 is None:
                digest = hashlib.sha256()
                for piece in pieces:
                    digest.update(piece)
                sha256 = digest.digest()
            data_hash = {"exclusions": [{"start": AFTER_IHDR, "length": len(placeholder)}],
                         "name": "jumbf manifest", "alg": "sha256", "hash": list(sha256), "pad": []}
            with self._lock:
                signed = self._bytes(lambda out: lib.c2pa_builder_sign_data_hashed_embeddable(
                    builder, self._signer, json.dumps(data_hash).encode(), _FORMAT, None, out), "signing")
        finally:
            with self._lock:
                lib.c2pa_free(builder)
        if len(signed) != len(placeholder):
            raise DataHashUnavailable(f"signed manifest is {len(signed)} bytes, its placeholder {len(placeholder)}")
        return b"".join([first, signed, *tail])

    def _bytes(self, call, what: str) -> bytes:
        """Run a call that returns a length and hands out a buffer we must free."""
        buffer = ctypes.POINTER(ctypes.c_ubyte)()
        length = call(ctypes.byref(buffer))
        if length < 0 or not buffer:
            raise self._error(what)
        try:
            return ctypes.string_at(buffer, length)
        finally:
            self._lib.c2pa_free(buffer)

    def _made(self, handle, what: str):
        if not handle:
            raise self._error(what)
        return handle

    def _error(self, what: str) -> DataHashUnavailable:
        message = self._lib.c2pa_error()
        text = ctypes.string_at(message).decode(errors="replace") if message else "no message"
        if message:
            self._lib.c2pa_free(message)
        return DataHashUnavailable(f"{what}: {text}")


def _free(lib: ctypes.CDLL, *handles) -> None:
    for handle in handles:
        lib.c2pa_free(handle)
