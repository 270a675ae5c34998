"""How much memory the stack plans for, from the machine's (a Raspberry Pi has 1, 2, 4 or 8 GB
and runs the app beside PostgreSQL and Redis): PostgreSQL's buffers and planner hint, Redis's
ceiling, and the floor below which provisioning refuses (site.yml's check, before any host
changes). The values go into .env.local, which compose.yaml passes to the servers.

The rule, for a machine of M MiB (MemTotal, what the kernel can hand out: a 1 GB Pi 3 reports
about 900): PostgreSQL's shared_buffers an eighth of it (PostgreSQL's documentation starts a
dedicated server at a quarter; here the app and Redis share the board), 32 MiB to 512 MiB; its
effective_cache_size half (a hint to the planner, nothing allocated), 128 MiB to 4 GiB (its
default); maintenance_work_mem a sixteenth, 16 to 64 MiB (its default); Redis's maxmemory an
eighth, 32 MiB to 1 GiB. Redis keeps its default policy, noeviction: at the ceiling a write is
refused with an error the app sees, and no key is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass

# Below this, refused: PostgreSQL, Redis, Docker and the app do not fit (a 512 MB Pi Zero 2 W
# reports about 430 MiB).
FLOOR_MB = 700
# Below this, a warning: it runs, with little room for the app (a 1 GB board).
TIGHT_MB = 1500
# When the machine's memory cannot be read.
UNKNOWN_MB = 4096


@dataclass(frozen=True)
class Sizing:
    shared_buffers_mb: int
    effective_cache_size_mb: int
    maintenance_work_mem_mb: int
    redis_maxmemory_mb: int

    def env(self) -> dict[str, str]:
        """The .env.local keys compose.yaml reads (its defaults are PostgreSQL's and Redis's own
        for a file written before these keys)."""
        return {
            "DEVKIT_PG_SHARED_BUFFERS": f"{self.shared_buffers_mb}MB",
            "DEVKIT_PG_EFFECTIVE_CACHE_SIZE": f"{self.effective_cache_size_mb}MB",
            "DEVKIT_PG_MAINTENANCE_WORK_MEM": f"{self.maintenance_work_mem_mb}MB",
            "DEVKIT_REDIS_MAXMEMORY": f"{self.redis_maxmemory_mb}mb",
        }


ENV_KEYS = tuple(Sizing(0, 0, 0, 0).env())


def _between(value: int, low: int, high: int, step: int = 16) -> int:
    return max(low, min(high, value // step * step))


def sizing(total_mb: int) -> Sizing:
    """The stack's memory settings for a machine of TOTAL_MB MiB (the module's rule)."""
    return Sizing(
        shared_buffers_mb=_between(total_mb // 8, 32, 512),
        effective_cache_size_mb=_between(total_mb // 2, 128, 4096),
        maintenance_work_mem_mb=_between(total_mb // 16, 16, 64),
        redis_maxmemory_mb=_between(total_mb // 8, 32, 1024),
    )


def meminfo_mb(text: str) -> int:
    """MemTotal from /proc/meminfo's TEXT, in MiB; 0 when it has none."""
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name == "MemTotal" and rest.split():
            return int(rest.split()[0]) // 1024
    return 0


def machine_mb() -> int:
    """This machine's memory in MiB (MemTotal); UNKNOWN_MB when /proc/meminfo cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            return meminfo_mb(meminfo.read()) or UNKNOWN_MB
    except OSError:
        return UNKNOWN_MB


def planned_mb(setting_mb: int | str | None, measured_mb: int | str | None = None) -> int:
    """What the stack is sized for: the memory_mb setting when set, else the memory measured
    (a server's /proc/meminfo, read by site.yml), else this machine's."""
    return int(setting_mb or 0) or int(measured_mb or 0) or machine_mb()


def problems(host: str, total_mb: int) -> list[str]:
    """Why HOST with TOTAL_MB MiB of memory is refused, one line each; [] when it is not."""
    if total_mb and total_mb < FLOOR_MB:
        return [
            f"{host} has {total_mb} MiB of memory, below the {FLOOR_MB} MiB the stack needs "
            f"(PostgreSQL, Redis, Docker and the app): use a board with 1 GB or more (a "
            f"Raspberry Pi 3, 4 or 5), or set devkit_memory_mb for {host} if you know better"
        ]
    return []


def warning(host: str, total_mb: int) -> str:
    """A line for a machine that fits, tightly; "" for one with room."""
    if FLOOR_MB <= total_mb < TIGHT_MB:
        plan = sizing(total_mb)
        return (
            f"{host} has {total_mb} MiB of memory: PostgreSQL gets {plan.shared_buffers_mb} MiB "
            f"of buffers and Redis at most {plan.redis_maxmemory_mb} MiB (writes beyond it are "
            f"refused, nothing is evicted); give the board swap (zram) if the app needs more"
        )
    return ""
