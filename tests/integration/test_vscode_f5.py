"""F5 in a real VS Code (code-server 4.100.3 = VS Code 1.100.3, driven in headless Chromium):
VS Code's own task runner, problem matcher and preLaunchTask code run the kit's hooks.

The debuggee is a Node program (js-debug is built into VS Code; the Python debugger extension
cannot be downloaded here); its launch configuration is the kit's own with only the type
changed: same preLaunchTask, same envFile. It runs a Python probe that connects to both
servers with what `.env.local` gave it.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import json5
import pytest

from devkit.paths import SAMPLE_APP

sys.path.insert(0, str(Path(__file__).parents[1] / "vscode"))
import tools

pytestmark = [pytest.mark.docker, pytest.mark.ansible, pytest.mark.machine(shared=True)]

SLOW = 7  # seconds the start is made slower: past VS Code's 5 s for a background preLaunchTask

PROBE_JS = """
const { execFileSync } = require('child_process');
const fs = require('fs');
const out = execFileSync(process.env.DEVKIT_TEST_PYTHON, [__dirname + '/f5_probe.py'], { encoding: 'utf8' });
// One file per run: f5-result-1.json, -2 …
const dir = process.env.DEVKIT_TEST_RESULTS;
const n = fs.readdirSync(dir).filter((name) => name.startsWith('f5-result-')).length + 1;
fs.writeFileSync(`${dir}/f5-result-${n}.json`, out);
"""
PROBE_PY = """
import json, os, psycopg2, redis
conn = psycopg2.connect(os.environ["DATABASE_URL_SYNC"], connect_timeout=3)
with conn.cursor() as cur:
    cur.execute("SHOW server_version")
    postgres = cur.fetchone()[0]
conn.close()
pong = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=3).ping()
print(json.dumps({"postgres": postgres, "redis": pong, "env": sorted(os.environ)}))
"""


@pytest.fixture
def f5_app(tmp_path, run_devkit, remove_stack):
    """The sample app set up by `setup` in a git repository, a Node debug configuration first in
    its launch.json, and a `devkit` on the PATH that waits SLOW seconds before each start."""
    app = tmp_path / "backend"
    shutil.copytree(
        SAMPLE_APP,
        app,
        ignore=shutil.ignore_patterns(".env.local*", "backups", "__pycache__", ".gitattributes"),
    )
    subprocess.run(["git", "init", "-q", str(app)], check=True)
    try:  # a setup that fails half-way may have started the stack too
        done = run_devkit("setup", cwd=app, timeout=1500)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr
        # In a git repository setup keeps the hook LF for Git for Windows' checkouts; the sample
        # app commits exactly that file (setup leaves the kit's checkout clean).
        written = (app / ".gitattributes").read_text()
        assert written == ".vscode/*.sh text eol=lf\n"
        assert written == (SAMPLE_APP / ".gitattributes").read_text()
        launch_file = app / ".vscode" / "launch.json"
        launch = json5.loads(launch_file.read_text())
        kit = next(c for c in launch["configurations"] if c["name"].startswith("devkit: Python ("))
        node = {
            **{k: v for k, v in kit.items() if k not in ("type", "justMyCode", "program")},
            "name": "F5 probe (node)",
            "type": "node",
            "program": "${workspaceFolder}/f5_probe.js",
            "env": {
                "DEVKIT_TEST_PYTHON": sys.executable,
                "DEVKIT_TEST_RESULTS": "${workspaceFolder}",
            },
        }
        launch["configurations"].insert(0, node)
        launch_file.write_text(json.dumps(launch, indent=2))
        (app / "f5_probe.js").write_text(PROBE_JS)
        (app / "f5_probe.py").write_text(PROBE_PY)
        shims = tmp_path / "bin"
        shims.mkdir()
        calls = tmp_path / "devkit-calls.log"
        real = Path(sys.executable).with_name("devkit")
        (shims / "devkit").write_text(
            "#!/bin/sh\n"
            f'echo "$*" >> {calls}\n'
            f'if [ "$1" = up ]; then sleep {SLOW}; fi\n'
            f'exec {real} "$@"\n'
        )
        (shims / "devkit").chmod(0o755)
        yield app, shims, calls
    finally:
        remove_stack(app / ".env.local")


def holding(app: Path) -> list[int]:
    """The processes holding the app's databases for a start task (`devkit up --hold`)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--hold" in argv and f"INVOKE_DEVKIT_APP_DIR={app}".encode() in environ:
            found.append(int(proc.name))
    return found


def test_f5_in_vscode(f5_app, tmp_path, run_devkit, free_port):
    """In one VS Code window, as a developer's morning goes:
    1. the first F5, the databases down and the start slower than VS Code's 5 s for a
       background preLaunchTask: VS Code waits for `devkit: ready` (no "cannot be tracked"
       dialog), then the debuggee gets .env.local and reaches both servers;
    2. a second F5 reuses the running start task (no second `devkit up`);
    3. "devkit: stop services" (Tasks: Run Task) ends the start task with the databases;
    4. a start that fails (the app's PostgreSQL port held by another program) blocks the launch:
       VS Code's "Error exists after running preLaunchTask" dialog, and no debuggee. That this
       F5 ran a new start at all shows the stop had ended the previous task (a running one is
       reused).
    An F5 that VS Code itself leaves alone (before its debuggers are registered) runs nothing of
    the kit's; drive.py presses again then, and counts the presses in each step's result."""
    app, shims, calls = f5_app
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_DEVKIT_")}
    # The shim first on the PATH of VS Code's terminals (its server gives them the login
    # shell's environment, so the PATH of its own process would not reach the task).
    settings = {"terminal.integrated.env.linux": {"PATH": f"{shims}:${{env:PATH}}"}}
    assert run_devkit("down", cwd=app).returncode == 0
    values = dict(
        line.split("=", 1) for line in (app / ".env.local").read_text().splitlines() if "=" in line
    )
    result = [app / f"f5-result-{n}.json" for n in (1, 2, 3)]
    with tools.running_code_server(tmp_path / "vscode", free_port(), env, settings=settings) as url:
        steps = tools.drive(
            url,
            app,
            [
                # The test asserts what VS Code does, not how fast (benchmarks time things): the
                # first start on a busy CI machine was once later than 240 s.
                {"f5": {"wait_file": str(result[0]), "timeout": 480}},
                {"read": str(calls)},
                {"f5": {"wait_file": str(result[1]), "timeout": 120}},
                {"read": str(calls)},
                {"task": "devkit: stop services"},
                {"wait_text": [str(calls), "down", 120]},
                {"sleep": 8},
                {"hold_port": int(values["PGPORT"])},
                {"f5": {"wait_file": str(result[2]), "timeout": 240}},
                {"screenshot": str(tmp_path / "failed.png")},
                {"read": str(calls)},
            ],
            timeout=1800,  # the steps' own limits, and the workbench's start
        )["steps"]
    first, after_first, second, after_second, _, stopped, failed, at_end = steps
    # A string, shown whole (pytest shortens the repr of anything else): every step, then the
    # tails of VS Code's server-side logs.
    seen = json.dumps(steps, indent=1) + "\n" + tools.logs(tmp_path / "vscode")
    assert first["f5"]["launched"] and not first["f5"]["dialog"], seen
    assert first["f5"]["seconds"] > SLOW
    probe = json.loads(result[0].read_text())
    assert probe["postgres"].startswith("16.") and probe["redis"] is True
    assert {"DATABASE_URL", "REDIS_URL", "PGPASSWORD"} <= set(probe["env"])
    assert after_first["read"].splitlines() == ["up --hold"]

    assert second["f5"]["launched"] and not second["f5"]["dialog"], seen
    assert after_second["read"].splitlines() == ["up --hold"]  # the running task, reused

    assert stopped["wait_text"] is True
    assert not failed["f5"]["launched"] and not result[2].exists(), seen
    assert "after running preLaunchTask 'devkit: start services'" in failed["f5"]["dialog"], seen
    assert at_end["read"].splitlines() == ["up --hold", "down", "up --hold"]
    assert not holding(app)
