"""The C library's memory calls, for the places that hand freed memory back to the system.

One leaf module (it imports nothing of wanimage) so that every layer can use it: core after large
decodes, the diffusers loader after each streamed component. Off glibc (musl, macOS) each call is
a no-op."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os


@functools.cache
def libc() -> ctypes.CDLL | None:
    """This process's C library, or None where it cannot be opened."""
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def release_free_memory() -> None:
    """Give the heap's free pages back to the system (`malloc_trim(0)`): glibc keeps what was freed
    in its arenas otherwise, so a process that once held a large buffer stays that large."""
    lib = libc()
    if lib is not None and hasattr(lib, "malloc_trim"):
        lib.malloc_trim(0)


@functools.cache
def madvise():
    """libc's madvise(address, length, advice), typed, or None where there is none (off Linux:
    its callers read /proc/self/maps too)."""
    lib = libc()
    fn = getattr(lib, "madvise", None) if lib is not None and os.path.exists("/proc/self/maps") else None
    if fn is not None:
        fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int
    return fn
