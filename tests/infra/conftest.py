"""testinfra checks of a provisioned host.

`host` is testinfra's fixture (localhost unless --hosts says otherwise); `deployment` says what
the host should run: here the session's stack, set up for real by the `stack` fixture.
"""

from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Deployment:
    project: str
    env_file: str
    ports: dict[str, int]


@pytest.fixture(scope="session")
def deployment(stack) -> Deployment:
    return Deployment(
        project=stack.project,
        env_file=str(stack.env_file),
        ports={"postgres": stack.pg_port, "redis": stack.redis_port},
    )


@pytest.fixture(scope="module")
def env_local(deployment, host) -> dict[str, str]:
    """The deployed env file, read through the host (local or remote)."""
    from devkit.envfile import parse_env

    return parse_env(host.file(deployment.env_file).content_string)
