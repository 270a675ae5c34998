"""What every task module shares: settings from Invoke's config, and errors as exit messages."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from invoke import Exit

from devkit.errors import BadArgument, Cancelled, DevkitError

if TYPE_CHECKING:
    from devkit.settings.model import Settings


def settings_of(c: Any) -> Settings:
    from devkit.settings.model import load_settings

    return load_settings(c.config.devkit)


def local_stack(c: Any, task_name: str, other_hint: str = ""):
    """The app's stack, for a task that works on this machine's stack only: refused when
    DATABASE_URL / PG* name another database (`other_hint`: how to reach that one)."""
    from devkit.backup.target import check_local, resolve_target
    from devkit.envfile import load_stack

    stack = load_stack(c.config.devkit)
    check_local(stack, resolve_target(c.config.devkit), task_name, other_hint)
    return stack


def follows_branch(body: Callable[..., Any]) -> Callable[..., Any]:
    """For a task on the app's database or Redis: the checked-out git branch's database is put
    in place first (devkit/branches.py), so that a switch made without the hook (an IDE,
    hooks off) is caught before anything reads or changes the wrong branch's data."""

    @functools.wraps(body)
    def wrapper(c: Any, *args: Any, **kwargs: Any) -> Any:
        from devkit.branches import follow_app

        follow_app(c.config.devkit, say=lambda line: print(line, file=sys.stderr))
        return body(c, *args, **kwargs)

    return wrapper


class Terminated(BaseException):
    """SIGTERM arrived (`kill`, a closed terminal's session, systemd stopping a job)."""


def _terminated(signum: int, frame: Any) -> None:
    raise Terminated


def reports_errors(body: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a DevkitError into Invoke's Exit: a one-line cause, a fix, a non-zero code. SIGTERM
    unwinds the task as Ctrl-C does, so that what it was writing is removed and its transaction
    rolled back (a kill -9 leaves that to the next command)."""

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import signal

        signal.signal(signal.SIGTERM, _terminated)
        try:
            result = body(*args, **kwargs)
            sys.stdout.flush()  # a reader gone by now is a closed pipe here, not at exit
            return result
        except DevkitError as exc:
            raise Exit(exc.render(), code=exc.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None
        except Terminated:
            raise Exit("terminated (SIGTERM); what it was writing was removed", code=143) from None
        except BrokenPipeError:
            stop_writing_to_closed_pipe()
            raise Exit(code=PIPE_CLOSED) from None

    return wrapper


# The exit code of a command whose output's reader went away (`devkit db.list | head -1`), as a
# shell reports a command killed by SIGPIPE (128 + 13).
PIPE_CLOSED = 141


def stop_writing_to_closed_pipe() -> None:
    """The reader of stdout is gone: send the rest of the output, and the interpreter's final
    flush, to /dev/null instead of a BrokenPipeError traceback (Python's documented recipe,
    docs.python.org/3/library/signal.html#note-on-sigpipe). SIGPIPE itself stays ignored: a
    socket closed under the kit (S3, Redis) must stay an error, not kill it silently."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _invoke_cast_failure(traceback: Any) -> tuple[str, str] | None:
    """When Invoke itself failed to turn a value into the type it expects, what the value was
    for: a flag (`--tail abc`: Argument.set_value) or a variable (`INVOKE_DEVKIT_POSTGRES_PORT
    =abc`: Environment.load); "" for any other failure."""
    frames = []
    while traceback is not None:
        frames.append(traceback.tb_frame)
        traceback = traceback.tb_next
    for frame in reversed(frames):
        names = frame.f_code.co_name, frame.f_globals.get("__name__", "")
        if names == ("set_value", "invoke.parser.argument"):
            flag = frame.f_locals["self"].name.replace("_", "-")
            return f"the value given to --{flag}", f"give --{flag} a number (invoke --help TASK)"
        if names == ("load", "invoke.env") and "real_var" in frame.f_locals:
            name = frame.f_locals["real_var"]
            return f"{name} in the environment", f"set {name} to a number, or unset it"
    return None


def _excepthook(kind: type[BaseException], value: BaseException, traceback: Any) -> None:
    if issubclass(kind, BrokenPipeError):
        stop_writing_to_closed_pipe()
        sys.stderr.flush()
        os._exit(PIPE_CLOSED)  # the program is over: Invoke printed what it had
    if issubclass(kind, ValueError) and (found := _invoke_cast_failure(traceback)):
        what, fix = found
        from devkit.errors import error_text

        sys.stderr.write(error_text(f"{what} is not of the expected type ({value})", fix) + "\n")
        sys.exit(2)
    _previous_hook(kind, value, traceback)


_previous_hook = sys.excepthook


def quiet_on_closed_pipe() -> None:
    """Output piped into `head` that Invoke itself prints (`invoke --help TASK | head -1`) ends
    without a traceback too."""
    sys.excepthook = _excepthook


def of_app(stack: Any, what: str = "") -> str:
    """How a question names what it changes: WHAT (default: the app's database) of the app's
    directory and its stack's project, never the database's name alone (app_db is every app's)."""
    return (
        f"{what or stack.pg_database} of the app in {stack.env_file.parent} "
        f"(project {stack.project})"
    )


def confirm(yes: bool, action: str, question: str) -> None:
    """Ask on a terminal; without one, refuse unless --yes was given."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise BadArgument(f"{action} and no terminal is here to confirm", "add --yes")
    answer = input(f"{question} [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise Cancelled("cancelled; nothing changed")
