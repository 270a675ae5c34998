"""Which app, which stack (devkit/app.py, devkit/stacks.py): the parts that need no Docker."""

import re
import socket
from pathlib import Path

import pytest

from devkit.app import app_of_directory, new_app_here
from devkit.paths import KIT_ROOT
from devkit.settings.table import SETTINGS
from devkit.stacks import pick_ports, project_for

pytestmark = pytest.mark.unit


def test_the_app_is_the_nearest_directory_the_kit_set_up_or_with_migrations(tmp_path):
    app = tmp_path / "myapp"
    deep = app / "src" / "deep" / "dir"
    deep.mkdir(parents=True)
    assert app_of_directory(deep) is None
    (app / ".env.local").write_text("APP_SECRET=1\n")  # the app's own file, not the kit's
    assert app_of_directory(deep) is None
    (app / ".env.local").write_text("APP_SECRET=1\nDEVKIT_PROJECT_NAME=myapp-0a1b2c\n")
    assert app_of_directory(deep) == app
    assert app_of_directory(app) == app
    (app / "src" / "alembic.ini").write_text("[alembic]\n")  # an app not set up yet, nearer
    assert app_of_directory(deep) == app / "src"


def test_setup_makes_the_working_directory_an_app_but_not_home_root_or_the_kit(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert new_app_here() == tmp_path.resolve()
    for place in (Path.home(), Path("/"), KIT_ROOT, KIT_ROOT / "devkit"):
        monkeypatch.chdir(place)
        assert new_app_here() is None, place


def test_project_names_are_readable_valid_and_differ_by_path():
    pattern = SETTINGS["project_name"].limits["pattern"]
    first, second = project_for(Path("/home/u/work/api")), project_for(Path("/home/u/other/api"))
    assert first.startswith("api-") and second.startswith("api-") and first != second
    assert project_for(Path("/home/u/work/api")) == first  # the same path, the same name
    for path in ("/x/My App (v2)!", "/x/___", "/x/" + "long" * 30, "/x/日本語"):
        name = project_for(Path(path))
        assert re.fullmatch(pattern, name) and name, (path, name)
    assert project_for(Path("/x/My App (v2)!")).startswith("my-app-v2-")


def quiet_ports(count: int) -> tuple[int, int]:
    """A pair of ports (port, other) whose next `count` ports each are free, below the kernel's
    range for ephemeral ports: a port of that range, free when looked at, can be taken a moment
    later by any connection on this machine (CI once saw port + 1 go to the other worker)."""
    import random

    from devkit.ports import port_free

    ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        port = random.randrange(10000, ephemeral - 1000 - count)
        other = port + 1000 - count  # below the ephemeral range too
        if all(port_free("127.0.0.1", p + i) for p in (port, other) for i in range(count)):
            return port, other
    raise AssertionError("no quiet pair of ports found")


def test_ports_skip_a_busy_pair_and_those_other_stacks_took():
    port, other = quiet_ports(3)
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", port))
        busy.listen()
        # The first port of the pair is taken by a process: the next pair.
        assert pick_ports("127.0.0.1", set(), (port, other)) == (port + 1, other + 1)
        # The next is another devkit stack's (stopped, say): the one after.
        assert pick_ports("127.0.0.1", {other + 1}, (port, other)) == (port + 2, other + 2)


def test_settle_keeps_what_the_app_recorded_and_picks_anew_without_docker(tmp_path, monkeypatch):
    """A recorded project and ports are kept (an upgrade, a second setup) without asking Docker;
    a new app on a machine without a Docker engine yet (a first setup) gets a free pair."""
    from devkit.settings.model import load_settings
    from devkit.stacks import settle

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    recorded = {"DEVKIT_PROJECT_NAME": "devkit", "PGPORT": "5432", "REDIS_PORT": "6379"}
    kept, said = settle(load_settings({}), tmp_path, recorded)
    assert (kept.project_name, kept.postgres_port, kept.redis_port, said) == (
        "devkit",
        5432,
        6379,
        "",
    )
    # Set explicitly: wins over the record; the record's ports belong to the other project.
    moved, said = settle(load_settings({"project_name": "other"}), tmp_path, recorded)
    assert moved.project_name == "other" and moved.postgres_port - 5432 == moved.redis_port - 6379
    new, said = settle(load_settings({}), tmp_path, {})
    assert new.project_name == project_for(tmp_path)
    assert new.postgres_port - 5432 == new.redis_port - 6379 >= 0
    assert said.startswith(f"new stack for this app: project {new.project_name}, ports ")
