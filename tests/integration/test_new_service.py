"""A new service is one row of devkit/services.py, its block in compose.yaml, and the lines that
document and provision it: shown with a throwaway third service, a second Redis as a cache,
added to a copy of the kit. The copy's own checks pass, and its `setup` brings the cache up
beside PostgreSQL and Redis on a port of its own, with its password and URL in .env.local; up,
status and doctor name it."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.conftest import KIT_ROOT, forget_stack, remove_stack

pytestmark = [pytest.mark.docker, pytest.mark.ansible, pytest.mark.machine(shared=True)]

ROW = """        Service(
            "cache",
            kind="redis",
            image="redis",
            container_port=6379,
            preferred_port=6479,
            port_key="CACHE_PORT",
            password_key="CACHE_PASSWORD",
            url_keys=("CACHE_URL",),
        ),
"""
# compose.yaml's redis block, for the cache: its own port, password and volume.
COMPOSE_BLOCK = {
    "  redis:\n": "  cache:\n",
    "REDIS_PASSWORD: ${REDIS_PASSWORD:?REDIS_PASSWORD": "REDIS_PASSWORD: ${CACHE_PASSWORD:?CACHE_PASSWORD",
    "${REDIS_PORT:-6379}:6379": "${CACHE_PORT:-6479}:6379",
    "- redis-data:/data": "- cache-data:/data",
}


def _add_the_cache(kit: Path) -> None:
    services = kit / "devkit/services.py"
    text = services.read_text()
    end = text.index("    )\n}\n", text.index("SERVICES: dict"))
    services.write_text(text[:end] + ROW + text[end:])

    compose = kit / "compose/compose.yaml"
    text = compose.read_text()
    start, end = text.index("  redis:\n"), text.index("x-volume:")
    block = text[start:end]
    for old, new in COMPOSE_BLOCK.items():
        assert old in block
        block = block.replace(old, new)
    text = text[:end] + block + text[end:]
    text = text.replace(
        "  redis-data: *volume\n",
        "  redis-data: *volume\n  # The cache's append-only file.\n  cache-data: *volume\n",
    )
    compose.write_text(text)

    for readme in ("README.md", "docs/ja/README.md"):
        path = kit / readme
        text = path.read_text()
        first = text.index("`redis_port`")
        path.write_text(text[:first] + "`redis_port`, `cache_port`" + text[first + 12 :])

    # A server's password: one line in each inventory's vault (the CI's is encrypted).
    line = "vault_devkit_cache_password: CHANGE-ME-cache-password\n"
    for inventory in ("production", "staging"):
        with (kit / "inventories" / inventory / "group_vars/servers/vault.yml.example").open(
            "a"
        ) as f:
            f.write(line)
    password = ["--vault-password-file", "inventories/ci/vault-password.txt"]
    ci_vault = "inventories/ci/group_vars/servers/vault.yml"
    vault_bin = str(Path(sys.executable).with_name("ansible-vault"))
    plain = subprocess.run(
        [vault_bin, "view", *password, ci_vault],
        cwd=kit,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (kit / ci_vault).write_text(plain + line.replace("CHANGE-ME-cache-password", "c" * 24))
    subprocess.run(
        [vault_bin, "encrypt", *password, ci_vault], cwd=kit, capture_output=True, check=True
    )


def _copy_of_the_kit(tmp_path: Path) -> Path:
    """The kit's files as they are now (tracked and new, uncommitted changes included) in a git
    repository of their own, committed, so that `git status` shows what the addition touched."""
    kit = tmp_path / "kit"
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=KIT_ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = KIT_ROOT / name
        if source.is_file() and not source.is_symlink():
            target = kit / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            target.chmod(source.stat().st_mode & 0o777)
    (kit / ".venv").symlink_to(KIT_ROOT / ".venv")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(kit)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "kit"], check=True)
    return kit


def test_a_third_service_is_a_table_row_and_its_compose_block(tmp_path):
    kit = _copy_of_the_kit(tmp_path)
    _add_the_cache(kit)
    changed = subprocess.run(
        ["git", "-C", str(kit), "status", "--porcelain"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert 0 < len(changed) < 10, changed

    # The copy's code, not the installed kit's, in every process (ansible-playbook's filters too).
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INVOKE_DEVKIT_")},
        "PYTHONPATH": str(kit),
    }
    checks = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "unit",
         "tests/unit/test_services.py", "tests/unit/test_settings.py", "tests/unit/test_docs.py"],
        cwd=kit, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert checks.returncode == 0, checks.stdout[-3000:]
    assert "cache" in checks.stdout or "passed" in checks.stdout

    app = tmp_path / "app"
    app.mkdir()
    devkit = [sys.executable, "-c", "from devkit.cli import main; main()"]
    env_file = app / ".env.local"
    project = ""
    try:
        setup = subprocess.run(
            [*devkit, "setup", "--no-vscode"], cwd=app, env=env, capture_output=True, text=True,
            timeout=600, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
        from devkit.envfile import read_env_file

        values = read_env_file(env_file)
        project = values["DEVKIT_PROJECT_NAME"]
        assert re.search(r"^  cache +7\.\d+\.\d+ +127\.0\.0\.1:\d+", setup.stdout, re.M), (
            setup.stdout
        )
        ports = {values["PGPORT"], values["REDIS_PORT"], values["CACHE_PORT"]}
        assert len(ports) == 3
        assert values["CACHE_PASSWORD"] not in (values["REDIS_PASSWORD"], values["PGPASSWORD"])
        assert f":{values['CACHE_PORT']}/0" in values["CACHE_URL"]
        assert (env_file.stat().st_mode & 0o777) == 0o600

        cache = redis.Redis.from_url(values["CACHE_URL"], socket_timeout=5)
        main = redis.Redis.from_url(values["REDIS_URL"], socket_timeout=5)
        try:
            cache.set("only-in", "cache")
            assert main.get("only-in") is None  # a server of its own, not a database of Redis's
            with pytest.raises(redis.AuthenticationError):
                redis.Redis(
                    port=int(values["CACHE_PORT"]), password=values["REDIS_PASSWORD"]
                ).ping()
        finally:
            cache.close()
            main.close()

        def run(*args: str) -> str:
            done = subprocess.run(
                [*devkit, *args], cwd=app, env=env, capture_output=True, text=True, timeout=300,
                check=False, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
            return done.stdout

        assert re.search(rf"cache 7\.\d+\.\d+ on 127\.0\.0\.1:{values['CACHE_PORT']}", run("up"))
        assert re.search(r"cache +│ running", run("status"))
        assert re.search(r"cache login +OK", run("doctor"))
    finally:
        if env_file.exists():
            subprocess.run(
                ["docker", "compose", "--env-file", str(env_file),
                 "-f", str(kit / "compose/compose.yaml"), "down", "--volumes"],
                capture_output=True, check=False,
            )  # fmt: skip
            remove_stack(env_file)
        if project:
            forget_stack(project)
