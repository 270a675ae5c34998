"""Record the guide's sample sessions from real runs, or check that they still hold.

    .venv/bin/python scripts/transcripts.py           # record: rewrites docs/transcripts/*.md
    .venv/bin/python scripts/transcripts.py --check   # record into a temporary directory and
                                                      # compare (numbers and spacing aside)

One story, as the team lives it (docs/ja/README.md follows it): an app `backend` (a copy of
examples/sample_app) whose data sits in a hand-run `postgres:postgres` container, its tables made
by the app's `init_db` (SQLAlchemy's create_all). The data is moved into the kit's stack, then F5's
start task runs, a backup is taken and restored, and `doctor` finds a stopped service. Every
command runs for real, from the app's directory, as the user types it; the transcripts show what
it printed (the app's directory written as ~/backend). What it starts is removed at the end: the
old container, the stack and its volumes, the directory.

The old container runs the kit's own PostgreSQL 16 image with the official image's variables
(POSTGRES_PASSWORD, POSTGRES_DB): Docker Hub is not reachable everywhere the kit is tested.
"""

from __future__ import annotations

import argparse
import difflib
import getpass
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KIT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(KIT), str(KIT / "tests")]

# Importing the suite's conftest sends what setup remembers and links to a directory of this
# run's (DEVKIT_STATE_FILE, DEVKIT_BIN_DIR: devkit/paths.py), never the user's, nor those of the
# test worker that runs this script (test_transcripts.py): conftest keeps a value it inherits,
# and this run's app, remembered there and then removed, was what that worker's later tests
# found as the last app set up ("the app last set up, /tmp/devkit-transcripts/backend, is gone").
os.environ.pop("DEVKIT_STATE_FILE", None)
os.environ.pop("DEVKIT_BIN_DIR", None)
from conftest import remove_app_stack  # noqa: E402

DOCS = KIT / "docs" / "transcripts"
# A fixed path: the stack's name (directory + a hash of the path) is the same on every run.
WORK = Path("/tmp/devkit-transcripts")
APP = WORK / "backend"
SHOWN_APP = "~/backend"
OLD = "old-postgres"  # the hand-run container's name, as a reader's might be
# The recorder's own old container carries this label: one of the same name without it is a
# user's, and is never stopped or removed.
OLD_LABEL = "io.devkit.transcripts=old-postgres"
DEVKIT = str(Path(sys.executable).with_name("devkit"))


def free_pair_from(port: int) -> int:
    """The first port from PORT on that nothing listens on (the old guide's 5432 when free)."""
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
        port += 1


def users_environ() -> dict[str, str]:
    """A new user's shell: none of the kit's settings in the environment, and ~/.local/bin not
    on PATH yet (setup links the devkit command there and says so), wherever this runs."""
    local_bin = str(Path.home() / ".local" / "bin")
    path = ":".join(d for d in os.environ.get("PATH", "").split(":") if d.rstrip("/") != local_bin)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_DEVKIT_")}
    return {**environ, "PATH": path}


class Recorder:
    def __init__(self) -> None:
        self.pages: dict[str, list[str]] = {}
        self.page = ""

    def start(self, name: str, title: str, intro: str) -> None:
        self.page = name
        self.pages[name] = [f"# {title}", "", intro, "", "```console"]

    def note(self, text: str) -> None:
        self.pages[self.page].append(f"# {text}")

    def run(self, shown: str, argv: list[str], expect: int = 0, env: dict | None = None) -> str:
        """Run ARGV in the app's directory as the user's shell would; record `$ SHOWN` and what
        it printed (stdout and stderr in the order written)."""
        done = subprocess.run(
            argv,
            cwd=APP,
            env={**users_environ(), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=900,
            check=False,
        )
        if done.returncode != expect:
            raise SystemExit(
                f"`{shown}` exited {done.returncode} (expected {expect}):\n{done.stdout}"
            )
        self.pages[self.page] += [f"$ {shown}", *shown_lines(done.stdout)]
        if expect:
            self.pages[self.page].append(f"$ echo $?\n{expect}")
        return done.stdout

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, lines in self.pages.items():
            (directory / f"{name}.md").write_text("\n".join([*lines, "```", ""]))


def shown_lines(output: str) -> list[str]:
    """The output as the transcript shows it: the app's directory and the home directory
    written as a reader's (~), the run's own link directory as a reader's (~/.local/bin), trailing
    spaces off; Ansible's play (the engine, images and stack roles, one line per task) left out
    of setup's output, where its summary follows, and so is the line saying that setup waited
    for another one on this machine (the suite's other worker may be running one)."""
    text = output.replace(str(APP), SHOWN_APP).replace(os.environ["DEVKIT_BIN_DIR"], "~/.local/bin")
    text = text.replace(str(Path.home()), "~")
    lines = [line.rstrip() for line in text.splitlines()]
    if any(line.startswith("PLAY [") for line in lines):
        last = max(
            i for i, line in enumerate(lines) if line.startswith(("PLAY RECAP", "localhost "))
        )
        first = next(i for i, line in enumerate(lines) if line.startswith("PLAY ["))
        lines[first : last + 1] = [
            "(Ansible's play: one line per task of the docker, images and stack roles)"
        ]
    waited = "waiting for another setup on this machine"
    return [line for line in lines if line != "" and not line.startswith(waited)] or []


def postgres_image() -> str:
    """The official PostgreSQL 16 image when this machine has it, else the kit's offline build
    of it (both named in the images role's defaults)."""
    import yaml

    names = yaml.safe_load((KIT / "roles" / "images" / "defaults" / "main.yml").read_text())
    official, local = names["images_postgres_official"], names["images_postgres_local"]
    found = subprocess.run(
        ["docker", "image", "inspect", official], capture_output=True, check=False
    )
    return official if found.returncode == 0 else local


def old_setup() -> int:
    """The old world: the app's code, its hand-written .env.local, and the `postgres:postgres`
    container with the tables init_db made and a few rows. The old container's port."""
    shutil.rmtree(WORK, ignore_errors=True)
    shutil.copytree(
        KIT / "examples" / "sample_app",
        APP,
        ignore=shutil.ignore_patterns(".env.local*", "backups", "__pycache__", ".vscode"),
    )
    port = free_pair_from(5432)
    url = f"postgresql+psycopg2://postgres:postgres@127.0.0.1:{port}/app_db"
    (APP / ".env.local").write_text(
        f"DATABASE_URL=postgresql+asyncpg://postgres:postgres@localhost:{port}/app_db\n"
        "REDIS_URL=redis://localhost:6379/0\n"
        "APP_SECRET_KEY=kept-as-it-was\n"
    )
    remove_old_container()
    subprocess.run(
        ["docker", "run", "-d", "--name", OLD, "--label", OLD_LABEL,
         "-e", "POSTGRES_PASSWORD", "-e", "POSTGRES_DB=app_db",
         "-p", f"127.0.0.1:{port}:5432", postgres_image()],
        env={**os.environ, "POSTGRES_PASSWORD": "postgres"}, capture_output=True, check=True,
    )  # fmt: skip
    sys.path.insert(0, str(APP))
    from app.models import Base, SampleFile, SampleSession, SampleUser
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    engine = create_engine(url)
    for _ in range(120):
        try:
            Base.metadata.create_all(engine)  # the old guide's init_db
            break
        except OperationalError:
            time.sleep(0.5)
    with Session(engine) as session, session.begin():
        for n, name in enumerate(("alice", "bob", "carol"), 1):
            user = SampleUser(email=f"{name}@example.com", username=name, hashed_password="!")
            user.sessions.append(SampleSession(session_id=f"old-session-{n}", title=f"chat {n}"))
            user.files.append(
                SampleFile(
                    filename=f"{name}.txt",
                    content_type="text/plain",
                    size=n * 100,
                    storage_path=f"uploads/{name}.txt",
                )
            )
            session.add(user)
    engine.dispose()
    return port


def record() -> Recorder:
    rec = Recorder()
    cleanup()
    port = old_setup()
    rec.start(
        "01-migrate",
        "From the hand-run container to the kit (旧環境からの移行)",
        "The app's data is in the old `postgres:postgres` container, which still runs. "
        "It is backed up through its URL, the old container is stopped, the kit sets the app up, "
        "and the backup is restored into the kit's database.",
    )
    made = rec.run(
        f"DATABASE_URL=postgresql://postgres:postgres@localhost:{port}/app_db devkit db.backup",
        [DEVKIT, "db.backup"],
        env={"DATABASE_URL": f"postgresql://postgres:postgres@localhost:{port}/app_db"},
    )
    backup = made.strip().splitlines()[-1].replace(str(APP) + "/", "")
    rec.run(f"docker stop {OLD}", ["docker", "stop", OLD])
    rec.run(f"docker update --restart=no {OLD}", ["docker", "update", "--restart=no", OLD])
    rec.run("devkit setup", [DEVKIT, "setup"])
    rec.note("init_db made the old tables, so the old database has no Alembic version:")
    rec.run(
        f"devkit db.restore {backup} --yes --allow-other-version",
        [DEVKIT, "db.restore", backup, "--yes", "--allow-other-version"],
    )
    rec.run(
        'devkit db.psql -c "SELECT username, email FROM sample_users ORDER BY id"',
        [DEVKIT, "db.psql", "-c", "SELECT username, email FROM sample_users ORDER BY id"],
    )
    rec.run("grep -c PASSWORD .env.local", ["grep", "-c", "PASSWORD", ".env.local"])
    rec.run("grep APP_SECRET_KEY .env.local", ["grep", "APP_SECRET_KEY", ".env.local"])

    rec.start(
        "02-f5",
        "F5: VS Code's start task (F5 でデータベースを起動)",
        "What VS Code runs before the debugger starts (`preLaunchTask`: the task "
        '"devkit: start services"), and the task "devkit: stop services". The start task prints '
        "`devkit: ready` once both servers answer, which F5 waits for, then keeps running until "
        "the databases stop.",
    )
    start = subprocess.Popen(
        [str(APP / ".vscode" / "devkit-services.sh"), "start"],
        cwd=APP,
        env=users_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    shown = []
    for line in start.stdout:
        shown.append(line)
        if line.startswith("holding until"):
            break
    rec.pages[rec.page] += ["$ .vscode/devkit-services.sh start", *shown_lines("".join(shown))]
    rec.note(
        "(the start task keeps running; F5 has started the app. Later, from another terminal:)"
    )
    rec.run(
        ".vscode/devkit-services.sh stop", [str(APP / ".vscode" / "devkit-services.sh"), "stop"]
    )
    rest = start.stdout.read()
    if start.wait(timeout=60) != 0:
        raise SystemExit(f"the start task exited {start.returncode}: {rest}")
    rec.note("(and the start task ends:)")
    rec.pages[rec.page] += shown_lines(rest)

    rec.start(
        "03-backup-restore",
        "Back up and restore (バックアップとリストア)",
        "A backup, rows deleted by mistake, what a restore would change, and the restore.",
    )
    rec.run("devkit up", [DEVKIT, "up"])
    made = rec.run("devkit db.backup", [DEVKIT, "db.backup"])
    backup = made.strip().splitlines()[-1].replace(str(APP) + "/", "")
    rec.run(
        "devkit db.psql -c \"DELETE FROM sample_users WHERE username <> 'alice'\"",
        [DEVKIT, "db.psql", "-c", "DELETE FROM sample_users WHERE username <> 'alice'"],
    )
    rec.run(f"devkit db.restore {backup} --dry-run", [DEVKIT, "db.restore", backup, "--dry-run"])
    rec.run(f"devkit db.restore {backup} --yes", [DEVKIT, "db.restore", backup, "--yes"])
    rec.run("devkit db.list", [DEVKIT, "db.list"])

    rec.start(
        "04-doctor",
        "doctor finds a fault (doctor で原因を探す)",
        "Redis is stopped (as `docker compose stop redis` did); `doctor` names it and the fix.",
    )
    rec.run("devkit down --service redis", [DEVKIT, "down", "--service", "redis"])
    rec.run("devkit doctor", [DEVKIT, "doctor"], expect=1)
    rec.run("devkit up", [DEVKIT, "up"])
    return rec


def remove_old_container() -> None:
    """The recorder's old container, if there is one; refuses to go on when a container of that
    name is not the recorder's."""
    found = subprocess.run(
        ["docker", "inspect", "--format", "{{json .Config.Labels}}", OLD],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if found.returncode != 0:
        return
    if OLD_LABEL.replace("=", '":"') not in found.stdout:
        raise SystemExit(f"a container named {OLD} is here and is not the recorder's: left alone")
    subprocess.run(["docker", "rm", "-f", "-v", OLD], capture_output=True, check=False)


def cleanup() -> None:
    """Whatever a recording (also an interrupted one) started: the old container, the stack and
    what the kit keeps for it, the directory."""
    from devkit.vscode_hooks import backup_dir

    remove_old_container()
    shutil.rmtree(backup_dir(APP, getpass.getuser()), ignore_errors=True)
    remove_app_stack(APP)
    shutil.rmtree(WORK, ignore_errors=True)


# What depends on the machine's Docker Engine rather than on the kit: the warning (setup) and the
# check (doctor) about an engine older than 28 (moby#45610), absent where the engine is newer.
# Lines that depend on the machine, not on the kit: Docker's version, and setup's `command:`
# line, which says whether ~/.local/bin is on PATH and whether a devkit of another clone of
# the kit is already there (a developer's own), and which stacks or processes hold 5432/6379.
MACHINE_LINES = re.compile(
    r"moby#45610|^\s*loopback ports\s|^\s*fix: install Docker's own packages|^\s*command: "
    r"|^\s*not \d+/\d+: "  # setup: what holds 5432/6379 on this machine
)


def comparable(text: str) -> list[str]:
    """What must stay the same between two recordings: the words. Numbers (ports, times,
    sizes, dates in file names, versions), a container's health while Docker's first check is
    due (`starting` or `healthy`), and the spacing and rules of tables may differ."""
    lines = [line for line in text.splitlines() if not MACHINE_LINES.search(line)]
    text = re.sub(r"\d+", "0", "\n".join(lines))
    text = re.sub(r"\((starting|healthy)\)", "(health)", text)
    text = re.sub(r"([─━═┄│┃]|-{2,})\1*", r"\1", text)
    return [re.sub(r"\s+", " ", line).strip() for line in text.splitlines()]


def check(recorded: Path) -> list[str]:
    """The differences between the transcripts in docs/ and those just recorded."""
    problems = []
    names = sorted({p.name for p in DOCS.glob("*.md")} | {p.name for p in recorded.glob("*.md")})
    for name in names:
        old, new = DOCS / name, recorded / name
        if not old.exists() or not new.exists():
            problems.append(
                f"{name}: {'not in docs/transcripts' if not old.exists() else 'no longer recorded'}"
            )
            continue
        diff = list(
            difflib.unified_diff(
                comparable(old.read_text()),
                comparable(new.read_text()),
                str(old),
                "recorded",
                lineterm="",
            )
        )
        problems += diff
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of rewriting")
    args = parser.parse_args()
    try:
        rec = record()
    finally:
        cleanup()
    if not args.check:
        rec.write(DOCS)
        print(f"wrote {len(rec.pages)} transcripts in {DOCS.relative_to(KIT)}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        rec.write(Path(tmp))
        problems = check(Path(tmp))
    if problems:
        print("\n".join(problems))
        print("the transcripts no longer match the kit: record them again (scripts/transcripts.py)")
        return 1
    print(f"{len(rec.pages)} transcripts match the kit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
