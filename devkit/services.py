"""The kit's services, once: what each container of a stack is, read by every place that deals
with them (settings, .env.local, Compose, ports, readiness, status, doctor, the roles' filters,
the host checks). compose/compose.yaml defines how each runs; tests/unit/test_services.py fails
when it, the roles or the checks disagree with this table.

A service is one row of SERVICES. What it speaks (how to probe it, the process it runs, its
major version, how a rejected password is fixed) is its kind's (KINDS): a second Redis, say a
cache, is one more row of kind "redis". Plain data: everyday tasks import it at start.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    # "module:function" answering `function(stack, service, timeout=...) -> version` after an
    # authenticated query (devkit.readiness), imported only when a probe runs.
    probe: str
    # The server process in its container, and the major version the kit ships (host checks).
    process: str
    major: str
    # How its client in the container logs in (devkit.shells): the variable given the password
    # (`docker exec -e NAME`, the value in the environment).
    login_secret: str
    # doctor's fix when the server rejects .env.local's password.
    password_fix: str


KINDS: dict[str, Kind] = {
    "postgres": Kind(
        probe="devkit.readiness:postgres_version",
        process="postgres",
        major="16",
        login_secret="PGPASSWORD",
        password_fix="its volume was created with another password: `devkit doctor --repair` "
        "sets the server's password to .env.local's (or put the old password back in .env.local)",
    ),
    "redis": Kind(
        probe="devkit.readiness:redis_version",
        process="redis-server",
        major="7",
        login_secret="REDISCLI_AUTH",
        password_fix="the container runs with an older password: `devkit doctor --repair` (or "
        "`devkit up`) recreates it with .env.local's",
    ),
}


@dataclass(frozen=True)
class Service:
    # The Compose service: its volume is `<name>-data`, its container `<project>-<name>-1`, its
    # port setting `<name>_port` (INVOKE_DEVKIT_<NAME>_PORT; servers: devkit_<name>_port), a
    # server's password `devkit_<name>_password` (from the inventory's vault).
    name: str
    kind: str
    # The images role's image it runs (images_selected[image]; .env.local DEVKIT_<IMAGE>_IMAGE).
    image: str
    container_port: int
    # The host port a new app takes when free (stacks.settle picks the next free set otherwise).
    preferred_port: int
    # Its .env.local keys: the host port, the password, and the keys holding a URL with it.
    port_key: str
    password_key: str
    url_keys: tuple[str, ...]

    @property
    def port_setting(self) -> str:
        return f"{self.name}_port"

    @property
    def image_key(self) -> str:
        return f"DEVKIT_{self.image.upper()}_IMAGE"

    @property
    def volume(self) -> str:
        return f"{self.name}-data"

    @property
    def server_password_var(self) -> str:
        return f"devkit_{self.name}_password"

    @property
    def spec(self) -> Kind:
        return KINDS[self.kind]


SERVICES: dict[str, Service] = {
    service.name: service
    for service in (
        Service(
            "postgres",
            kind="postgres",
            image="postgres",
            container_port=5432,
            preferred_port=5432,
            port_key="PGPORT",
            password_key="PGPASSWORD",
            url_keys=("DATABASE_URL", "DATABASE_URL_SYNC"),
        ),
        Service(
            "redis",
            kind="redis",
            image="redis",
            container_port=6379,
            preferred_port=6379,
            port_key="REDIS_PORT",
            password_key="REDIS_PASSWORD",
            url_keys=("REDIS_URL",),
        ),
    )
}

NAMES: tuple[str, ...] = tuple(SERVICES)
PREFERRED_PORTS: tuple[int, ...] = tuple(s.preferred_port for s in SERVICES.values())
PASSWORD_KEYS: tuple[str, ...] = tuple(s.password_key for s in SERVICES.values())
IMAGE_KEYS: tuple[str, ...] = tuple(dict.fromkeys(s.image_key for s in SERVICES.values()))


def probe(name: str):
    """The function that asks service `name` for its version, authenticated."""
    import importlib

    module, function = SERVICES[name].spec.probe.split(":")
    return getattr(importlib.import_module(module), function)
