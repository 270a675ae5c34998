"""What `devkit db.pull` runs on the server: `devkit db.pull.source`, the rules on stdin, the
kit's backup of this machine's stack (devkit/backup/dump.py) masked in the server's own COPY
(masks.py) and cut to the subset (subset.py), on stdout. The masking key is the server's
(key_path: provision writes it from the inventory's vault) and never leaves it.

The server's errors reach the laptop as one line: a PostgreSQL error is named by its code and
its primary message only (its DETAIL and CONTEXT may quote a row's values)."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from devkit.errors import DevkitError
from devkit.paths import state_dir

KEY_FILE = "pull.key"
MIN_KEY = 16


class PullError(DevkitError):
    """A pull could not be made; nothing was changed."""


def key_path() -> Path:
    return state_dir() / KEY_FILE


def server_key_path(home: str = "/root") -> str:
    """Where provision writes the key on a server (site.yml's filter): the state directory of
    the user the server's kit runs as (root: provision's become, db.pull's sudo)."""
    from devkit.paths import home_state_dir

    return str(home_state_dir(Path(home)) / KEY_FILE)


def read_key() -> bytes:
    """The server's masking key: a file only its owner reads, at least 16 bytes."""
    path = key_path()
    fix = (
        "put a key in the inventory's vault as devkit_pull_key (e.g. `openssl rand -hex 32`) and "
        "provision the host"
    )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise PullError(f"no masking key on this server ({path})", fix) from None
    except OSError as exc:
        raise PullError(f"cannot read the masking key {path}: {exc.strerror}", fix) from None
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if stat.S_IMODE(mode) & 0o077:
            raise PullError(
                f"the masking key {path} can be read by others (mode {stat.S_IMODE(mode):o})",
                f"chmod 600 {path}",
            )
        key = file.read().strip()
    if len(key) < MIN_KEY:
        raise PullError(f"the masking key {path} is shorter than {MIN_KEY} bytes", fix)
    return key


def selector(rules, key: bytes):
    """The backup's Selection for RULES (devkit/backup/dump.py), chosen in its snapshot."""
    from devkit.backup.catalog import foreign_keys
    from devkit.backup.readers import Selection
    from devkit.pull import masks, subset

    def select(cur, tables) -> Selection:
        keys = foreign_keys(cur)
        plan = masks.plan(cur, tables, keys, rules)
        rows = subset.choose(cur, tables, keys, rules) if rules.subset else {}
        return Selection(
            session=(masks.key_statement(key),),
            computed=plan.expressions,
            rows=rows,
            leader_only=bool(rules.subset),
            prefix=masks.PADS,
            joins=plan.joins,
        )

    return select


def serve(config: Mapping[str, Any], rules_text: str, out: BinaryIO) -> None:
    """The masked backup of this machine's stack, written to OUT (see the module)."""
    import psycopg2

    from devkit.backup.dump import create_backup
    from devkit.backup.target import stack_target
    from devkit.envfile import load_stack
    from devkit.pull.rules import from_json

    rules = from_json(rules_text)
    key = read_key()
    stack = load_stack(config)
    # The file goes to OUT as the tables are read (the laptop loads while the server reads);
    # the directory holds only the tables' spools.
    with tempfile.TemporaryDirectory(prefix="devkit-pull-") as work:
        try:
            create_backup(
                stack_target(stack.values), Path(work), select=selector(rules, key), stream=out
            )
        except psycopg2.Error as exc:
            primary = (exc.diag.message_primary or type(exc).__name__).strip().splitlines()[0]
            raise PullError(
                f"reading the database on the server failed ({exc.pgcode or 'no code'}: {primary[:200]})",
                "check the rules (a fixed value must fit its column), then pull again",
            ) from None
