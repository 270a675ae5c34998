"""End state of a workstation after `devkit setup`, asserted through testinfra's `host`."""

import re
import time

import pytest

from devkit.services import SERVICES

pytestmark = pytest.mark.infra


def test_docker_daemon_answers(host):
    result = host.run("docker info --format '{{.ServerVersion}}'")
    assert result.rc == 0 and result.stdout.strip()


def test_compose_v2_is_installed(host):
    result = host.run("docker compose version --short")
    assert result.rc == 0 and result.stdout.strip().startswith("2.")


@pytest.mark.parametrize("service", SERVICES)
def test_container_becomes_healthy(host, deployment, service):
    name = f"{deployment.project}-{service}-1"
    status = ""
    deadline = time.monotonic() + 120  # Docker reports health on the healthcheck's interval
    while time.monotonic() < deadline:
        status = host.check_output(f"docker inspect -f '{{{{.State.Health.Status}}}}' {name}")
        if status != "starting":
            break
        time.sleep(1)
    assert status == "healthy"


@pytest.mark.parametrize("service", SERVICES)
def test_container_restarts_and_stops_as_compose_yaml_says(host, deployment, service):
    """The kit's compose.yaml (this checkout's: the one definition of the services) against the
    container's settings. A server's copy edited to `restart: "no"` was applied by provision and
    passed verify; after a reboot the stack stayed down."""
    import yaml

    from devkit.compose import runs_otherwise
    from devkit.paths import KIT_ROOT

    wanted = yaml.safe_load((KIT_ROOT / "compose" / "compose.yaml").read_text())["services"]
    policy, timeout = host.check_output(
        "docker inspect -f '{{.HostConfig.RestartPolicy.Name}} {{.Config.StopTimeout}}' %s",
        f"{deployment.project}-{service}-1",
    ).split()
    problem = runs_otherwise(wanted[service], policy, timeout)
    assert not problem, (
        f"the container {problem}: provision the host again (on a workstation: `devkit setup`), "
        "which makes it anew"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_port_published_on_loopback_only(host, deployment, service):
    port = deployment.ports[service]
    assert host.socket(f"tcp://127.0.0.1:{port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
    bindings = host.check_output(f"docker port {deployment.project}-{service}-1")
    assert bindings.splitlines() == [f"{SERVICES[service].container_port}/tcp -> 127.0.0.1:{port}"]


@pytest.mark.parametrize("service", SERVICES)
def test_service_answers_with_the_password_of_env_local(host, deployment, service):
    # `up` on a running stack waits for each service's authenticated probe and names its version.
    result = host.run(deployment.kit_task("up"))
    assert result.rc == 0, result.stderr
    major = SERVICES[service].spec.major
    assert re.search(rf"\b{service} {major}\.\d+(\.\d+)? on ", result.stdout), result.stdout


def test_env_local_is_private(host, deployment):
    env_file = host.file(deployment.env_file)
    assert env_file.is_file
    assert env_file.mode == 0o600


def test_postgres_16_answers_an_authenticated_query(host, deployment, env_local):
    # Over TCP with the password (the kit's db.psql), so scram-sha-256 authentication is what
    # lets the query through.
    result = host.run(
        deployment.kit_task("db.psql", "-c", "SELECT 'v=' || current_setting('server_version')")
    )
    assert result.rc == 0, result.stderr
    assert re.search(r"v=16\.\d+", result.stdout), result.stdout
    name = f"{deployment.project}-postgres-1"
    # The stored verifier, read as the cluster's superuser over the container's local socket.
    scram = host.check_output(
        "docker exec -u postgres %s psql -U postgres -d postgres -Atc %s",
        name,
        f"SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = '{env_local['PGUSER']}'",
    )
    assert scram == "t"
    wrong = host.run(
        "PGPASSWORD=wrong docker exec -e PGPASSWORD %s psql -h 127.0.0.1 -U %s -d %s -Atc 'SELECT 1'",
        name,
        env_local["PGUSER"],
        env_local["PGDATABASE"],
    )
    assert wrong.rc != 0 and "password authentication failed" in wrong.stderr


def test_redis_7_answers_an_authenticated_ping(host, deployment):
    pong = host.run(deployment.kit_task("redis.cli", "-c", "PING"))
    assert pong.stdout.strip() == "PONG", pong.stderr
    info = host.check_output(deployment.kit_task("redis.cli", "-c", "INFO server"))
    assert re.search(r"redis_version:7\.\d+\.\d+", info)
    refused = host.run("docker exec %s redis-cli PING", f"{deployment.project}-redis-1")
    assert "NOAUTH" in refused.stdout + refused.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_server_runs_as_a_non_root_user(host, deployment, service):
    server = SERVICES[service].spec.process
    processes = host.check_output(
        f"docker top {deployment.project}-{service}-1 -o pid,uid,comm"
    ).splitlines()[1:]
    uids = {
        uid
        for _, uid, comm in (line.split(None, 2) for line in processes)
        if comm.strip() == server
    }
    assert uids and "0" not in uids


def test_the_app_connects_as_a_role_that_is_no_superuser(host, deployment, env_local):
    """SQL injected into the app cannot reach past its data (was: the app's user was the
    cluster's superuser, so `COPY ... TO PROGRAM` ran commands in the container)."""
    name = f"{deployment.project}-postgres-1"
    attributes = host.check_output(
        "docker exec -u postgres %s psql -U postgres -d postgres -Atc %s",
        name,
        "SELECT r.rolsuper, r.rolcreaterole, pg_get_userbyid(d.datdba) FROM pg_roles r, pg_database d "
        f"WHERE r.rolname = '{env_local['PGUSER']}' AND d.datname = '{env_local['PGDATABASE']}'",
    )
    assert attributes == f"f|f|{env_local['PGUSER']}"
    escape = host.run(deployment.kit_task("db.psql", "-c", "COPY (SELECT 1) TO PROGRAM 'id'"))
    assert escape.rc != 0 and "permission denied" in escape.stdout + escape.stderr


def test_postgres_writes_the_wal_its_env_local_asks_for(host, deployment, env_local):
    """wal_level as the postgres_wal_level setting put it in .env.local (minimal on a
    workstation, replica on a server; compose.yaml's replica for a file written before the
    key), and max_wal_senders with it: 0 at minimal (the server refuses to start otherwise)."""
    running = host.check_output(
        "docker exec -u postgres %s psql -U postgres -d postgres -Atc %s",
        f"{deployment.project}-postgres-1",
        "SELECT current_setting('wal_level') || ' ' || current_setting('max_wal_senders')",
    )
    from devkit.compose import file_defaults

    runs_without = file_defaults()
    keys = ("DEVKIT_PG_WAL_LEVEL", "DEVKIT_PG_MAX_WAL_SENDERS")
    assert running == " ".join(env_local.get(key, runs_without[key]) for key in keys)
