"""The offline images: the official postgres image's contract, tools of the same major version,
and `images.build` skipping work when nothing changed."""

import re
import subprocess
import time

import psycopg2
import pytest

from devkit.paths import KIT_ROOT
from tests.conftest import invoke

pytestmark = [pytest.mark.docker, pytest.mark.machine]


def docker(*args, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


# This machine's own images (the session stack's), and arm64 ones built here under emulation
# (`devkit images.build --arch arm64`: qemu-user-static, debootstrap --foreign): each test below
# runs on both, the arm64 containers on this machine's amd64 engine.
ARM64 = {"postgres": "devkit/postgres:16-bookworm-arm64", "redis": "devkit/redis:7-bookworm-arm64"}
# Programs under emulation start several times slower: initdb, the server's first start.
STARTS_WITHIN = {"own": 60, "arm64": 300}


@pytest.fixture(scope="module")
def arm64_images():
    result = invoke("images.build", "--arch", "arm64", timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "images ready for arm64" in result.stdout
    return ARM64


@pytest.fixture(scope="module", params=["own", "arm64"])
def images(request, stack):
    if request.param == "arm64":
        return {**request.getfixturevalue("arm64_images"), "arch": "arm64"}
    values = stack.values()
    own = subprocess.run(
        ["docker", "version", "-f", "{{.Server.Arch}}"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return {
        "postgres": values["DEVKIT_POSTGRES_IMAGE"],
        "redis": values["DEVKIT_REDIS_IMAGE"],
        "arch": own,
    }


def test_images_are_of_the_architecture_they_are_made_for(images):
    """The engine's record of each image's architecture is what site.yml's check reads before
    shipping one to a server (was for arm64: `docker import` recorded amd64 whatever the files)."""
    for service in ("postgres", "redis"):
        recorded = docker("image", "inspect", "-f", "{{.Architecture}}", images[service]).stdout
        assert recorded.strip() == images["arch"], images[service]
        machine = docker("run", "--rm", "--entrypoint", "uname", images[service], "-m").stdout
        assert machine.strip() == {"amd64": "x86_64", "arm64": "aarch64"}[images["arch"]]


def test_local_builds_keep_the_kits_own_names(images):
    for image in (images["postgres"], images["redis"]):
        if not image.startswith("devkit/"):
            pytest.skip(f"{image} is an official image on this machine; nothing was built")
        tags = docker("image", "inspect", "-f", '{{join .RepoTags " "}}', image).stdout.split()
        assert tags and all(tag.startswith("devkit/") for tag in tags)
        inputs = docker(
            "image", "inspect", "-f", '{{index .Config.Labels "io.devkit.inputs"}}', image
        ).stdout
        assert len(inputs.strip()) == 64


def test_images_build_skips_unchanged_images(stack):
    """Images whose build inputs did not change are kept without going through their build
    (was: the inputs label was never found, so every setup took the build path, which needs
    PyPI and Debian's mirror, and 9 s more)."""
    result = stack.invoke("images.build")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "images ready (Ansible: 0 changed)" in result.stdout
    assert "build-postgres.yml" not in result.stdout, result.stdout[-3000:]
    assert "build-redis.yml" not in result.stdout, result.stdout[-3000:]


def test_a_second_build_for_arm64_changes_nothing(arm64_images):
    """Under emulation too: the base, the builds and the emulator's registration are kept."""
    result = invoke("images.build", "--arch", "arm64")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "images ready for arm64 (names ending -arm64) (Ansible: 0 changed)" in result.stdout


@pytest.mark.parametrize(
    "args, says",
    [
        (["--arch", "armv7l"], "--arch armv7l: the architecture armv7l is not one"),
        (["--arch", "arm64", "--source", "registry"], "--source registry with --arch arm64"),
    ],
)
def test_images_build_refuses_what_it_cannot_build(args, says):
    result = invoke("images.build", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert says in result.stderr and "fix:" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("tool", ["postgres", "psql", "pg_dump", "pg_restore", "pg_isready"])
def test_postgres_image_carries_tools_of_major_16(images, tool):
    out = docker("run", "--rm", "--entrypoint", tool, images["postgres"], "--version").stdout
    assert " 16." in out


def test_redis_image_carries_redis_cli(images):
    assert docker("run", "--rm", images["redis"], "redis-cli", "--version").stdout.startswith(
        "redis-cli 7."
    )


def test_postgres_image_honours_the_official_entrypoint_contract(images, tmp_path):
    """POSTGRES_USER/PASSWORD/DB, PGDATA and /docker-entrypoint-initdb.d (*.sql, *.sh) on first start."""
    initdb = tmp_path / "initdb"
    initdb.mkdir()
    (initdb / "01-schema.sql").write_text(
        "CREATE TABLE seeded (v text); INSERT INTO seeded VALUES ('sql');\n"
    )
    (initdb / "02-more.sh").write_text(
        'psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "INSERT INTO seeded VALUES (\'sh\')"\n'
    )
    initdb.chmod(0o755)
    name = f"devkit-contract-{int(time.time())}"
    docker(
        "run",
        "-d",
        "--name",
        name,
        "-p",
        "127.0.0.1::5432",
        "-e",
        "POSTGRES_USER=contract",
        "-e",
        "POSTGRES_PASSWORD=contract-pw",
        "-e",
        "POSTGRES_DB=contractdb",
        "-e",
        "PGDATA=/var/lib/postgresql/data/pgdata",
        "-v",
        f"{initdb}:/docker-entrypoint-initdb.d:ro",
        images["postgres"],
    )
    try:
        port = int(docker("port", name, "5432").stdout.split(":")[-1])
        deadline, rows = time.monotonic() + STARTS_WITHIN.get(images["arch"], 60), None
        while time.monotonic() < deadline:
            try:
                conn = psycopg2.connect(
                    host="127.0.0.1",
                    port=port,
                    user="contract",
                    password="contract-pw",
                    dbname="contractdb",
                    connect_timeout=2,
                )
            except psycopg2.OperationalError:
                time.sleep(0.2)
                continue
            with conn.cursor() as cur:
                cur.execute("SELECT v FROM seeded ORDER BY v")
                rows = [r[0] for r in cur.fetchall()]
                cur.execute("SHOW data_directory")
                data_directory = cur.fetchone()[0]
            conn.close()
            break
        assert rows == ["sh", "sql"], docker("logs", name, check=False).stderr[-2000:]
        assert data_directory == "/var/lib/postgresql/data/pgdata"
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(
                host="127.0.0.1", port=port, user="contract", password="wrong", dbname="contractdb"
            )
    finally:
        docker("rm", "-f", "-v", name, check=False)


def test_postgres_image_refuses_an_empty_password(images):
    result = docker("run", "--rm", images["postgres"], check=False)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD is empty" in result.stderr


def test_redis_started_as_root_runs_as_redis_and_takes_over_an_old_volume(
    stack, images, argv_watch
):
    """The official redis image starts its command as root (no USER; its entrypoint switches
    user only for a bare `redis-server` command: docker-library/redis, docker-entrypoint.sh),
    and the kit's command is `sh -c ...`: that ran redis-server as root. Here the stack's own
    command runs as root, as the official image runs it, on a volume an older version left with
    root-owned files: the server must run as redis, take the files over, keep the data, and
    never show its password in a command line."""
    import json
    import os
    import secrets

    command = json.loads(
        docker("inspect", "-f", "{{json .Config.Cmd}}", stack.container("redis")).stdout
    )
    volume, name = "devkit-test-redis-old", "devkit-test-redis-root"
    password = secrets.token_urlsafe(24)
    env = {**os.environ, "REDIS_PASSWORD": password, "REDISCLI_AUTH": password}
    docker("volume", "create", volume)
    try:
        # As an older kit left it: redis-server run as root wrote the append-only files.
        docker("run", "--rm", "-u", "0", "-v", f"{volume}:/data", images["redis"], "sh", "-c",
               "redis-server --appendonly yes --daemonize yes && sleep 1 && redis-cli SET old kept"
               " && redis-cli SHUTDOWN")  # fmt: skip
        owners = docker("run", "--rm", "-u", "0", "-v", f"{volume}:/data", "--entrypoint", "sh",
                        images["redis"], "-c", "find /data -user 0 | wc -l").stdout  # fmt: skip
        assert int(owners) > 0
        with argv_watch([password]) as leaks:
            subprocess.run(
                ["docker", "run", "-d", "--name", name, "-u", "0", "-e", "REDIS_PASSWORD",
                 "-v", f"{volume}:/data", images["redis"], *command],
                env=env, capture_output=True, check=True,
            )  # fmt: skip
            deadline = time.monotonic() + STARTS_WITHIN.get(images["arch"], 30)
            while time.monotonic() < deadline:
                pong = subprocess.run(
                    ["docker", "exec", "-e", "REDISCLI_AUTH", name, "redis-cli", "--no-auth-warning", "PING"],
                    env=env, capture_output=True, text=True, check=False,
                )  # fmt: skip
                if pong.stdout.strip() == "PONG":
                    break
                time.sleep(0.2)
        assert pong.stdout.strip() == "PONG", pong.stdout + pong.stderr
        assert leaks == []
        top = docker("top", name, "-o", "pid,uid,comm").stdout.splitlines()[1:]
        assert [line.split() for line in top] and all(
            line.split()[1] != "0" for line in top if "redis-server" in line
        ), top
        got = subprocess.run(
            ["docker", "exec", "-e", "REDISCLI_AUTH", name, "redis-cli", "--no-auth-warning", "GET", "old"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert got.stdout.strip() == "kept"
        assert (
            docker("exec", name, "sh", "-c", "find /data ! -user redis | wc -l").stdout.strip()
            == "0"
        )
    finally:
        docker("rm", "-f", name, check=False)
        docker("volume", "rm", volume, check=False)


BASE_PLAYBOOK = """
- name: Build only the Debian base image
  hosts: workstations
  gather_facts: true
  gather_subset: [min]
  become: true
  tasks:
    - name: The images role's base step
      ansible.builtin.include_role:
        name: images
        tasks_from: base.yml
"""


@pytest.mark.ansible
def test_the_base_image_is_refused_when_the_release_signature_does_not_verify(tmp_path):
    """debootstrap checks the mirror's Release signature against the keyring the role names
    (was: no keyring given; where none was installed debootstrap warned and went on unchecked).
    Keys Debian no longer signs with stand in for a tampered Release file."""
    from devkit.errors import CommandFailed
    from devkit.paths import LOCAL_INVENTORY
    from devkit.playbook import run_playbook

    playbook = tmp_path / "base.yml"
    playbook.write_text(BASE_PLAYBOOK)
    image = "devkit-test/debian-unverified:bookworm"
    with pytest.raises(CommandFailed) as failed:
        run_playbook(
            playbook,
            LOCAL_INVENTORY,
            {
                "images_base": image,
                "images_debian_keyring": "/usr/share/keyrings/debian-archive-removed-keys.gpg",
            },
            echo=False,
            env={"ANSIBLE_ROLES_PATH": str(KIT_ROOT / "roles")},
        )
    assert re.search(r"Release signed by unknown key|signature", failed.value.cause, re.I), (
        failed.value.cause
    )
    assert docker("image", "inspect", image, check=False).returncode != 0


def test_prune_export_lists_the_controllers_export_and_asks_first(stack):
    """The image set `provision` exports stays in .devkit/images (about 550 MB): the task that
    deletes it lists it first, and deletes nothing unasked."""
    from pathlib import Path

    directory = Path(__file__).resolve().parents[2] / ".devkit" / "images"
    directory.mkdir(parents=True, exist_ok=True)
    probe = directory / "devkit-images-prune0test0000.tar"
    probe.write_bytes(b"x" * 4096)
    try:
        refused = stack.invoke("images.prune-export")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert str(probe) in refused.stdout and "fix: add --yes" in refused.stderr
        shown, code = stack.on_terminal("images.prune-export", inputs=(b"n\n",))
        assert code == 1 and "cancelled; nothing changed" in shown
        assert probe.exists()
    finally:
        probe.unlink(missing_ok=True)
