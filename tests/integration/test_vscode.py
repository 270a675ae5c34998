"""VS Code hooks: installed into realistic .vscode files, read as VS Code reads them, and the
start task run exactly as VS Code's task runner would."""

import getpass
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import json5
import pytest

from devkit.paths import KIT_ROOT, SAMPLE_APP
from devkit.vscode_hooks import backup_dir

from phrases import line_with

pytestmark = [pytest.mark.ansible, pytest.mark.docker]

# What a team's .vscode looks like before the kit: comments, trailing commas, its own entries.
USER_TASKS = """// Team tasks — keep these!
{
    // See https://go.microsoft.com/fwlink/?LinkId=733558
    "version": "2.0.0",
    "tasks": [
        {
            "label": "lint", // ruff
            "type": "shell",
            "command": "ruff check . /* not a comment */",
            "problemMatcher": [],
        },
        /* the test runner */
        {
            "label": "pytest",
            "type": "shell",
            "command": "pytest -q",
            "group": {"kind": "test", "isDefault": true},
        },
    ],
}
"""
USER_ELEMENTS = [
    """{
            "label": "lint", // ruff
            "type": "shell",
            "command": "ruff check . /* not a comment */",
            "problemMatcher": [],
        }""",
    """{
            "label": "pytest",
            "type": "shell",
            "command": "pytest -q",
            "group": {"kind": "test", "isDefault": true},
        }""",
]
USER_LAUNCH = """{
  "version": "0.2.0",
  "configurations": [
    {"name": "FastAPI", "type": "debugpy", "request": "launch", "module": "uvicorn",
     "args": ["app.main:app", "--reload"]},  // the app server
  ]
}
"""


def vscode_file(app_dir, name):
    text = (app_dir / ".vscode" / name).read_text()
    return text, json5.loads(text)


def resolve(value, workspace):
    """VS Code's variables used by the kit's entries."""
    if isinstance(value, str):
        return value.replace("${workspaceFolder}", str(workspace))
    if isinstance(value, list):
        return [resolve(v, workspace) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, workspace) for k, v in value.items()}
    return value


@pytest.fixture
def app(tmp_path, stack):
    """An app set up by the kit (its .env.local names a stack: vscode.install refuses an app
    that has none), with .vscode files of its own."""
    app_dir = tmp_path / "backend"
    (app_dir / ".vscode").mkdir(parents=True)
    (app_dir / ".env.local").write_text(f"DEVKIT_PROJECT_NAME={stack.project}\n")
    (app_dir / ".vscode" / "tasks.json").write_text(USER_TASKS)
    (app_dir / ".vscode" / "launch.json").write_text(USER_LAUNCH)
    yield app_dir
    shutil.rmtree(backup_dir(app_dir, getpass.getuser()), ignore_errors=True)


def test_install_merges_keeps_every_user_byte_and_is_idempotent(stack, app):
    done = stack.invoke("vscode.install", "--app-dir", str(app))
    assert done.returncode == 0, done.stdout + done.stderr
    tasks_text, tasks = vscode_file(app, "tasks.json")
    assert tasks_text.startswith(
        "// Team tasks — keep these!\n{\n    // See https://go.microsoft.com"
    )
    for element in USER_ELEMENTS:
        assert element in tasks_text
    labels = [t["label"] for t in tasks["tasks"]]
    assert labels == ["lint", "pytest", "devkit: start services", "devkit: stop services"]
    launch_text, launch = vscode_file(app, "launch.json")
    assert USER_LAUNCH.split('"configurations": [')[1].split("  ]")[0].rstrip() in launch_text
    kit = next(c for c in launch["configurations"] if c["name"].startswith("devkit:"))
    # A package app (`python3 -m app`): the module configuration asks for the module through the
    # input it names (VS Code resolves ${input:…} from launch.json's "inputs").
    module = next(
        c for c in launch["configurations"] if c["name"].startswith("devkit: Python module")
    )
    assert (
        module["module"] == "${input:devkitModule}"
        and module["preLaunchTask"] == kit["preLaunchTask"]
    )
    assert [i["id"] for i in launch["inputs"]] == ["devkitModule"]
    assert kit["preLaunchTask"] == "devkit: start services"
    assert kit["envFile"] == "${workspaceFolder}/.env.local"
    # The versions replaced are kept outside the app's tree (was: `tasks.json.123.2026…~` in
    # .vscode, an untracked file in the app's repository).
    assert list((app / ".vscode").glob("*~")) == []
    kept = backup_dir(app, getpass.getuser())
    assert (kept / "tasks.json.previous").read_text() == USER_TASKS
    assert (kept / "launch.json.previous").read_text() == USER_LAUNCH
    again = stack.invoke("vscode.install", "--app-dir", str(app))
    assert "already up to date (0 changed)" in again.stdout
    assert (app / ".vscode" / "tasks.json").read_text() == tasks_text
    assert list((app / ".vscode").glob("*~")) == []
    # An edited kit entry is put back; the user's entries still untouched.
    (app / ".vscode" / "tasks.json").write_text(tasks_text.replace('"start"', '"oops"'))
    stack.invoke("vscode.install", "--app-dir", str(app))
    assert (app / ".vscode" / "tasks.json").read_text() == tasks_text


def test_dry_run_shows_a_diff_and_writes_nothing(stack, app):
    shown = stack.invoke("vscode.install", "--app-dir", str(app), "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert "+++ after:" in shown.stdout and '"label": "devkit: start services"' in shown.stdout
    assert (app / ".vscode" / "tasks.json").read_text() == USER_TASKS
    assert not (app / ".vscode" / "devkit-services.sh").exists()


def test_broken_jsonc_is_refused_and_left_alone(stack, app):
    (app / ".vscode" / "tasks.json").write_text('{"tasks": [ {"label": "x" ]}')
    failed = stack.invoke("vscode.install", "--app-dir", str(app))
    assert failed.returncode == 1
    assert "tasks.json: expected" in failed.stderr
    assert (app / ".vscode" / "tasks.json").read_text() == '{"tasks": [ {"label": "x" ]}'


def run_task(task: dict, env: dict) -> subprocess.Popen:
    """A process task as VS Code runs it: its command and arguments, no shell, in options.cwd."""
    return subprocess.Popen(
        [task["command"], *task["args"]],
        cwd=task["options"]["cwd"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(process: subprocess.Popen, pattern: str, timeout: float = 300) -> str:
    """The task's output up to the line `pattern` (a problem matcher's JavaScript regexp, of the
    kind Python reads alike) matches; fails when the task ends first."""
    import select
    import time

    # Bytes as they come (was: readline on the buffered pipe, which read two lines at once and
    # then waited for a third that the task never printed).
    seen, buffer = [], b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1)
        if not ready:
            continue
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            raise AssertionError(f"the task ended before {pattern!r}: {''.join(seen)}")
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            seen.append(line.decode() + "\n")
            if re.search(pattern, seen[-1].rstrip("\n")):
                return "".join(seen)
    raise AssertionError(f"no line matched {pattern!r} in {timeout} s: {''.join(seen)}")


def hook_env(stack) -> dict[str, str]:
    """The environment VS Code gives a task: none of the suite's settings, and this kit's
    `devkit` command first on the PATH (as setup's ~/.local/bin/devkit is for a user)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_DEVKIT_")}
    for key in ("PROJECT_NAME", "POSTGRES_PORT", "REDIS_PORT"):
        env[f"INVOKE_DEVKIT_{key}"] = stack.env[f"INVOKE_DEVKIT_{key}"]
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_sample_apps_committed_vscode_files_are_what_setup_writes(stack):
    """The session's app is a copy of the sample app, at another path, set up by `setup`: what
    setup wrote there is byte for byte what the kit's checkout commits (was: the committed files
    named /work/main and an older command, and every setup left the checkout changed), and so a
    .vscode written on one machine is the one every other checkout gets."""
    for name in ("tasks.json", "launch.json", "devkit-services.sh"):
        written = (stack.app_dir / ".vscode" / name).read_text()
        assert written == (SAMPLE_APP / ".vscode" / name).read_text(), name


def test_a_failed_start_prints_the_line_the_problem_matcher_makes_an_error(stack, tmp_path):
    """A start that fails (here: the app's PostgreSQL port held by another program) prints the
    kit's cause as `devkit: error: …`, which the task's pattern turns into an error marker, and
    the task ends non-zero: VS Code then shows "Error exists after running preLaunchTask" and
    does not start the debugger (was: no pattern ever matched, and F5 launched the app)."""
    import socket

    _, tasks = vscode_file(stack.app_dir, "tasks.json")
    start = resolve(tasks["tasks"][0], stack.app_dir)
    assert start["label"] == "devkit: start services"
    matcher = start["problemMatcher"]
    assert stack.invoke("down").returncode == 0
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind(("127.0.0.1", stack.pg_port))
        holder.listen()
        task = run_task(start, hook_env(stack))
        out, _ = task.communicate(timeout=300)
    finally:
        holder.close()
        assert stack.invoke("up").returncode == 0
    assert task.returncode != 0, out
    errors = [
        m for line in out.splitlines() if (m := re.search(matcher["pattern"]["regexp"], line))
    ]
    assert errors, out
    file, message = errors[0][matcher["pattern"]["file"]], errors[0][matcher["pattern"]["message"]]
    assert file == "devkit" and str(stack.pg_port) in message, out
    assert not re.search(matcher["background"]["endsPattern"], out, re.M)
    assert "Traceback" not in out


def test_the_start_task_is_ready_once_both_servers_answer_and_holds_until_stop(stack):
    """Run "devkit: start services" as VS Code runs a process task: its problem matcher's end
    pattern (what a preLaunchTask waits for) matches once both servers answer; the task then
    keeps running (on Windows: wsl.exe with it, which keeps WSL from stopping the databases
    15 s later, microsoft/WSL#9667) until "devkit: stop services" stops the databases."""
    done = stack.invoke("vscode.install")  # the session app, where the stack's .env.local is
    assert done.returncode == 0, done.stdout + done.stderr
    _, tasks = vscode_file(stack.app_dir, "tasks.json")
    by_label = {t["label"]: resolve(t, stack.app_dir) for t in tasks["tasks"]}
    start, stop = by_label["devkit: start services"], by_label["devkit: stop services"]
    assert start["type"] == "process" and start["isBackground"] is True
    background = start["problemMatcher"]["background"]
    assert stack.invoke("down").returncode == 0
    env = hook_env(stack)

    task = run_task(start, env)
    try:
        shown = read_until(task, background["endsPattern"])
        assert re.search(background["beginsPattern"], shown, re.M), shown
        assert re.search(r"postgres 16\.\d+ .* and redis 7\.\d+\.\d+ .* ready", shown)
        assert shown.endswith("\ndevkit: ready\n")
        # Both answer authenticated queries right away: no wait after the end pattern.
        from devkit.envfile import load_stack
        from devkit.readiness import postgres_version, redis_version
        from devkit.settings.table import DEFAULTS

        live = load_stack(
            DEFAULTS
            | {
                "project_name": stack.project,
                "app_dir": str(stack.app_dir),
                "postgres_port": stack.pg_port,
                "redis_port": stack.redis_port,
            }
        )
        assert postgres_version(live).startswith("16.")
        assert redis_version(live).startswith("7.")
        with pytest.raises(subprocess.TimeoutExpired):
            task.wait(timeout=2)  # it holds

        stopped = run_task(stop, env)
        assert stopped.wait(timeout=120) == 0, stopped.stdout.read()
        assert task.wait(timeout=60) == 0  # the start task ended with the databases
        assert "the databases stopped" in task.stdout.read()
    finally:
        task.kill()
        task.wait()
        assert stack.invoke("up").returncode == 0  # the session's stack, for the other tests

    # Already running: ready at once, and ending the task (VS Code closing) leaves them running.
    again = run_task(start, env)
    try:
        read_until(again, background["endsPattern"], timeout=60)
    finally:
        again.terminate()
        again.wait(timeout=30)
    assert postgres_version(live).startswith("16.")


HOOKS = (("devkit: start services", "start"), ("devkit: stop services", "stop"))


def installed_tasks(stack, app, *flags: str) -> dict[str, dict]:
    """`vscode.install --app-dir APP FLAGS`, then the tasks of its tasks.json by label."""
    done = stack.invoke("vscode.install", "--app-dir", str(app), *flags)
    assert done.returncode == 0, done.stdout + done.stderr
    _, tasks = vscode_file(app, "tasks.json")
    return {t["label"]: t for t in tasks["tasks"]}


def wsl_args(action: str, distro: str = "") -> list[str]:
    """What wsl.exe is given on Windows: the distribution when one is chosen, the workspace
    folder (wsl.exe takes the Windows path and enters its Linux form), and bash run directly
    (--exec: not through the user's default shell). No path of this machine's."""
    return [
        *(["-d", distro] if distro else []), "--cd", "${workspaceFolder}", "--exec", "bash",
        "-lc", f"exec bash .vscode/devkit-services.sh {action}",
    ]  # fmt: skip


def test_both_variants_are_in_one_tasks_json(stack, app):
    """By default each task has its Linux form (VS Code in Linux, or Remote - WSL) and a
    "windows" override (VS Code on Windows opening C:\\... or \\\\wsl.localhost\\...): wsl.exe
    with the distribution, the Linux directory and no default shell in between (--exec)."""
    by_label = installed_tasks(stack, app)
    for label, action in HOOKS:
        task = by_label[label]
        assert task["type"] == "process" and task["command"] == "bash"
        assert task["args"] == ["${workspaceFolder}/.vscode/devkit-services.sh", action]
        assert task["windows"] == {"command": "wsl.exe", "args": wsl_args(action)}
    start = by_label["devkit: start services"]
    assert start["isBackground"] is True and "isBackground" not in by_label["devkit: stop services"]
    # The end pattern is a short line of its own (was: the 81-83 character ready line, which a
    # terminal of 80 columns wraps); the task is active from its start (was: "activeBegins").
    background = start["problemMatcher"]["background"]
    assert background["activeOnStart"] is True
    assert re.search(background["endsPattern"], "devkit: ready")
    ready = "postgres 16.2 on 127.0.0.1:5433 and redis 7.0.15 on 127.0.0.1:6380 ready (0.41s)"
    assert not re.search(background["endsPattern"], ready)
    for text in (
        (app / ".vscode" / name).read_text()
        for name in ("tasks.json", "launch.json", "devkit-services.sh")
    ):
        assert str(app) not in text and str(KIT_ROOT) not in text


def test_windows_variant_calls_wsl_with_the_linux_path(stack, app):
    by_label = installed_tasks(
        stack, app, "--host", "windows", "--distro", "Ubuntu-24.04", "--auto-start"
    )
    for label, action in HOOKS:
        task = by_label[label]
        assert task["type"] == "process" and task["command"] == "wsl.exe"
        assert "windows" not in task
        assert task["args"] == wsl_args(action, "Ubuntu-24.04")
    assert by_label["devkit: start services"]["runOptions"] == {"runOn": "folderOpen"}
    assert "runOptions" not in by_label["devkit: stop services"]
    assert list(by_label)[:2] == ["lint", "pytest"]  # dicts keep the order of the file


def test_settings_choose_the_windows_variant_and_distro(stack, app):
    done = stack.invoke(
        "vscode.install",
        "--app-dir",
        str(app),
        extra_env={
            "INVOKE_DEVKIT_VSCODE_HOST": "windows",
            "INVOKE_DEVKIT_VSCODE_WSL_DISTRO": "Debian",
        },
    )
    assert done.returncode == 0, done.stdout + done.stderr
    _, tasks = vscode_file(app, "tasks.json")
    start = next(t for t in tasks["tasks"] if t["label"] == "devkit: start services")
    assert start["args"][:2] == ["-d", "Debian"] and "runOptions" not in start


def test_a_byte_order_mark_is_accepted_and_kept(stack, app):
    # VS Code reads a UTF-8 BOM and keeps it; so does the merge (was: "expected '{'").
    (app / ".vscode" / "tasks.json").write_bytes(b"\xef\xbb\xbf" + USER_TASKS.encode())
    done = stack.invoke("vscode.install", "--app-dir", str(app))
    assert done.returncode == 0, done.stdout + done.stderr
    merged = (app / ".vscode" / "tasks.json").read_bytes()
    assert merged.startswith(b"\xef\xbb\xbf// Team tasks")
    labels = [t["label"] for t in json5.loads(merged.decode("utf-8-sig"))["tasks"]]
    assert labels == ["lint", "pytest", "devkit: start services", "devkit: stop services"]


def test_a_file_it_cannot_merge_leaves_the_directory_untouched(stack, app):
    # Was: the hook (devkit-services.sh) was installed before the merge failed.
    (app / ".vscode" / "launch.json").write_text(
        '{"configurations": [], "x": ' + "[" * 5000 + "]" * 5000 + "}"
    )
    before = sorted(p.name for p in (app / ".vscode").iterdir())
    failed = stack.invoke("vscode.install", "--app-dir", str(app))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    line_with(failed.stderr, "launch.json", "200 levels")
    assert "Traceback" not in failed.stdout + failed.stderr
    assert sorted(p.name for p in (app / ".vscode").iterdir()) == before


def test_on_a_terminal_install_counts_what_it_changed(stack, app):
    # Ansible colours its recap when ANSIBLE_FORCE_COLOR is set (a user's shell may set it):
    # the count stays right (was: "already up to date (0 changed)" after changing both files).
    colour = {"ANSIBLE_FORCE_COLOR": "1"}
    shown, code = stack.on_terminal("vscode.install", "--app-dir", str(app), extra_env=colour)
    assert code == 0, shown[-3000:]
    counted = re.search(r"updated \((\d+) changed\)", shown)
    assert counted and int(counted[1]) >= 2, shown[-2000:]
    shown, code = stack.on_terminal("vscode.install", "--app-dir", str(app), extra_env=colour)
    assert code == 0 and "already up to date (0 changed)" in shown, shown[-2000:]
