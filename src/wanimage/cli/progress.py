"""The CLI's progress bar: percent of the task, time left, and log lines printed above it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}"


class Bar:
    def __init__(self, bar: tqdm) -> None:
        self._bar = bar

    def to(self, fraction: float) -> None:
        """Move to `fraction` (0-1) of the task; never backwards."""
        self._bar.update(max(0, round(fraction * 100) - self._bar.n))

    def describe(self, text: str) -> None:
        self._bar.set_description_str(text)


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[Bar]:
    with logging_redirect_tqdm(), tqdm(total=100, desc=description, bar_format=_FORMAT) as bar:
        yield Bar(bar)
