"""How much of a file this process holds mapped in memory (Linux: /proc/self/smaps)."""

from __future__ import annotations

import os


def resident_kb(path: str | os.PathLike) -> int:
    """Resident kB of this process's mappings of the file at `path`."""
    total, inside, target = 0, False, os.path.realpath(path)
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()
            if "-" in head[0] and not head[0].endswith(":"):
                inside = len(head) == 6 and head[5] == target
            elif inside and head[0] == "Rss:":
                total += int(head[1])
    return total
