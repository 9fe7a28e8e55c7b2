"""wanimage.memory: dropping a mapped file's pages only where nothing is lost."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.support.mapped import resident_kb
from wanimage.memory import drop_clean_file_pages


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps: Linux")
def test_clean_copy_on_write_pages_are_dropped_and_written_ones_never(tmp_path):
    path = tmp_path / "weights.bin"
    data = np.random.default_rng(0).integers(0, 256, 8 << 20, dtype=np.uint8)
    data.tofile(path)
    mapped = np.memmap(path, dtype=np.uint8, mode="c")  # private, copy-on-write: as safetensors maps
    assert int(mapped.sum()) == int(data.sum()) and resident_kb(path) >= 8 << 10  # read: resident
    assert drop_clean_file_pages(path) is True and resident_kb(path) == 0
    assert np.array_equal(mapped[: 1 << 20], data[: 1 << 20])  # read again: faulted back from the file
    mapped[0] ^= 0xFF  # a written page: dropping it would revert the write
    assert drop_clean_file_pages(path) is False
    assert mapped[0] == data[0] ^ 0xFF and resident_kb(path) > 0
    assert drop_clean_file_pages(tmp_path / "not-mapped.bin") is False
