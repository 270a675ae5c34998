"""redis.cli, redis.ping, redis.keys, redis.flush: the app's Redis, authenticated."""

from __future__ import annotations

import shlex
import time

from invoke import Collection, Exit, task

from devkit.errors import BadArgument
from devkit.tasks._cli import confirm, follows_branch, of_app, reports_errors


def _stack(c):
    from devkit.envfile import load_stack

    return load_stack(c.config.devkit)


def _session(c):
    from devkit.readiness import redis_session

    return redis_session(_stack(c))


@task(help={"command": 'One command instead of a session, e.g. -c "GET user:1"'})
@reports_errors
@follows_branch
def cli(c, command=None):
    """redis-cli in the Redis container, authenticated: a session on a terminal, or one command."""
    from devkit.shells import redis_cli_argv, run

    stack = _stack(c)
    code = run(stack, "redis", redis_cli_argv(stack, shlex.split(command) if command else []))
    if code:
        raise Exit(code=code)


@task
@reports_errors
def ping(c):
    """PING the app's Redis (authenticated); prints PONG, the version and the round trip."""
    with _session(c) as client:
        started = time.perf_counter()
        client.ping()
        elapsed = (time.perf_counter() - started) * 1000
        version = client.info("server")["redis_version"]
    print(f"PONG (redis {version}, {elapsed:.1f} ms)")


@task(
    help={"pattern": "Glob pattern (default *)", "limit": "Print at most this many (default 1000)"}
)
@reports_errors
@follows_branch
def keys(c, pattern="*", limit=1000):
    """List keys matching PATTERN with SCAN (never KEYS: safe on a large or busy server)."""
    if int(limit) < 0:
        raise BadArgument(f"--limit {limit} is negative", "--limit N with N >= 0 (0: count only)")
    shown = total = 0
    with _session(c) as client:
        for key in client.scan_iter(match=pattern, count=1000):
            total += 1
            if shown < int(limit):
                print(key.decode(errors="backslashreplace"))
                shown += 1
    more = f" (first {shown} printed; --limit N for more)" if total > shown else ""
    print(f"{total} key(s) match {pattern!r}{more}")


@task(help={"yes": "Do not ask (required without a terminal)"})
@reports_errors
@follows_branch
def flush(c, yes=False):
    """Delete every key of the app's Redis (FLUSHALL); asks first."""
    from devkit.readiness import redis_session

    stack = _stack(c)
    with redis_session(stack) as client:
        count = client.dbsize()
        confirm(
            yes,
            "flush deletes every key",
            f"Delete all {count} key(s) in {of_app(stack, 'Redis')}?",
        )
        client.flushall()
    print(f"flushed: {count} key(s) deleted")


@task(
    help={
        "file": "A redis_YYYYMMDD_HHMMSS.rdb file (db.reset writes one before it deletes the data)",
        "yes": "Do not ask (required without a terminal)",
    }
)
@reports_errors
@follows_branch
def restore(c, file, yes=False):
    """Replace Redis's data with an RDB file's; the data it had is moved aside in its volume."""
    from pathlib import Path

    from devkit.backup.redis_rdb import check_rdb
    from devkit.backup.redis_rdb import restore as put_back

    stack = _stack(c)
    path = Path(file).expanduser()
    check_rdb(path)
    confirm(
        yes,
        "redis.restore replaces Redis's data",
        f"Replace the data of {of_app(stack, 'Redis')} with {path.name}?",
    )
    aside = put_back(stack, path)
    print(f"Redis restored from {path.name}; its previous data is kept in its volume as {aside}")


ns = Collection("redis", cli, ping, keys, flush, restore)
