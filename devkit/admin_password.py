"""The cluster admin's password (devkit/dbroles.py): kept in a private file of the kit's, outside
the app (`admin_env_file`), and sent to the server only as a SCRAM-SHA-256 verifier."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import pwd
import secrets
from pathlib import Path

from devkit.envfile import read_env_file
from devkit.passwords import new_password
from devkit.paths import state_dir

ADMIN_USER = "postgres"
_ITERATIONS = 4096  # PostgreSQL's scram_iterations default


def admin_env_file(project: str, home: Path | None = None, state: Path | None = None) -> Path:
    """Where the admin's password is kept: private to the user who runs the kit, outside the app
    (in STATE, the kit's state directory, when given: the stack role passes the owner's)."""
    return (state or state_dir(home)) / "stacks" / f"{project}.admin.env"


def admin_url(stack, database: str) -> str | None:
    """DATABASE of the stack's server as the kit's admin (a postgresql:// URL); None when the
    admin's password is not kept on this machine (a stack set up by an earlier kit)."""
    from urllib.parse import quote

    password = read_admin_password(stack.project)
    if not password:
        return None
    return (
        f"postgresql://{ADMIN_USER}:{quote(password, safe='')}@{stack.host}:{stack.pg_port}/"
        f"{quote(database, safe='')}"
    )


def read_admin_password(project: str, home: Path | None = None) -> str | None:
    return read_env_file(admin_env_file(project, home)).get("DEVKIT_ADMIN_PASSWORD") or None


def keep_admin_password(path: Path, owner: str) -> tuple[str, bool]:
    """The kept admin password, or a new one written to `path` (0600 from its first byte)."""
    existing = read_env_file(path).get("DEVKIT_ADMIN_PASSWORD")
    if existing:
        return existing, False
    user = pwd.getpwnam(owner)
    for directory in (path.parent.parent.parent, path.parent.parent, path.parent):
        if not directory.exists():
            directory.mkdir(mode=0o700)
            os.chown(directory, user.pw_uid, user.pw_gid)
    password = new_password()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(
            "# The PostgreSQL admin (superuser) of this stack: the kit's restore and repairs.\n"
            f"DEVKIT_ADMIN_USER={ADMIN_USER}\nDEVKIT_ADMIN_PASSWORD={password}\n"
        )
    os.chown(path, user.pw_uid, user.pw_gid)
    return password, True


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = _ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677), computed here
    so that the password itself never reaches the server."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}$"
        f"{b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


def verifier_matches(stored: str | None, password: str) -> bool:
    """Whether a stored SCRAM verifier is the one of `password`."""
    try:
        head, keys = (stored or "").split("$", 2)[1:]
        iterations, salt = head.split(":")
        expected = scram_verifier(password, base64.b64decode(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(expected.split("$", 2)[2], keys)
