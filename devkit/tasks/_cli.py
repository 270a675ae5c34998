"""What every task module shares: settings from Invoke's config, and errors as exit messages."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from invoke import Exit

from devkit.errors import DevkitError

if TYPE_CHECKING:
    from devkit.settings import Settings


def settings_of(c: Any) -> Settings:
    from devkit.settings import load_settings

    return load_settings(c.config.devkit)


def reports_errors(body: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a DevkitError into Invoke's Exit: a one-line cause, a fix, a non-zero code."""

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return body(*args, **kwargs)
        except DevkitError as exc:
            raise Exit(exc.render(), code=exc.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None

    return wrapper


def confirm(yes: bool, action: str, question: str) -> None:
    """Ask on a terminal; without one, refuse unless --yes was given."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise Exit(f"error: {action} and no terminal is here to confirm\n  fix: add --yes", code=2)
    answer = input(f"{question} [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise Exit("cancelled; nothing changed", code=1)
