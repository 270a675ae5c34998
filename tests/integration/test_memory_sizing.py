"""The services run with the memory .env.local sizes them for (devkit/memory.py, compose.yaml):
PostgreSQL's settings as the server reports them, Redis's ceiling and policy as it reports them."""

import os
import subprocess

import pytest

from devkit.memory import machine_mb, sizing

pytestmark = [pytest.mark.docker]


def test_the_stack_runs_with_the_memory_sized_for_this_machine(stack):
    values = stack.values()
    planned = sizing(machine_mb())
    assert {k: values[k] for k in planned.env()} == planned.env()
    with stack.connect() as conn, conn.cursor() as cur:
        got = {}
        for name in ("shared_buffers", "effective_cache_size", "maintenance_work_mem"):
            cur.execute("SELECT pg_size_bytes(current_setting(%s)) / 1048576", (name,))
            got[name] = cur.fetchone()[0]
    assert got == {
        "shared_buffers": planned.shared_buffers_mb,
        "effective_cache_size": planned.effective_cache_size_mb,
        "maintenance_work_mem": planned.maintenance_work_mem_mb,
    }
    env = {**os.environ, "REDISCLI_AUTH": values["REDIS_PASSWORD"]}
    redis = [
        "docker",
        "exec",
        "-e",
        "REDISCLI_AUTH",
        stack.container("redis"),
        "redis-cli",
        "--no-auth-warning",
    ]
    reply = subprocess.run(
        [*redis, "CONFIG", "GET", "maxmemory*"], env=env, capture_output=True, text=True, check=True
    )
    config = dict(zip(reply.stdout.split()[::2], reply.stdout.split()[1::2], strict=True))
    assert int(config["maxmemory"]) == planned.redis_maxmemory_mb * 1024 * 1024
    assert config["maxmemory-policy"] == "noeviction"
