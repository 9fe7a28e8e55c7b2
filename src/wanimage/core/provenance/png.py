"""PNG text chunks (PNG spec 11.3.4): the data of tEXt (Latin-1) and iTXt (UTF-8) chunks."""

from __future__ import annotations


def itxt_chunk(keyword: str, value: str) -> tuple[bytes, bytes]:
    """iTXt, uncompressed, no language tag: keyword NUL, flag 0, method 0, "" NUL, "" NUL, text."""
    return b"iTXt", keyword.encode("latin-1") + b"\0\0\0\0\0" + value.encode("utf-8")


def text_chunk(keyword: str, value: str) -> tuple[bytes, bytes]:
    """tEXt when the text is Latin-1 (what A1111 writes and every reader knows), else iTXt."""
    try:
        return b"tEXt", keyword.encode("latin-1") + b"\0" + value.encode("latin-1")
    except UnicodeEncodeError:
        return itxt_chunk(keyword, value)
