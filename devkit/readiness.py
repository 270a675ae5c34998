"""Waiting until PostgreSQL and Redis accept authenticated connections.

Polls the servers themselves at a fine interval (not Docker's healthcheck, which reports on a
seconds-long interval), both at once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import redis

from devkit.envfile import Stack
from devkit.errors import DatabaseClosed, NotReady

POLL_INTERVAL = 0.02


class _AuthRejected(Exception):
    pass


def postgres_version(stack: Stack, service: str = "postgres", timeout: float = 2.0) -> str:
    """One authenticated `SHOW server_version` (of `service`, a devkit.services postgres)."""
    conn = psycopg2.connect(
        host=stack.host,
        port=stack.ports[service],
        user=stack.pg_user,
        password=stack.passwords[service],
        dbname=stack.pg_database,
        connect_timeout=max(1, int(timeout)),
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            return cur.fetchone()[0].split()[0]
    finally:
        conn.close()


def redis_client(stack: Stack, timeout: float = 2.0, service: str = "redis") -> redis.Redis:
    """An authenticated client of the stack's Redis (`service`; database 0, as REDIS_URL)."""
    return redis.Redis(
        host=stack.host,
        port=stack.ports[service],
        password=stack.passwords[service],
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
    )


@contextlib.contextmanager
def redis_session(stack: Stack, timeout: float = 5.0) -> Iterator[redis.Redis]:
    """An authenticated client for the block; a Redis failure in it becomes NotReady (a cause
    and a fix), and the client is closed."""
    client = redis_client(stack, timeout)
    try:
        yield client
    except redis.RedisError as exc:
        raise NotReady(
            f"redis did not answer: {exc}",
            "start the stack (devkit up); `devkit doctor` diagnoses",
        ) from None
    finally:
        client.close()


def redis_version(stack: Stack, service: str = "redis", timeout: float = 2.0) -> str:
    """One authenticated PING, then the server's version (of `service`, a devkit.services redis)."""
    client = redis_client(stack, timeout, service)
    try:
        client.ping()
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


def auth_rejected(exc: BaseException) -> bool:
    """True when a server answered but refused the credentials (not when it did not answer)."""
    if isinstance(exc, redis.AuthenticationError):
        return True
    return isinstance(exc, psycopg2.OperationalError) and "password authentication failed" in str(
        exc
    )


def _poll(probe, stack: Stack, service: str, deadline: float) -> str:
    last_error = "no answer"
    while True:
        try:
            return probe(stack, service)
        except (psycopg2.OperationalError, redis.AuthenticationError) as exc:
            if auth_rejected(exc):
                raise _AuthRejected(str(exc).strip().splitlines()[0]) from None
            if "is not currently accepting connections" in str(exc):
                raise DatabaseClosed(
                    f"{stack.pg_database} is closed to connections (a snapshot command copies "
                    "it, or one was interrupted)",
                    "`devkit db.snapshots` waits for a running one and opens it again",
                ) from None
            last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
            last_error = str(exc) or repr(exc)
        if time.monotonic() >= deadline:
            raise TimeoutError(last_error)
        time.sleep(POLL_INTERVAL)


def wait_ready(stack: Stack, timeout: float) -> dict[str, str]:
    """Block until every service answers an authenticated query; their versions by service.
    Only asks: DatabaseClosed when the app's database is closed (devkit.lifecycle.wait_ready
    puts that right)."""
    from devkit.services import NAMES, probe

    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(max_workers=len(NAMES)) as pool:
        futures = {name: pool.submit(_poll, probe(name), stack, name, deadline) for name in NAMES}
        versions: dict[str, str] = {}
        for name, future in futures.items():
            try:
                versions[name] = future.result()
            except _AuthRejected as exc:
                raise NotReady(
                    f"{name} rejected the password in {stack.env_file}: {exc}",
                    "its data was set up with another password; keep the data: `devkit doctor "
                    f"--repair` sets the server's password to {stack.env_file}'s",
                ) from None
            except TimeoutError as exc:
                raise NotReady(
                    f"{name} did not accept connections within {timeout:g}s ({exc})",
                    f"see `devkit logs --service {name}`; raise devkit.ready_timeout if the machine is slow",
                ) from None
    return versions
