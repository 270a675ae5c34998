"""The kit reads .env.local exactly as Compose does: every quoting form below goes through
devkit.envfile.parse_env and through `docker compose config` (the real Compose of this machine),
and both must agree. (Was: `PGPASSWORD=pw1 # note` read as `pw1 # note` by the kit, `pw1` by
Compose.)"""

import json
import subprocess

import pytest

from devkit.envfile import parse_env, subprocess_environ

pytestmark = pytest.mark.docker

# One statement per key; KEY names the form. The environment provides FROM_ENV.
FORMS = {
    "INLINE_COMMENT": "pw1 # note",
    "HASH_IN_VALUE": "pw1#note",
    "TAB_THEN_HASH": "a\t#b",
    "STARTS_WITH_HASH": " #b",
    "DQ_WITH_HASH": '"pw1 # note" # a comment',
    "SQ_WITH_COMMENT": "'pw 1' # c",
    "DQ_ESCAPES": r'"a\nb\"c\\d\te\$f\'g\zh"',
    "SQ_LITERAL": r"'a\nb $HASH_IN_VALUE'",
    "SQ_ESCAPED_QUOTE": r"'it\'s'",
    "SPACED": "  spaced value  ",
    "EXPAND_BRACES": '"${INLINE_COMMENT} x ${HASH_IN_VALUE}"',
    "EXPAND_BARE": "$INLINE_COMMENT",
    "EXPAND_DEFAULT": "${NOT_SET_ANYWHERE:-dflt} x",
    "EXPAND_DASH": "${NOT_SET_ANYWHERE-d2}",
    "EXPAND_PLUS": "${INLINE_COMMENT:+alt}",
    "EXPAND_ENV": "${FROM_ENV}",
    "EXPAND_LATER": "${DEFINED_LATER}",
    "DOLLAR_DOLLAR": "$$x",
    "DQ_DOLLAR_DOLLAR": '"$$x"',
    "UNQUOTED_BACKSLASH": r"a\#b\nc",
    "DQ_MULTILINE": '"multi\nline"',
    "SQ_MULTILINE": "'multi\nline'",
    "EQUALS": "x=y",
    "EMPTY": "",
    "UNICODE": "ünï",
    "URL": "postgresql://app:p%40ss@127.0.0.1:5432/app_db",
    "DEFINED_LATER": "later",
    "DQ_THEN_STATEMENT": '"first" AFTER_QUOTE=second',
    "DQ_THEN_BARE_KEY": '"first" FROM_ENV',
}


def test_every_quoting_form_reads_as_compose_reads_it(tmp_path):
    lines = ["# a comment line", "", "export EXPORTED=yes", "COLON_FORM: yaml style"]
    lines += [f"{key}={value}" for key, value in FORMS.items()]
    env_file = tmp_path / ".env"
    env_file.write_text("\n".join(lines) + "\n")
    keys = [*FORMS, "EXPORTED", "COLON_FORM", "AFTER_QUOTE"]
    compose_file = tmp_path / "compose.yaml"
    compose_file.write_text(
        "services:\n  probe:\n    image: busybox\n    environment:\n"
        + "".join(f"      {key}: ${{{key}-(unset)}}\n" for key in keys)
    )
    environ = subprocess_environ() | {"FROM_ENV": "from the environment"}
    shown = subprocess.run(
        ["docker", "compose", "--env-file", str(env_file), "-f", str(compose_file),
         "config", "--format", "json"],
        env=environ, capture_output=True, text=True, check=True,
    )  # fmt: skip
    # `config` writes a literal $ as $$.
    composed = {
        key: value.replace("$$", "$")
        for key, value in json.loads(shown.stdout)["services"]["probe"]["environment"].items()
    }
    ours = parse_env(env_file.read_text(), environ)
    assert {key: ours.get(key, "(unset)") for key in keys} == composed
    assert composed["INLINE_COMMENT"] == "pw1"  # the case that started it


@pytest.mark.parametrize("statement", ["A='never closed", 'A="x" junk here', "not a pair", "A B=1"])
def test_what_compose_refuses_the_kit_refuses(tmp_path, statement):
    env_file = tmp_path / ".env"
    env_file.write_text(f"OK=1\n{statement}\n")
    compose_file = tmp_path / "compose.yaml"
    compose_file.write_text("services:\n  probe:\n    image: busybox\n")
    composed = subprocess.run(
        ["docker", "compose", "--env-file", str(env_file), "-f", str(compose_file), "config"],
        env=subprocess_environ(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert composed.returncode != 0
    with pytest.raises(ValueError):
        parse_env(env_file.read_text(), {})
