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


MADV_DONTNEED = 4


def drop_clean_file_pages(path: str | os.PathLike) -> bool:
    """Drop from this process the resident pages of its memory mappings of the file at `path`,
    when none of them was ever written (smaps: no Anonymous pages, the copies a write makes in a
    private mapping; Private_Dirty also counts a freshly written file's page cache), so dropping loses nothing:
    a page read again faults back in from the file, unchanged. For weights a library mapped
    copy-on-write (safetensors) and the process no longer reads, or reads only as they are on disk.
    False (nothing dropped) where a page was written, or off Linux."""
    advise, target = madvise(), os.path.realpath(path)
    if advise is None:
        return False
    ranges, dirty, current = [], 0, None
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split(maxsplit=5)
            if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):  # a mapping's first line
                current = head[0] if len(head) == 6 and head[5].strip() == target else None
                if current:
                    lo, hi = (int(x, 16) for x in current.split("-"))
                    ranges.append((lo, hi - lo))
            elif current and head[0] == "Anonymous:":
                dirty += int(head[1])
    if not ranges or dirty:
        return False
    for start, length in ranges:
        advise(start, length, MADV_DONTNEED)
    return True


def available_bytes() -> int | None:
    """What the kernel says a new process can take without swapping (/proc/meminfo's MemAvailable),
    None where it does not say (not Linux)."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
