"""Generation parameters in the PNG `parameters` text chunk, the A1111 web UI's format that
image browsers and other A1111-style tools read (and InvokeAI-style tools show):

    <prompt>
    Steps: 30, Seed: 42, Size: 1024x1024, Model: wan2.7-image, Engine: builtin, Revised prompt: "..."

The prompt is the first lines; the last line is `key: value` pairs split at ", ", values with a
comma, colon, quote or newline written as JSON strings (as A1111 quotes them). Off with
WANIMAGE_PROVENANCE_PARAMETERS=false for deployments that must not leak prompts."""

from __future__ import annotations

import json

KEYWORD = "parameters"


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False) if any(c in value for c in ',:"\n') else value


def text(*, prompt: str, revised_prompt: str | None, seed: int, width: int, height: int,
         model: str, engine: str, steps: int | None = None) -> str:
    pairs: list[tuple[str, str]] = []
    if steps is not None:
        pairs.append(("Steps", str(steps)))
    pairs += [("Seed", str(seed)), ("Size", f"{width}x{height}"), ("Model", model), ("Engine", engine)]
    if revised_prompt and revised_prompt != prompt:
        pairs.append(("Revised prompt", revised_prompt))
    return prompt + "\n" + ", ".join(f"{key}: {_quote(value)}" for key, value in pairs)


def parse(value: str) -> dict[str, str]:
    """The prompt and the key/value pairs of a `parameters` text (ours or A1111's)."""
    prompt, _, last = value.rpartition("\n")
    fields: dict[str, str] = {"prompt": prompt}
    key, rest = None, last
    while rest:
        key, sep, rest = rest.partition(": ")
        if not sep:
            break
        if rest.startswith('"'):
            decoder = json.JSONDecoder()
            try:
                item, end = decoder.raw_decode(rest)
            except ValueError:
                item, end = rest, len(rest)
            fields[key.strip()] = str(item)
            rest = rest[end:].removeprefix(", ")
        else:
            item, _, rest = rest.partition(", ")
            fields[key.strip()] = item
    return fields
