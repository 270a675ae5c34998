"""The process heap while rows of several MiB pass through: blocks that big go back to the
system when freed.

glibc's malloc (Debian, Ubuntu, WSL's distributions) serves a block above its mmap threshold
(128 KiB at first) from a mapping of its own, returned on free; but each such free raises the
threshold to that block's size (up to 32 MiB), so the next rows' lines, values and COPY text
come from the heap, which keeps what is freed for reuse. After lines near
devkit.backup_max_line_mb (8 MiB), a restore's peak memory then rose by several of them: 103 MiB
for a file of JSON rows, against 94 MiB with the threshold fixed (benchmarks/README.md). A fixed
threshold (mallopt(3), M_MMAP_THRESHOLD: "If the parameter is set, the dynamic adjustment is
disabled", the GNU C Library manual, "Malloc Tunable Parameters") keeps such blocks mapped; 4
MiB leaves the 1 MiB blocks of ordinary rows on the heap, as before. Elsewhere than glibc:
nothing changes.
"""

from __future__ import annotations

import contextlib
import functools

_M_MMAP_THRESHOLD = -3  # malloc.h
_THRESHOLD = 4 << 20


@functools.cache  # once a process
def return_large_blocks() -> None:
    """Fix glibc's mmap threshold at 4 MiB for the rest of the process."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # not glibc: no such library or call
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)
