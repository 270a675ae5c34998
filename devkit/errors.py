"""The kit's errors: each carries a one-line cause and a fix hint, shown by the task layer."""

import os

# Set by the VS Code start hook (.vscode/devkit-services.sh): error lines then read
# `devkit: error: CAUSE` and `devkit: fix: FIX`, the form its task's problem matcher turns into
# an error marker (VS Code then does not start the debugger after a failed start).
MARKED = "DEVKIT_MARK_ERRORS"


def error_text(cause: str, hint: str = "") -> str:
    """A failure as the kit prints it: `error: CAUSE`, then `  fix: HINT` when there is one."""
    if os.environ.get(MARKED):
        return f"devkit: error: {cause}" + (f"\ndevkit: fix: {hint}" if hint else "")
    return f"error: {cause}" + (f"\n  fix: {hint}" if hint else "")


class DevkitError(Exception):
    """A failure the user can act on."""

    exit_code = 1

    def __init__(self, cause: str, hint: str = "") -> None:
        super().__init__(cause)
        self.cause = cause
        self.hint = hint

    def render(self) -> str:
        return error_text(self.cause, self.hint)


class SettingsError(DevkitError):
    """A settings value is invalid."""

    exit_code = 2


class BadArgument(DevkitError):
    """A task was given a flag or argument it cannot take."""

    exit_code = 2


class Cancelled(DevkitError):
    """The user answered no (or no one could be asked); nothing was changed."""

    def render(self) -> str:
        return self.cause


class ChecksFailed(DevkitError):
    """Checks ran and some failed; each printed its own cause and fix above."""


class SetupRequired(DevkitError):
    """The machine or the app has not been set up (or settings changed since)."""


class DockerUnavailable(DevkitError):
    """The Docker CLI, the daemon or the Compose plugin cannot be used."""


class DaemonDown(DockerUnavailable):
    """The Docker daemon does not answer."""


class DockerForbidden(DockerUnavailable):
    """The daemon runs but refuses this user (not in the docker group yet)."""


class PortInUse(DevkitError):
    """A port the stack publishes is held by another process."""


class ImageMissing(DevkitError):
    """A service image is not present and cannot be pulled."""


class NotReady(DevkitError):
    """A server did not accept authenticated connections in time."""


class DatabaseClosed(NotReady):
    """The app's database refuses connections (ALLOW_CONNECTIONS false): a snapshot command
    closes it while it copies, and one that was killed leaves it closed."""


class DataConflict(DevkitError):
    """Going on would make existing data unreachable."""


class CommandFailed(DevkitError):
    """An external command (docker compose, ansible-playbook) failed."""
