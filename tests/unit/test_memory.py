"""The stack's memory sized for the machine (devkit/memory.py): boards of 1 to 8 GB, the floor
below which a server is refused, and /proc/meminfo read as the kernel writes it (this machine's
own file: proc(5)'s "MemTotal: N kB" lines)."""

from pathlib import Path

import pytest

from devkit.memory import FLOOR_MB, machine_mb, meminfo_mb, planned_mb, problems, sizing, warning

pytestmark = pytest.mark.unit


def test_each_board_gets_an_eighth_for_postgres_and_for_redis_within_bounds():
    # About what 1, 2, 4 and 8 GB boards report (the firmware keeps some for the GPU).
    one, two, four, eight = (sizing(mb) for mb in (906, 1848, 3796, 7812))
    assert (one.shared_buffers_mb, one.redis_maxmemory_mb) == (112, 112)
    assert (two.shared_buffers_mb, two.redis_maxmemory_mb) == (224, 224)
    assert (four.shared_buffers_mb, four.effective_cache_size_mb) == (464, 1888)
    assert (eight.shared_buffers_mb, eight.redis_maxmemory_mb) == (512, 976)
    big = sizing(24 * 1024)
    assert (big.shared_buffers_mb, big.effective_cache_size_mb, big.redis_maxmemory_mb) == (
        512,
        4096,
        1024,
    )
    assert sizing(100).shared_buffers_mb == 32 and sizing(100).maintenance_work_mem_mb == 16
    assert sizing(906).env() == {
        "DEVKIT_PG_SHARED_BUFFERS": "112MB",
        "DEVKIT_PG_EFFECTIVE_CACHE_SIZE": "448MB",
        "DEVKIT_PG_MAINTENANCE_WORK_MEM": "48MB",
        "DEVKIT_REDIS_MAXMEMORY": "112mb",
    }


def test_below_the_floor_refused_and_a_tight_board_warned_in_one_line():
    [refused] = problems("pi-zero", 430)
    assert "pi-zero has 430 MiB" in refused and f"{FLOOR_MB} MiB" in refused
    assert "devkit_memory_mb" in refused and "\n" not in refused
    assert problems("pi3", 906) == [] and problems("laptop", 16000) == []
    assert "pi3 has 906 MiB" in warning("pi3", 906) and "nothing is evicted" in warning("pi3", 906)
    assert warning("pi4", 3796) == "" and warning("pi-zero", 430) == ""


def test_meminfo_is_read_as_the_kernel_writes_it():
    text = Path("/proc/meminfo").read_text()
    kib = int(next(line for line in text.splitlines() if line.startswith("MemTotal:")).split()[1])
    assert meminfo_mb(text) == kib // 1024 > 0
    assert meminfo_mb("MemFree: 1 kB\n") == 0 and meminfo_mb("") == 0


def test_the_setting_wins_over_the_measured_memory_which_wins_over_this_machines():
    assert planned_mb(512, 3796) == 512 and planned_mb("0", "3796") == 3796
    assert planned_mb(0, 0) == planned_mb(None) == machine_mb()
