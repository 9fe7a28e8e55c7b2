"""Quantities written for people. A leaf module (nothing of wanimage, nothing heavy), so a
command that only prints, such as `wanimage models`, imports no engine to format a size."""

from __future__ import annotations


def human(n: int) -> str:
    """Bytes for people: 2.58 GB, 412.0 MB, 7.9 kB."""
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.2f} {unit}" if unit == "GB" else f"{n / size:.1f} {unit}"
    return f"{n} B"
