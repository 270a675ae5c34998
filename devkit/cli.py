"""The `devkit` command: every task of the kit, from any directory (an Invoke Program; the
console script `scripts/devkit` installs and `setup` links as ~/.local/bin/devkit).

It reads the kit's invoke.yaml and the INVOKE_DEVKIT_* variables as `invoke` in the kit's
directory does, and acts on the app the working directory is in (devkit/app.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from devkit.paths import KIT_ROOT

# Where Invoke looks for configuration besides the namespace's defaults (invoke.config.Config:
# system, user and project files, in each of its file formats).
CONFIG_FILES = [
    Path(prefix).expanduser() / f"{name}.{suffix}"
    for prefix, name in (("/etc", "invoke"), ("~", ".invoke"), (str(KIT_ROOT), "invoke"))
    for suffix in ("yaml", "yml", "json", "py")
]


def defaults_only() -> bool:
    """Whether Invoke would resolve the settings as their defaults: no INVOKE_* variable, no
    config file (the app is then the working directory's: devkit.tasks.defaults)."""
    if any(key.startswith("INVOKE_") for key in os.environ):
        return False
    return not any(path.exists() for path in CONFIG_FILES)


def start_up_early(argv: list[str]) -> None:
    """`devkit up` with the settings all defaults: start the stack's `docker compose up` before
    Invoke is even imported (~0.12 s of start-up), so that its start-up overlaps the daemon's
    work; the task then takes that run over (devkit.lifecycle.adopt). Only when Invoke would
    resolve the same app and settings: defaults only, no flag. Anything wrong (no .env.local,
    drift, a port taken) is left to the task to report."""
    if argv != ["up"] or not defaults_only():
        return
    from devkit.errors import DevkitError
    from devkit.lifecycle import start_up
    from devkit.tasks import defaults

    try:
        start_up(defaults())
    except DevkitError:
        return


def follow_early(argv: list[str]) -> bool:
    """The post-checkout hook's `devkit branches.follow --hook`, which runs at every branch
    checkout, without Invoke (~0.15 s of the switch) when the settings are all defaults; True
    when done. The task (tasks/branches.py) runs the same function."""
    if argv != ["branches.follow", "--hook"] or not defaults_only():
        return False
    from devkit.branches import follow_checkout
    from devkit.errors import DevkitError
    from devkit.tasks import defaults

    try:
        follow_checkout(defaults())
    except DevkitError as exc:  # as the task's reports_errors says it
        sys.stderr.write(exc.render() + "\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    return True


def bad_command(problem: str) -> str:
    """A command line Invoke's parser refused (a misspelt task or flag, a missing argument), as
    the kit reports a bad argument: the cause, where to look, exit 2."""
    import re

    problem = re.sub(  # Invoke names the flag by its repr
        r"Flag <Argument: (\w+)[^>]*> needed value and was not given one!",
        lambda found: f"--{found[1].replace('_', '-')} needs a value",
        problem,
    )
    from devkit.errors import error_text

    fix = "`devkit --list` lists the tasks, `devkit --help TASK` a task's arguments and flags"
    return error_text(problem, fix) + "\n"


def help_first(argv: list[str]) -> list[str]:
    """`devkit TASK ... --help` (or -h) as `devkit --help TASK`: Invoke gives a task's argument
    without a default the next word, whatever it is (`devkit provision --help` said "no
    inventory at --help", `db.restore-s3 --help` "'--help' is not a backup name")."""
    if argv and not argv[0].startswith("-") and any(word in ("--help", "-h") for word in argv):
        return ["--help", argv[0]]
    return argv


def server_job_settings() -> None:
    """On a server: the scheduled backup's destination settings and credentials (its job's env
    file, root's or the job user's only) for the S3 chores typed there (db.list-remote,
    db.restore-s3: was "Unable to locate credentials"), one source with the job. Values already
    in the environment win; a file this user cannot read, or several apps' files, change
    nothing."""
    from devkit.paths import server_name

    if not server_name():
        return
    files = sorted(Path("/etc").glob("devkit-backup-*.env"))
    if len(files) != 1:
        return
    from devkit.dotenv import EnvFileError, read_env_file

    try:
        values = read_env_file(files[0], {})
    except (OSError, EnvFileError):
        return
    for key, value in values.items():
        os.environ.setdefault(key, value)


def stale_environment(root: Path = KIT_ROOT, prefix: str = sys.prefix) -> bool:
    """Whether this runs in the kit's own .venv and the packages there predate pyproject.toml or
    constraints.txt: a `git pull` changed them and `devkit …` was typed from the PATH. The
    digest is scripts/devkit's (sha256 over both files); a .venv scripts/devkit did not make
    (a server's, built by the kit role) is never stale here."""
    venv = root / ".venv"
    try:
        if Path(prefix).resolve() != venv.resolve():
            return False
        installed = (venv / ".devkit-installed").read_text().strip()
        import hashlib

        wanted = hashlib.sha256(
            (root / "pyproject.toml").read_bytes() + (root / "constraints.txt").read_bytes()
        ).hexdigest()
    except OSError:
        return False
    return installed != wanted


def main() -> None:
    if stale_environment():  # scripts/devkit installs them again, then runs this command
        os.execvp("bash", ["bash", str(KIT_ROOT / "scripts" / "devkit"), *sys.argv[1:]])
    sys.argv[1:] = help_first(sys.argv[1:])
    server_job_settings()
    if follow_early(sys.argv[1:]):
        return
    start_up_early(sys.argv[1:])
    from invoke import Program

    from devkit.tasks import namespace

    class DevkitProgram(Program):
        def parse_collection(self) -> None:
            super().parse_collection()
            # As `invoke` does when it finds tasks.py: the kit's invoke.yaml is project config.
            self.config.set_project_location(str(KIT_ROOT))
            self.config.load_project()

        def parse_tasks(self) -> None:
            from invoke.exceptions import ParseError

            try:
                super().parse_tasks()
            except ParseError as exc:  # Invoke would print it alone and exit 1
                sys.stderr.write(bad_command(str(exc)))
                sys.exit(2)

    try:
        DevkitProgram(name="devkit", binary="devkit", namespace=namespace()).run()
    except Exception as exc:
        if "yaml" not in type(exc).__module__.split("."):
            raise
        sys.stderr.write(bad_config_file(exc))
        sys.exit(2)


def bad_config_file(exc: Exception) -> str:
    """A configuration file Invoke read (the kit's invoke.yaml, ~/.invoke.yaml …) that is not
    YAML: which file, where, and why, instead of PyYAML's traceback."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}" if mark else "a file"
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    from devkit.errors import error_text

    fix = (
        "correct that line (devkit settings go under `devkit:`, e.g. `  postgres_port: 5433`), "
        "or move the file away"
    )
    return error_text(f"{where} is not valid YAML ({problem})", fix) + "\n"


if (
    __name__ == "__main__"
):  # the kit role's /usr/local/bin/devkit on servers (no console script there)
    main()
