"""The checks' pytest plugin: their options and the `deployment` they check.

`devkit verify` loads it with `-p devkit.checks.plugin`; the test suite through tests/conftest.py.
`host` is testinfra's fixture (localhost unless --hosts says otherwise). `deployment` says what
the host should run:
- in the test suite, the session's stack, set up for real by the `stack` fixture;
- under `devkit verify` (--deployment=host), what the host itself was given: the project and
  app directory from the inventory's host variables (`devkit_project_name`, `devkit_app_dir`)
  or from --devkit-project / --devkit-app-dir for this machine, the ports from its .env.local.
"""

import shlex
from dataclasses import dataclass, field

import pytest

from devkit.paths import KIT_ROOT
from devkit.settings.table import SERVER_DEFAULTS


def pytest_addoption(parser):
    group = parser.getgroup("devkit")
    group.addoption("--deployment", choices=["session", "host"], default="session")
    group.addoption("--devkit-project", default=SERVER_DEFAULTS["project_name"])
    group.addoption("--devkit-app-dir", default="")


@dataclass(frozen=True)
class Deployment:
    project: str
    env_file: str
    ports: dict[str, int]
    # A scheduled backup is expected (inventory: devkit_backup_enabled), run by the kit there.
    backup_schedule: bool = False
    # The kit on the host: checks that need a password run its tasks there (db.psql, redis.cli),
    # which read it from .env.local and hand it to the client through the environment, so that
    # no password is ever in a command line (ps, /proc/*/cmdline, ssh's and sh's argv).
    kit_dir: str = str(KIT_ROOT)
    # Settings the kit's tasks need on this host beyond its own (the test suite's stack).
    kit_env: dict[str, str] = field(default_factory=dict)

    @property
    def app_dir(self) -> str:
        return self.env_file.rsplit("/", 1)[0]

    def kit_task(self, *args: str) -> str:
        """A shell command running the kit's task ARGS on the host, for this deployment's app."""
        env = {"INVOKE_DEVKIT_APP_DIR": self.app_dir, **self.kit_env}
        assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        invoke = f"{self.kit_dir}/.venv/bin/invoke --search-root {shlex.quote(self.kit_dir)}"
        return f"cd /tmp && env {assignments} {invoke} {shlex.join(args)}"


def _from_host(request, host) -> Deployment:
    from devkit.envfile import parse_env
    from devkit.services import SERVICES

    project = request.config.getoption("--devkit-project")
    app_dir = request.config.getoption("--devkit-app-dir")
    try:  # hosts of an inventory carry their own
        variables = host.ansible.get_variables()
    except Exception:  # not reached through Ansible: this machine, as the options say
        variables = {}
    project = variables.get("devkit_project_name", project)
    app_dir = variables.get("devkit_app_dir", app_dir)
    env_file = f"{app_dir.rstrip('/')}/.env.local"
    values = parse_env(host.file(env_file).content_string) if host.file(env_file).exists else {}
    ports = {name: int(values.get(s.port_key, 0)) for name, s in SERVICES.items()}
    return Deployment(
        project=project,
        env_file=env_file,
        ports=ports,
        backup_schedule=bool(variables.get("devkit_backup_enabled", False)),
        kit_dir=variables.get("devkit_kit_dir", str(KIT_ROOT)),
    )


@pytest.fixture(scope="module")
def deployment(request, host) -> Deployment:
    if request.config.getoption("--deployment") == "host":
        return _from_host(request, host)
    from devkit.envfile import read_env_file
    from devkit.services import SERVICES

    stack = request.getfixturevalue("stack")
    values = read_env_file(stack.env_file)
    return Deployment(
        project=stack.project,
        env_file=str(stack.env_file),
        ports={name: int(values[s.port_key]) for name, s in SERVICES.items()},
        kit_env=stack.env,
    )


@pytest.fixture(scope="module")
def env_local(deployment, host) -> dict[str, str]:
    """The deployed env file, read through the host (local or remote)."""
    from devkit.envfile import parse_env

    return parse_env(host.file(deployment.env_file).content_string)
