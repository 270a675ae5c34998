"""The test tools the kit's users never need, installed once per machine outside the kit's
virtualenv (so `scripts/devkit` stays small): a real VS Code (code-server from the npm
registry), Debian's Chromium, and Playwright in a virtualenv of its own to drive them; mitmproxy
(tests/integration/test_company_proxy.py) in another.

code-server 4.100.3 takes this machine's Node 20. Its install builds native modules (node-pty
needs node-gyp, fetched by npx: npm_config_yes) and its bundled @vscode/ripgrep downloads a
binary from GitHub, which cannot work here: that download's own cache (a tarball named as the
release asset, in $TMPDIR/vscode-ripgrep-cache-VERSION, see @vscode/ripgrep's lib/download.js)
is filled from Debian's ripgrep first, so the install finds it there.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import shutil
import subprocess
import tarfile
from pathlib import Path

TOOLS = Path("/var/cache/devkit-test-tools")
CODE_SERVER = "4.100.3"
RIPGREP_PACKAGE = "1.15.11"  # the @vscode/ripgrep code-server 4.100.3 installs
RIPGREP_RELEASE = "v13.0.0-10"
PLAYWRIGHT = "1.65.2"
APT_PACKAGES = (
    "chromium",
    "ripgrep",
    "libkrb5-dev",
    "g++",
    "make",
)  # Node 20 and npm: the machine's


@contextlib.contextmanager
def _locked(name: str):
    TOOLS.mkdir(parents=True, exist_ok=True)
    with (TOOLS / f"{name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _apt(*packages: str) -> None:
    missing = [
        p
        for p in packages
        if subprocess.run(["dpkg", "-s", p], capture_output=True, check=False).returncode != 0
    ]
    if not missing:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
    subprocess.run(
        ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", *missing],
        env=env, check=True, capture_output=True,
    )  # fmt: skip


def _seed_ripgrep(tmp: Path) -> None:
    target = {"x86_64": "x86_64-unknown-linux-musl", "aarch64": "aarch64-unknown-linux-musl"}[
        platform.machine()
    ]
    cache = tmp / f"vscode-ripgrep-cache-{RIPGREP_PACKAGE}"
    cache.mkdir(parents=True, exist_ok=True)
    asset = cache / f"ripgrep-{RIPGREP_RELEASE}-{target}.tar.gz"
    if not asset.exists():
        with tarfile.open(asset, "w:gz") as archive:
            archive.add(shutil.which("rg") or "/usr/bin/rg", arcname="rg")


def code_server() -> Path:
    """The code-server command, installed on first use."""
    prefix = TOOLS / f"code-server-{CODE_SERVER}"
    command = prefix / "node_modules" / ".bin" / "code-server"
    with _locked("code-server"):
        if command.exists():
            return command
        _apt(*APT_PACKAGES)
        tmp = TOOLS / "tmp"
        _seed_ripgrep(tmp)
        prefix.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TMPDIR": str(tmp), "npm_config_yes": "true"}
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--unsafe-perm", f"code-server@{CODE_SERVER}"],
            cwd=prefix, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0 or not command.exists():
            shutil.rmtree(prefix / "node_modules", ignore_errors=True)
            raise RuntimeError(
                f"code-server did not install:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )
        return command


def tools_python(name: str, *requirements: str) -> Path:
    """The python of a virtualenv of the test tools' own (TOOLS/NAME) holding REQUIREMENTS."""
    venv = TOOLS / name
    python = venv / "bin" / "python"
    stamp = venv / ".requirements"
    wanted = "\n".join(requirements)
    with _locked(name):
        if python.exists() and stamp.exists() and stamp.read_text() == wanted:
            return python
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *requirements],
            check=True, capture_output=True,
        )  # fmt: skip
        stamp.write_text(wanted)
        return python


def playwright_python() -> Path:
    _apt("chromium")
    return tools_python("playwright", f"playwright=={PLAYWRIGHT}")


SETTINGS = {
    "security.workspace.trust.enabled": False,
    "workbench.startupEditor": "none",
    "telemetry.telemetryLevel": "off",
    "extensions.autoCheckUpdates": False,
    "extensions.autoUpdate": False,
}


@contextlib.contextmanager
def running_code_server(
    home: Path, port: int, env: dict[str, str], extensions=(), settings: dict | None = None
):
    """code-server on 127.0.0.1:PORT with a user directory of its own under HOME, the given
    extension directories installed, ENV as its environment, SETTINGS added to its user
    settings; yields its URL. Note: like VS Code's server in WSL, it gives terminals and tasks
    the environment of the user's login shell (resolveShellEnv), not ENV's PATH."""
    import json
    import time
    import urllib.request

    user, installed = home / "user", home / "extensions"
    (user / "User").mkdir(parents=True, exist_ok=True)
    (user / "User" / "settings.json").write_text(json.dumps({**SETTINGS, **(settings or {})}))
    installed.mkdir(parents=True, exist_ok=True)
    for source in extensions:
        manifest = json.loads((Path(source) / "package.json").read_text())
        name = f"{manifest['publisher']}.{manifest['name']}-{manifest['version']}"
        shutil.copytree(source, installed / name, dirs_exist_ok=True)
    log = (home / "code-server.log").open("w")
    server = subprocess.Popen(
        [
            str(code_server()), "--bind-addr", f"127.0.0.1:{port}", "--auth", "none",
            "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust",
            "--user-data-dir", str(user), "--extensions-dir", str(installed),
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError((home / "code-server.log").read_text()) from None
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        log.close()


def drive(url: str, folder: Path, steps: list[dict], timeout: float = 900) -> dict:
    """Run tests/vscode/drive.py (Playwright) against the code-server at URL."""
    import json

    done = subprocess.run(
        [str(playwright_python()), str(Path(__file__).with_name("drive.py")), url, str(folder), json.dumps(steps)],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(f"drive.py failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def logs(home: Path, lines: int = 40) -> str:
    """The last LINES lines of code-server's own log and of its server-side logs (the extension
    host's activations, the terminals' pty host) under HOME, for a failure's message."""
    found = [home / "code-server.log", *sorted((home / "user" / "logs").glob("*/**/*.log"))]
    tails = []
    for path in found:
        if path.is_file() and path.stat().st_size:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"--- {path.relative_to(home)}\n" + "\n".join(tail))
    return "\n".join(tails)
