"""Your own apps, several at once: `devkit` in an app's directory, a stack per app picked with no
flag, `devkit apps`, an app moved or copied (devkit/app.py, devkit/stacks.py, devkit/volumes.py).

Each app here is set up as a user does it, with `devkit setup` in the app's directory and none
of the suite's settings; the stacks that were already on this machine (a developer's, the other
worker's) must keep their ports and answer as before.
"""

import shutil
import subprocess
from pathlib import Path

import psycopg2
import pytest
import redis

from devkit.envfile import read_env_file
from devkit.paths import SAMPLE_APP
from devkit.stacks import machine_stacks

from phrases import line_with

# Shared: these setups change nothing of the machine but their own stacks (what setup remembers
# and links goes to the run's own directory: devkit/paths.py, tests/conftest.py), and setups
# take turns by setup's own lock where they pick ports.
pytestmark = [pytest.mark.docker, pytest.mark.ansible, pytest.mark.machine(shared=True)]


@pytest.fixture
def apps_made(tmp_path, remove_stack):
    """Removes the stacks of the apps a test set up (their .env.local name them); the kit's
    remembered app and the `devkit` link go to the run's own directory (conftest)."""
    made: list[Path] = []
    yield made
    for app in made:
        env_file = app / ".env.local"
        if env_file.exists():
            remove_stack(env_file, read_env_file(env_file).get("DEVKIT_PROJECT_NAME"))


def mark(values: dict[str, str], table: str) -> None:
    """Connect with the app's password and leave a table named after it; PING its Redis."""
    conn = psycopg2.connect(values["DATABASE_URL_SYNC"], connect_timeout=5)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id int)")
    conn.close()
    cache = redis.Redis.from_url(values["REDIS_URL"], socket_timeout=5)
    try:
        assert cache.ping()
    finally:
        cache.close()


def assert_same_stack_and_data(before: dict, after: dict, *also: str) -> None:
    """The app's .env.local names the same stack and ports (and `also`) as before, and its
    password opens the 77 orders left there."""
    for key in ("DEVKIT_PROJECT_NAME", "PGPORT", "REDIS_PORT", *also):
        assert after[key] == before[key], key
    conn = psycopg2.connect(after["DATABASE_URL_SYNC"])
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM orders")
        assert cur.fetchone() == (77,)
    conn.close()


def running(values: dict[str, str]) -> dict[str, bool]:
    project = values["DEVKIT_PROJECT_NAME"]
    return {
        service: subprocess.run(
            ["docker", "inspect", "--format", "{{.State.Running}}", f"{project}-{service}-1"],
            capture_output=True, text=True, check=False,
        ).stdout.strip() == "true"
        for service in ("postgres", "redis")
    }  # fmt: skip


def test_apps_set_up_with_no_flag_run_side_by_side_tasks_follow_the_directory_and_a_move(
    tmp_path, tmp_path_factory, apps_made, run_devkit
):
    before = {s.project: s.ports() for s in machine_stacks()}
    alpha = tmp_path / "alpha"
    alpha.mkdir()
    beta = tmp_path / "beta"
    shutil.copytree(
        SAMPLE_APP, beta, ignore=shutil.ignore_patterns(".env.local*", "backups", "__pycache__")
    )
    apps_made += [alpha, beta]

    first = run_devkit("setup", cwd=alpha, timeout=1500)  # no flag at all
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    second = run_devkit("setup", "--no-vscode", cwd=beta, timeout=1500)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr
    a, b = read_env_file(alpha / ".env.local"), read_env_file(beta / ".env.local")
    assert a["DEVKIT_PROJECT_NAME"].startswith("alpha-") and b["DEVKIT_PROJECT_NAME"].startswith(
        "beta-"
    )
    ports = {int(v[k]) for v in (a, b) for k in ("PGPORT", "REDIS_PORT")}
    assert len(ports) == 4, (a["PGPORT"], b["PGPORT"])
    # None taken from a stack that was here before and still is (another worker's test may
    # remove its own stack meanwhile: its ports are free again).
    still = before.keys() & {s.project for s in machine_stacks()}
    assert not ports & {port for project in still for port in before[project]}
    assert a["PGPASSWORD"] != b["PGPASSWORD"] and a["REDIS_PASSWORD"] != b["REDIS_PASSWORD"]
    # setup names what it chose
    assert f"project {a['DEVKIT_PROJECT_NAME']}" in first.stdout
    line_with(first.stdout, f"{a['PGPORT']} (postgres)", f"{a['REDIS_PORT']} (redis)")
    assert (alpha / ".vscode" / "tasks.json").exists()  # no flag: the F5 hooks too
    # Both answer at once, each on its own port with its own password.
    mark(a, "alpha_only")
    mark(b, "beta_only")
    assert "migrations: at " in second.stdout  # beta has Alembic migrations: they ran

    # From deep inside alpha, the tasks act on alpha; from beta's directory, on beta.
    deep = alpha / "src" / "deep" / "dir"
    deep.mkdir(parents=True)
    up = run_devkit("up", cwd=deep)
    assert up.returncode == 0 and f"127.0.0.1:{a['PGPORT']}" in up.stdout, up.stdout + up.stderr
    assert "devkit: app" not in up.stderr  # the working directory's app: nothing to say
    query = run_devkit("db.psql", "-c", "select count(*) from alpha_only", cwd=deep)
    assert query.returncode == 0, query.stdout + query.stderr
    backup = run_devkit("db.backup", cwd=deep)
    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert list((alpha / "backups").glob("backup_*.backup.gz")), backup.stdout
    query = run_devkit("db.psql", "-c", "select count(*) from beta_only, sample_users", cwd=beta)
    assert query.returncode == 0, query.stdout + query.stderr  # beta's tables, not alpha's
    # Outside any app: the last one set up, and it says so.
    elsewhere = run_devkit("db.psql", "-c", "select count(*) from beta_only", cwd=tmp_path)
    assert elsewhere.returncode == 0, elsewhere.stdout + elsewhere.stderr
    assert f"devkit: app {beta} (the last one set up" in elsewhere.stderr

    listed = run_devkit("apps", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    for app, values in ((alpha, a), (beta, b)):
        line = next(line for line in listed.stdout.splitlines() if str(app) in line)
        assert values["DEVKIT_PROJECT_NAME"] in line and "running" in line
        assert f"{values['PGPORT']}/{values['REDIS_PORT']}" in line and "postgres 16." in line
    # `devkit up` starts compose before Invoke is imported when nothing but the defaults and the
    # directory decide the app (devkit.cli.start_up_early); a variable naming another app wins.
    for app in (alpha, beta):
        assert run_devkit("down", cwd=app).returncode == 0
    other = run_devkit("up", cwd=alpha, env={"INVOKE_DEVKIT_APP_DIR": str(beta)})
    assert other.returncode == 0 and f"127.0.0.1:{b['PGPORT']}" in other.stdout, other.stdout
    assert running(a) == {"postgres": False, "redis": False} and all(running(b).values())
    early = run_devkit("up", cwd=deep)
    assert early.returncode == 0 and f"127.0.0.1:{a['PGPORT']}" in early.stdout, early.stdout
    assert all(running(a).values())
    # The stacks that were here keep their ports: the developer's (those of the other worker's
    # tests, all in this run's temporary directory, may be set up again meanwhile on new ports).
    other_tests = tmp_path_factory.getbasetemp().parent
    after = {
        s.project: s.ports() for s in machine_stacks() if other_tests not in Path(s.app_dir).parents
    }
    shifted = {
        p: (ports, after[p]) for p, ports in before.items() if p in after and after[p] != ports
    }
    assert shifted == {}

    moved = a_moved_app_keeps_its_data_and_a_copy_is_refused(alpha, tmp_path, apps_made, run_devkit)
    an_app_that_lost_its_env_file_gets_its_own_stack_back(moved, run_devkit)


def a_moved_app_keeps_its_data_and_a_copy_is_refused(app, tmp_path, apps_made, run_devkit) -> Path:
    """`app` (set up, listed in apps_made) renamed while stopped, then set up again: the same
    stack and data, proven in a throwaway container; a copy beside it is refused. Returns
    where the app is now."""
    before = read_env_file(app / ".env.local")
    conn = psycopg2.connect(before["DATABASE_URL_SYNC"])
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE orders AS SELECT g AS id FROM generate_series(1, 77) g")
    conn.close()
    stopped = run_devkit("down", cwd=app)  # moved while stopped: proven in a throwaway container
    assert stopped.returncode == 0, stopped.stderr

    moved = app.with_name(f"{app.name}-renamed")
    app.rename(moved)
    apps_made[apps_made.index(app)] = moved
    again = run_devkit("setup", "--no-vscode", cwd=moved, timeout=1500)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    assert f"moved from {app}: its data is kept" in " ".join(again.stdout.split())
    after = read_env_file(moved / ".env.local")
    assert_same_stack_and_data(before, after, "PGPASSWORD")
    assert not any(
        "io.devkit.proof" in line
        for line in subprocess.run(
            ["docker", "ps", "-a", "--format", "{{.Labels}}"], capture_output=True, text=True
        ).stdout.splitlines()
    )
    listed = run_devkit("apps", cwd=tmp_path).stdout
    assert any(
        str(moved) in line and before["DEVKIT_PROJECT_NAME"] in line for line in listed.splitlines()
    )

    # A copy next to the original is another app pointed at the same data: refused, unchanged.
    copy = app.with_name(f"{app.name}-copy")
    shutil.copytree(moved, copy)
    refused = run_devkit("setup", "--no-vscode", cwd=copy, timeout=600)
    assert refused.returncode == 1, refused.stdout[-3000:] + refused.stderr
    line_with(refused.stderr, "already holds", f"{moved},", f"{copy}")
    assert "Traceback" not in refused.stderr
    assert (copy / ".env.local").read_text() == (moved / ".env.local").read_text()
    return moved


def an_app_that_lost_its_env_file_gets_its_own_stack_back(app, run_devkit):
    """`app`'s .env.local gone (a fresh clone of its repository) while its stack runs: setup
    takes the stack labelled with the directory, on its ports, and its data answers with the
    new file (was: the stack was moved to the next free ports, its own containers holding its
    ports; on CI, the stack a previous kit left for the sample app)."""
    before = read_env_file(app / ".env.local")
    (app / ".env.local").unlink()
    again = run_devkit("setup", "--no-vscode", cwd=app, timeout=1500)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    project = before["DEVKIT_PROJECT_NAME"]
    assert (
        f"the stack already here for this app: project {project}, ports {before['PGPORT']} "
        f"(postgres) and {before['REDIS_PORT']} (redis)" in again.stdout
    ), again.stdout[-3000:]
    after = read_env_file(app / ".env.local")
    assert_same_stack_and_data(before, after)


def test_two_setups_at_once_pick_different_ports(tmp_path, apps_made, run_devkit):
    """Two new apps set up at the same time, in two terminals (was: both took the same free
    pair, and one failed with "server closed the connection unexpectedly"): the pick of the
    ports and the containers' start are serialised per machine."""
    from concurrent.futures import ThreadPoolExecutor

    apps = []
    for name in ("left", "right"):
        app = tmp_path / name
        shutil.copytree(
            SAMPLE_APP, app, ignore=shutil.ignore_patterns(".env.local*", "backups", "__pycache__")
        )
        apps.append(app)
        apps_made.append(app)
    with ThreadPoolExecutor(2) as pool:
        done = list(
            pool.map(lambda app: run_devkit("setup", "--no-vscode", cwd=app, timeout=1500), apps)
        )
    for result in done:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    left, right = (read_env_file(app / ".env.local") for app in apps)
    assert {left["PGPORT"], left["REDIS_PORT"]}.isdisjoint({right["PGPORT"], right["REDIS_PORT"]})
    for values in (left, right):
        mark(values, "concurrent")


def test_stacks_are_listed_while_another_stack_removes_its_containers():
    """A container removed between Docker's listing and its inspection (another app's `down`,
    the other test worker's teardown) is not an error: CI once saw setup end in the engine's
    `404 No such container` traceback. Containers of a project of this test come and go in a
    loop while the stacks are listed."""
    import threading
    import uuid

    import docker

    from devkit.stacks import PROJECT_LABEL
    from devkit.volumes import OWNER_LABEL

    client = docker.from_env()
    image = next(tag for i in client.images.list("devkit/redis") for tag in i.tags)
    project = f"devkit-race-{uuid.uuid4().hex[:8]}"
    labels = {PROJECT_LABEL: project, OWNER_LABEL: "/nonexistent/race"}
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            made = [client.api.create_container(image, labels=labels)["Id"] for _ in range(5)]
            for container in made:
                client.api.remove_container(container, force=True, v=True)

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(150):
            machine_stacks()
    finally:
        stop.set()
        worker.join()
        for container in client.api.containers(
            all=True, filters={"label": f"{PROJECT_LABEL}={project}"}
        ):
            client.api.remove_container(container["Id"], force=True, v=True)
        client.close()
