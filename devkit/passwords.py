"""The password policy: what a given password must be (servers' come from the vault), and the
passwords the kit makes. Ansible applies the same policy through the password_problem filter."""

from __future__ import annotations

import re
import secrets

MIN_PASSWORD_LENGTH = 16
# The placeholders of the inventories' vault.yml.example: long enough, and public.
_PLACEHOLDER = "change-me"
# Written unquoted into .env.local, these would be cut, expanded or unescaped by Compose.
_UNSAFE_IN_ENV_FILE = re.compile(r"[\s$#'\"\\]")


def password_problem(password: str) -> str:
    """Why a password may not be used; "" when it may."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"is shorter than {MIN_PASSWORD_LENGTH} characters"
    if _PLACEHOLDER in password.lower():
        return "is still the example's CHANGE-ME placeholder"
    if _UNSAFE_IN_ENV_FILE.search(password):
        return "holds a character an env file reads differently (a blank, $, #, a quote or \\)"
    return ""


def new_password() -> str:
    """32 URL-safe characters (192 bits), within the policy."""
    return secrets.token_urlsafe(24)
