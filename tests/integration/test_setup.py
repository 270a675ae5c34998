"""`devkit setup` run for real on this machine (Docker, images, Ansible), and run again."""

import re
import stat
import subprocess
from pathlib import Path

import psycopg2
import pytest

from devkit.paths import state_dir

from phrases import line_with

pytestmark = [pytest.mark.docker, pytest.mark.ansible, pytest.mark.machine(shared=True)]


def test_setup_summary_names_services_and_never_a_password(stack):
    out = stack.first_setup.stdout
    assert re.search(r"postgres\s+16\.\d+\s+127\.0\.0\.1:" + str(stack.pg_port), out)
    assert re.search(r"redis\s+7\.\d+\.\d+\s+127\.0\.0\.1:" + str(stack.redis_port), out)
    assert str(stack.env_file) in out
    values = stack.values()
    for key in ("PGPASSWORD", "REDIS_PASSWORD"):
        assert values[key] not in out + stack.first_setup.stderr


def test_setup_and_doctor_name_an_engine_that_exposes_loopback_ports(stack):
    """Docker < 28 lets the local network reach 127.0.0.1 ports (moby#45610): said, with the fix."""
    engine = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True
    ).stdout.strip()
    old = int(engine.split(".")[0]) < 28
    assert ("moby#45610" in stack.first_setup.stdout) == old
    doctor = stack.invoke("doctor")
    assert ("WARN" in doctor.stdout and "moby#45610" in doctor.stdout) == old
    if old:
        assert "iptables -t raw -I PREROUTING ! -i lo -d 127.0.0.0/8 -j DROP" in doctor.stdout


def test_env_local_has_the_contract_mode_0600_and_keeps_the_apps_lines(stack, contract_keys):
    values = stack.values()
    assert set(contract_keys) <= set(values)
    assert values["PGPORT"] == str(stack.pg_port) and values["REDIS_PORT"] == str(stack.redis_port)
    assert values["DATABASE_URL"].startswith("postgresql+asyncpg://app:")
    assert "postgres:postgres@" not in values["DATABASE_URL"]
    assert values["APP_SECRET_KEY"] == "keep-me"
    assert stat.S_IMODE(stack.env_file.stat().st_mode) == 0o600
    # The app's own file, as it was, is kept outside the app tree (no copies beside it).
    assert list(stack.app_dir.glob(".env.local?*")) == []
    previous = state_dir() / f"env-backups/{stack.project}.env.local.previous"
    assert "postgres:postgres@" in previous.read_text()
    assert stat.S_IMODE(previous.stat().st_mode) == 0o600


def test_second_setup_without_the_engine_or_hooks_changes_nothing_and_keeps_passwords(
    stack, tmp_path
):
    """`setup --no-docker-install --no-vscode`: no docker role, no .vscode written (the first
    setup wrote one), the stack's tasks all unchanged, .env.local byte for byte."""
    assert "TASK [vscode : Merge the kit's entries" in stack.first_setup.stdout
    before = stack.env_file.read_bytes()
    vscode_dir = stack.app_dir / ".vscode"
    kept = tmp_path / "kept"
    if vscode_dir.exists():
        vscode_dir.rename(kept)
    try:
        result = stack.invoke("setup", "--no-docker-install", "--no-vscode")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        assert not vscode_dir.exists()
    finally:
        if kept.exists():
            kept.rename(vscode_dir)
    recap = [line for line in result.stdout.splitlines() if re.match(r"^localhost\s+: ok=", line)]
    assert recap and all(" changed=0 " in line for line in recap), recap
    assert "Ansible: 0 changed" in result.stdout
    assert "TASK [docker :" not in result.stdout and "TASK [stack :" in result.stdout
    assert stack.env_file.read_bytes() == before


def test_on_a_terminal_setup_counts_what_ansible_changed(stack):
    """Ansible colours its recap on a terminal; setup counted `0 changed` when a task changed.
    The whole setup (the engine's role and the hooks too) changes only what was undone."""
    stack.env_file.chmod(0o644)  # the stack role makes it 0600 again: the one change
    shown, code = stack.on_terminal("setup", extra_env={"ANSIBLE_FORCE_COLOR": "1"})
    assert code == 0, shown[-3000:]
    assert "\x1b[" in shown  # coloured
    counted = re.search(r"Ansible: (\d+) changed", shown)
    assert counted and int(counted[1]) == 1, shown[-2000:]
    assert stack.env_file.stat().st_mode & 0o777 == 0o600


def test_setup_refuses_a_taken_port_and_changes_nothing(stack, held_port):
    before = stack.env_file.read_bytes()
    result = stack.invoke("setup", extra_env={"INVOKE_DEVKIT_REDIS_PORT": str(held_port)})
    assert result.returncode == 1
    own_name = Path("/proc/self/comm").read_text().strip()  # python, or pytest when run so
    line_with(result.stderr, f"port {held_port} ", "redis", "taken", own_name)
    assert f"INVOKE_DEVKIT_REDIS_PORT={held_port + 1}" in result.stderr
    assert "PLAY" not in result.stdout
    assert stack.env_file.read_bytes() == before


@pytest.mark.parametrize("own_env_local", [False, True], ids=["no-env-local", "own-password"])
def test_setup_refuses_another_apps_database(stack, tmp_path, own_env_local):
    """Another checkout for the same project: its password cannot open this database."""
    other_app = tmp_path / "other-checkout"
    other_app.mkdir()
    if own_env_local:
        (other_app / ".env.local").write_text("PGPASSWORD=another-password-entirely\n")
    before = sorted(p.name for p in other_app.iterdir())
    result = stack.invoke("setup", extra_env={"INVOKE_DEVKIT_APP_DIR": str(other_app)})
    assert result.returncode == 1
    assert (
        f"the volume {stack.project}_postgres-data already holds the database of the app in {stack.app_dir}"
        in result.stderr
    )
    assert f"cd {stack.app_dir} && devkit setup" in result.stderr
    assert "docker volume rm" in result.stderr
    assert sorted(p.name for p in other_app.iterdir()) == before
    assert "PLAY" not in result.stdout


def test_setup_refuses_bad_settings_before_doing_anything(stack):
    result = stack.invoke("setup", extra_env={"INVOKE_DEVKIT_BIND_ADDRESS": "everywhere"})
    assert result.returncode == 2
    assert "bad setting bind_address='everywhere'" in result.stderr
    assert "fix:" in result.stderr


@pytest.mark.ansible
def test_stack_role_refuses_another_apps_database(stack, tmp_path):
    """The role guards the volume itself (servers, and setup when the daemon was still down)."""
    from devkit.errors import CommandFailed
    from devkit.paths import COMPOSE_DIR, LOCAL_INVENTORY
    from devkit.playbook import run_playbook

    other_app = tmp_path / "other-checkout"
    other_app.mkdir()
    playbook = tmp_path / "stack-only.yml"
    playbook.write_text(
        "- name: Apply the stack role alone\n"
        "  hosts: workstations\n"
        "  gather_facts: false\n"
        "  roles: [stack]\n"
    )
    variables = {
        "stack_project_src": str(COMPOSE_DIR),
        "stack_env_file": str(other_app / ".env.local"),
        "stack_env": stack.values() | {"DEVKIT_APP_DIR": str(other_app)},
        "stack_images": {
            "postgres": stack.values()["DEVKIT_POSTGRES_IMAGE"],
            "redis": stack.values()["DEVKIT_REDIS_IMAGE"],
        },
    }
    with pytest.raises(CommandFailed) as failure:
        run_playbook(playbook, LOCAL_INVENTORY, variables, echo=False)
    assert (
        f"the volume {stack.project}_postgres-data already holds the database of the app in {stack.app_dir}"
        in " ".join(failure.value.args[0].split())
    )
    assert list(other_app.iterdir()) == []


@pytest.mark.infra
def test_verify_checks_this_machine_with_testinfra(stack, argv_watch):
    """`devkit verify` runs devkit/checks against what this host was given (the session's stack),
    and no password is in any process's command line meanwhile (was: `docker exec -e
    PGPASSWORD=<value>`)."""
    values = stack.values()
    with argv_watch([values["PGPASSWORD"], values["REDIS_PASSWORD"]]) as leaks:
        result = stack.invoke("verify")
    assert leaks == []
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "test_postgres_16_answers_an_authenticated_query[local]" in result.stdout
    assert " FAILED" not in result.stdout
    assert re.search(r"^this machine: \d+ passed, 0 failed, \d+ skipped$", result.stdout, re.M)
    broken = stack.invoke("verify", extra_env={"INVOKE_DEVKIT_PROJECT_NAME": "devkit-nothing"})
    assert broken.returncode != 0 and "FAILED" in broken.stdout


@pytest.mark.infra
def test_a_restart_policy_changed_behind_compose_is_named_by_verify_and_put_back_by_setup(stack):
    """A container that would not come back after a reboot (its policy changed by hand with
    `docker update`) is a failed check naming the policy and the fix (it passed before), and
    the fix works: the next `setup` runs its playbook (the record holds the policy) and makes
    the container anew as compose.yaml says (was: kept, as Compose's config hash does not see
    the change)."""
    redis = stack.container("redis")

    def policy() -> str:
        return subprocess.run(
            ["docker", "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", redis],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip

    subprocess.run(["docker", "update", "--restart=no", redis], check=True, capture_output=True)
    try:
        result = stack.invoke("verify")
        assert result.returncode != 0, result.stdout[-3000:]
        assert re.search(r"^this machine: \d+ passed, 1 failed, \d+ skipped$", result.stdout, re.M)
        line_with(result.stdout, "restart policy and stop timeout 'no 30'", "unless-stopped")
        line_with(result.stdout, "on a workstation: `devkit setup`")
        fixed = stack.invoke("setup", "--no-docker-install")
        assert fixed.returncode == 0, fixed.stdout[-3000:] + fixed.stderr
        line_with(fixed.stdout, "Make anew the containers that run otherwise than compose.yaml")
        assert policy() == "unless-stopped"
    finally:
        subprocess.run(
            ["docker", "update", "--restart=unless-stopped", redis], check=True, capture_output=True
        )


@pytest.mark.infra
def test_verify_through_an_inventory_reports_per_host(stack):
    # The per-host summary comes from pytest's JUnit report: the same on a terminal (where
    # Ansible and pytest colour their output) as piped (test_verify_checks_this_machine...).
    shown, code = stack.on_terminal(
        "verify", "--inventory", "inventories/local", "--limit", "localhost",
        extra_env={"ANSIBLE_FORCE_COLOR": "1", "PY_COLORS": "1"},
    )  # fmt: skip
    assert code == 0, shown[-3000:]
    assert "test_docker_daemon_answers[ansible://localhost]" in shown, shown[-2000:]
    assert re.search(r"^localhost: \d+ passed, 0 failed, \d+ skipped\r?$", shown, re.M), shown[
        -2000:
    ]
    missing = stack.invoke("verify", "--inventory", "inventories/nowhere")
    assert missing.returncode == 2 and "no inventory at inventories/nowhere" in missing.stderr
    lonely = stack.invoke("verify", "--limit", "web1")
    assert lonely.returncode == 2 and "--limit needs --inventory" in lonely.stderr


def test_a_new_apps_env_file_is_private_from_its_first_byte(
    tmp_path, run_invoke, free_port, private_watch, remove_stack
):
    """The app's own .env.local (0644, as an editor writes it) and an old copy beside it: while
    setup runs, the file is never readable by others once it holds more than the app's line (was:
    0644 for a moment, Ansible's write keeps the old mode); the copy moves out of the app tree."""
    import shutil

    from devkit.paths import SAMPLE_APP

    app = tmp_path / "fresh-app"
    shutil.copytree(
        SAMPLE_APP, app, ignore=shutil.ignore_patterns(".env.local*", "backups", "__pycache__")
    )
    env_file = app / ".env.local"
    env_file.write_text("APP_SECRET_KEY=keep-me\n")
    env_file.chmod(0o644)
    old_copy = app / ".env.local.4242.2026-11-01@00:00:00~"
    old_copy.write_text("PGPASSWORD=an-old-password\n")
    project = "devkit-test-fresh"
    env = {
        "INVOKE_DEVKIT_PROJECT_NAME": project,
        "INVOKE_DEVKIT_APP_DIR": str(app),
        "INVOKE_DEVKIT_POSTGRES_PORT": str(free_port()),
        "INVOKE_DEVKIT_REDIS_PORT": str(free_port()),
    }
    try:
        with private_watch(env_file, env_file.stat().st_size) as exposed:
            result = run_invoke("setup", "--no-migrate", "--no-vscode", env=env, timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        kept = state_dir() / "env-backups"
        previous = kept / f"{project}.env.local.previous"
        assert previous.read_text() == "APP_SECRET_KEY=keep-me\n"
        assert stat.S_IMODE(previous.stat().st_mode) == 0o600
    finally:
        remove_stack(env_file, project)
    assert exposed == []
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert sorted(p.name for p in app.glob(".env.local*")) == [".env.local"]
    assert stat.S_IMODE(kept.stat().st_mode) == 0o700
    assert (kept / old_copy.name).read_text() == "PGPASSWORD=an-old-password\n"
    assert str(old_copy) in result.stdout  # the move is shown
    (kept / old_copy.name).unlink()


def test_the_kits_scram_verifiers_are_postgresqls(stack):
    """dbroles sends passwords only as SCRAM-SHA-256 verifiers it computes itself; a verifier the
    server computed from a clear password must match the kit's check, and the other way round."""
    from devkit.admin_password import scram_verifier, verifier_matches

    admin = stack.admin_connect()
    with admin.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS devkit_scram_probe")
        cur.execute("SET password_encryption = 'scram-sha-256'")
        cur.execute("CREATE ROLE devkit_scram_probe LOGIN PASSWORD 'clear-text-probe-1'")
        cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'devkit_scram_probe'")
        made_by_server = cur.fetchone()[0]
        cur.execute(
            "ALTER ROLE devkit_scram_probe PASSWORD %s", (scram_verifier("kit-made-probe-2"),)
        )
    probe = psycopg2.connect(
        host="127.0.0.1", port=stack.pg_port, user="devkit_scram_probe",
        password="kit-made-probe-2", dbname="postgres",
    )  # fmt: skip
    probe.close()
    with admin.cursor() as cur:
        cur.execute("DROP ROLE devkit_scram_probe")
    admin.close()
    assert verifier_matches(made_by_server, "clear-text-probe-1")
    assert not verifier_matches(made_by_server, "clear-text-probe-2")


def test_a_second_setup_skips_its_playbook_until_something_it_manages_changes(stack):
    """Nothing the playbook manages changed since the last full setup: it is skipped (a second
    setup took 12-16 s of Ansible finding nothing to do). A file it wrote removed, a container
    stopped, or --full: it runs again, and puts back what was undone."""

    def setup(*args: str) -> str:
        result = stack.invoke("setup", "--no-docker-install", *args)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        return result.stdout

    setup()  # a full run, or one skipped after the session's own: either way recorded
    skipped = setup()
    assert "Ansible: 0 changed; its playbook skipped" in skipped and "PLAY [" not in skipped
    hook = stack.app_dir / ".vscode" / "devkit-services.sh"
    written = hook.read_bytes()
    hook.unlink()
    again = setup()
    assert "PLAY [" in again and hook.read_bytes() == written
    assert "its playbook skipped" in setup()
    subprocess.run(["docker", "stop", stack.container("redis")], capture_output=True, check=True)
    again = setup()
    assert "PLAY [" in again and "Ansible: 1 changed" in again
    state = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Status}}", stack.container("redis")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert state.strip() == "running"
    full = setup("--full")
    assert "PLAY [" in full and "(Ansible: 0 changed)" in full
