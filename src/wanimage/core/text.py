"""Text the server can carry end to end: into the task store (SQLite and PostgreSQL text, which
refuses NUL), through JSON written as UTF-8, and into the PNG's UTF-8 iTXt chunks. A lone UTF-16
surrogate (JSON's "\\ud800" without its pair) or a NUL character passes JSON parsing but breaks
one of those later, in the worker; `check_text` refuses it at the edge, naming the field.

Both dialects call `check_text` on the whole request body before any other check, so the rule
also covers fields no model declares (they are logged, so they must be printable)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import InvalidParameter

# Where a string sits in the body: keys and list indexes from the root, e.g. ("input", "messages", 0).
Path = tuple[str | int, ...]
FieldOf = Callable[[Path], str]  # a value's path -> the field name a client knows

_UNCARRIABLE = re.compile("[\x00\ud800-\udfff]")
MAX_PREVIEW = 40  # characters of a client's key shown in a message
MAX_PATH = 120


def flaw(text: str) -> str | None:
    """What in `text` the server cannot carry, as a printable phrase; None when nothing."""
    if text.isascii():  # O(1) in CPython; then only NUL can be wrong, and `in` is a memchr
        if "\x00" not in text:
            return None
        index = text.index("\x00")
    else:
        found = _UNCARRIABLE.search(text)
        if found is None:
            return None
        index = found.start()
    if text[index] == "\x00":
        return f"a NUL character (\\u0000) at character {index}; remove it"
    return f"a lone UTF-16 surrogate (\\u{ord(text[index]):04x}) at character {index}; send valid Unicode text"


def first_field(path: Path) -> str:
    """The naming of a flat body: the top-level key."""
    return next((str(p) for p in path if isinstance(p, str)), "body")


def check_text(body: Any, field_of: FieldOf = first_field) -> None:
    """Refuse (400 InvalidParameter) the first string anywhere in `body` (parsed JSON or a form's
    values), key or value, that the server cannot carry. `field_of` names the field a value
    belongs to in the words of the dialect; a bad key is named by the object holding it."""
    for where, text, is_key in _strings(body):
        problem = flaw(text)
        if problem is None:
            continue
        path = _path(where)
        if is_key:
            field = next((str(p) for p in reversed(path) if isinstance(p, str)), "body")
            message = f"{field}: the field name '{printable(text)}' contains {problem}"
        else:
            field = field_of(path)
            place = "the text" if path == (field,) else f"the text at {render(path)}"
            message = f"{field}: {place} contains {problem}"
        raise InvalidParameter(message, field=field)


# A path as a linked list, (parent, key) or None at the root: O(1) a step, made a tuple only for
# the one string that is refused.
_Link = tuple[Any, str | int] | None


def _strings(body: Any) -> Iterator[tuple[_Link, str, bool]]:
    """Every string in `body` with where it sits, in document order (a key: with the place of the
    object holding it, before its value). Iterative: deep nesting must not exhaust the stack."""
    stack: list[tuple[_Link, Any]] = [(None, body)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            yield where, value, False
        elif isinstance(value, dict):
            children = []
            for key, item in value.items():
                if isinstance(key, str):
                    yield where, key, True
                children.append(((where, key), item))
            stack.extend(reversed(children))
        elif isinstance(value, list | tuple):
            stack.extend(reversed([((where, i), item) for i, item in enumerate(value)]))


def _path(where: _Link) -> Path:
    parts: list[str | int] = []
    while where is not None:
        where, part = where
        parts.append(part)
    return tuple(reversed(parts))


def render(path: Path) -> str:
    """("input", "messages", 0, "content") -> "input.messages[0].content"; a deep one cut short."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{printable(part)}" if out else printable(part))
        if len(out) > MAX_PATH:
            return out[:MAX_PATH] + "..."
    return out


def printable(text: str) -> str:
    """A client's string cut short, every unprintable character escaped: safe in a message and in
    a log line (no NUL, no surrogate, no line break)."""
    escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text[:MAX_PREVIEW])
    return escaped + ("..." if len(text) > MAX_PREVIEW else "")
