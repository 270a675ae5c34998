"""The documents show only commands the kit has: every task and flag in README.md and the
Japanese guide exists with that spelling, and every command in them parses with Invoke's own
parser against the kit's namespace (what `devkit` and `invoke` run)."""

from __future__ import annotations

import re
import shlex
from functools import cache
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", ROOT / "docs" / "ja" / "README.md"]
# The programs that run the kit's tasks, as the documents write them (`scripts/devkit`,
# `.venv/bin/invoke` and `/opt/devkit/.venv/bin/invoke` included).
KIT_PROGRAMS = {"invoke", "devkit"}
# Shown beside the kit's own flags, never as a flag of one of its tasks: what they belong to.
OTHER_TOOLS_FLAGS = {
    "--no-install-recommends": "apt-get",
    "--set-version": "wsl.exe",
    "--shutdown": "wsl.exe",
    "--terminate": "wsl.exe",
    "--cd": "wsl.exe",
    "--exec": "wsl.exe",
    "-d": "wsl.exe",
    "--volumes": "docker compose down",
    "-v": "docker compose down",
    "-EncodedCommand": "powershell.exe",
    "--autogenerate": "alembic revision",
    "-m": "alembic revision",
    "-1": "alembic downgrade",
    "--privileged": "docker run",
    "--cap-add": "docker run",
    "--cap-drop": "docker run",
    "--cgroupns": "docker run",
    "--tmpfs": "docker run",
    "-C": "ssh",
    "--subprocesses": "py-spy",
    "--vault-password-file": "ansible-playbook",
    "--ask-vault-pass": "ansible-playbook",
    "--limit": "ansible-playbook",
    "--check": "ansible-playbook",
    "--diff": "ansible-playbook",
    "-n": "pytest-xdist",
    "--no-loadscope-reorder": "pytest-xdist",
    "--pull": "docker compose up",
    "--timestamps": "docker compose logs",
    "--clean": "pg_restore",
    "-gw1": "pytest-xdist's worker name",
}
REDIRECTS = {"<", ">", ">>", ">&", "<&", "&>", "2>", "2>&1"}


@cache
def kit():
    """The namespace, its parser contexts, and the flags before the task: `devkit`'s (`--help`,
    `--list` …) and `invoke`'s, which also has the ones that find tasks.py (`--search-root` …)."""
    from invoke import Program

    from devkit.tasks import namespace

    ns = namespace()
    devkit = Program(namespace=ns, name="devkit", binary="devkit").core_args()
    invoke = [*Program().core_args(), *Program().task_args()]
    return ns, ns.to_contexts(), {"devkit": devkit, "invoke": invoke}


@cache
def task_called() -> dict[str, str]:
    """Each name a task is called by (its own, and a collection's name for its default task),
    with the task's own name."""
    ns = kit()[0]
    return {called: name for name, aliases in ns.task_names.items() for called in (name, *aliases)}


def parse(args: list[str], program: str = "devkit") -> None:
    """`PROGRAM ARGS` parsed as Invoke's Program does (raises invoke's ParseError): its core flags
    first (`--help TASK` names a task), then the tasks and their flags, against the namespace."""
    from invoke.exceptions import ParseError
    from invoke.parser import Parser, ParserContext

    _, contexts, before = kit()
    core = Parser(initial=ParserContext(args=before[program]), ignore_unknown=True)
    try:
        parsed = core.parse_argv(args)
        tasks = Parser(initial=ParserContext(args=before[program]), contexts=contexts)
        tasks.parse_argv(parsed.unparsed)
    except ValueError:  # a placeholder (N) for a number: the flag exists and takes a value
        numbers = [("1" if re.fullmatch(r"[A-Z]+", arg) else arg) for arg in args]
        if numbers == args:
            raise
        return parse(numbers, program)
    asked = parsed[0].args["help"].value
    if isinstance(asked, str) and asked not in task_called():
        raise ParseError(f"--help {asked}: no such task")


def snippets(text: str) -> list[tuple[int, str]]:
    """(line number, shell text) of every fenced line (continuations joined) and inline span."""
    found, fence, pending = [], None, ""
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fence = None if fence is not None else line.strip("` ")
            continue
        if fence is not None:
            if fence not in ("bash", "sh", "console", "powershell", "shell"):  # not a tree
                continue
            pending += line
            if pending.endswith("\\"):
                pending = pending[:-1] + " "
                continue
            found.append((number, pending))
            pending = ""
            continue
        for span in re.findall(r"`([^`]+)`", line.replace("\\|", "|")):
            found.append((number, span))
    return found


def commands(shell: str) -> list[list[str]]:
    """The simple commands in SHELL, each as its words: split at `&&`, `||`, `|`, `;`, with
    redirections, `VAR=value` prefixes, `sudo`/`time`, comments, the documents' placeholders
    (`…`, `[--flag]`) and quotes taken off."""
    shell = re.sub(r"(?<=\S)…|…(?=\S)", "x", shell)  # backup_….dump: one word
    shell = shell.replace("[", " ").replace("]", " ").replace("…", " ")
    lexer = shlex.shlex(shell, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:  # an unclosed quote: prose, not a command
        return []
    result, current, skip = [], [], False
    for word in words:
        if skip:
            skip = False
            continue
        if word in ("&&", "||", "|", ";", "&", "(", ")"):
            result.append(current)
            current = []
        elif word in REDIRECTS or re.fullmatch(r"\d?[<>]+&?", word):
            skip = True
            if current and current[-1].isdigit():
                current.pop()
        elif word != "...":
            current.append(word)
    result.append(current)
    for command in result:
        while command and (
            re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", command[0]) or command[0] in ("sudo", "time")
        ):
            command.pop(0)
    return [command for command in result if command]


def kit_commands(span: str) -> list[tuple[str, list[str]]]:
    """The kit's commands in SPAN as (program, the arguments after it): `devkit ARGS`,
    `invoke ARGS`, or a span that starts with a task's name (`db.restore FILE --dry-run`)."""
    found = []
    for command in commands(span):
        program = command[0].rsplit("/", 1)[-1]
        if program in KIT_PROGRAMS:
            found.append((program, command[1:]))
        elif command[0] in task_called() or re.fullmatch(
            r"(db|redis|images|vscode)\.[\w-]+", command[0]
        ):
            found.append(("devkit", command))
    return found


def all_kit_commands(document: Path) -> list[tuple[int, str, list[str]]]:
    return [
        (number, program, args)
        for number, span in snippets(document.read_text())
        for program, args in kit_commands(span)
    ]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_command_in_the_document_parses_with_invokes_parser(document):
    from invoke.exceptions import ParseError

    found = all_kit_commands(document)
    assert len(found) > 40, "the extractor finds the documents' commands"
    wrong = []
    for number, program, args in found:
        if len(args) == 1 and args[0] in task_called():
            continue  # the task named in prose, not a command to type
        try:
            parse(args, program)
        except ParseError as exc:
            wrong.append(f"{document.name}:{number}: {program} {' '.join(args)}: {exc}")
    assert wrong == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_flag_in_the_document_is_a_flag_the_kit_or_a_named_tool_has(document):
    from invoke.parser import ParserContext

    _, contexts, before = kit()
    flags = {
        name
        for context in [*contexts, ParserContext(args=before["invoke"])]
        for name in context.flag_names()
    }
    wrong = []
    for number, span in snippets(document.read_text()):
        word = span.strip()
        flag = re.fullmatch(r"--?[A-Za-z][\w-]*", word)
        if flag and word not in flags and word not in OTHER_TOOLS_FLAGS:
            wrong.append(f"{document.name}:{number}: {word}")
    assert wrong == []


def test_both_documents_show_every_task():
    """README.md and the Japanese guide cover the same tasks: each shows every one of them (by its
    name, or by the name of the collection whose default it is: `db.snapshot`)."""
    ns = kit()[0]
    for document in DOCUMENTS:
        shown = {
            task_called()[args[0]]
            for _, _, args in all_kit_commands(document)
            if args and args[0] in task_called()
        }
        assert sorted(set(ns.task_names) - shown) == [], document.name


@pytest.mark.parametrize(
    "span, expected",
    [
        ("invoke db.restore FILE --dry-run", [("invoke", ["db.restore", "FILE", "--dry-run"])]),
        ("cd ~/myapp && devkit setup", [("devkit", ["setup"])]),
        ("INVOKE_DEVKIT_POSTGRES_PORT=5433 devkit setup", [("devkit", ["setup"])]),
        ("invoke db.psql < file.sql", [("invoke", ["db.psql"])]),
        ("invoke db.list | head -3", [("invoke", ["db.list"])]),
        (
            "invoke logs --service postgres [--follow] [--tail 100]",
            [("invoke", ["logs", "--service", "postgres", "--follow", "--tail", "100"])],
        ),
        ("db.restore-s3 NAME", [("devkit", ["db.restore-s3", "NAME"])]),
        (
            "invoke db.restore backup_….dump --yes",
            [("invoke", ["db.restore", "backup_x.dump", "--yes"])],
        ),
        ("docker compose stop postgres", []),
        ("scripts/devkit test --quick  # comment", [("devkit", ["test", "--quick"])]),
        (
            "/opt/devkit/.venv/bin/invoke --search-root /opt/devkit status",
            [("invoke", ["--search-root", "/opt/devkit", "status"])],
        ),
    ],
)
def test_the_extractor_finds_the_kits_commands(span, expected):
    assert kit_commands(span) == expected


@pytest.mark.parametrize(
    "args",
    [
        ["db.restor", "FILE"],
        ["down", "--servce", "redis"],
        ["db.restore", "A", "B"],
        ["logs", "--tail"],
    ],
)
def test_a_misspelt_command_does_not_parse(args):
    from invoke.exceptions import ParseError

    with pytest.raises(ParseError):
        parse(args)


# Every command of the team's old hand-written guide 「データベース基礎」 (what the Japanese guide's
# readers did by hand until now), as it wrote them.
OLD_GUIDE_COMMANDS = [
    "start-postgres.sh",
    "docker ps | grep postgres",
    "docker compose stop postgres",
    "docker compose start postgres",
    "docker compose restart postgres",
    "docker compose logs postgres",
    "docker compose exec postgres psql -U postgres -d app_db",
    "\\dt",
    "\\d sample_users",
    "SELECT * FROM sample_users;",
    "\\q",
    "init_db",
    "pg_dump -U postgres app_db",
    "psql -U postgres -d app_db < backup_20251016.sql",
    "docker compose down -v",
    "docker compose exec redis redis-cli ping",
    "docker compose exec redis redis-cli",
    "KEYS *",
    "GET your_key",
    "DEL your_key",
    "FLUSHALL",
    "EXIT",
    "docker compose stop redis",
    "docker compose start redis",
    "docker compose restart redis",
    "docker compose logs redis",
    "netstat -ano | findstr :5432",
    "sudo lsof -i :5432",
    "sudo service docker status",
    "sudo service docker start",
]


def test_the_japanese_guide_maps_every_command_of_the_old_guide_to_the_kit():
    """Each old command stands in a table row of the guide beside the kit's command for it."""
    rows = [
        line.replace("\\|", "|")
        for line in (ROOT / "docs" / "ja" / "README.md").read_text().splitlines()
        if line.startswith("|")
    ]
    missing = [
        old
        for old in OLD_GUIDE_COMMANDS
        if not any(old in row and "`devkit " in row for row in rows)
    ]
    assert missing == []


def test_both_documents_list_every_setting():
    from devkit.settings.table import DEFAULTS

    for document in DOCUMENTS:
        text = document.read_text()
        assert [name for name in DEFAULTS if f"`{name}`" not in text] == [], document.name


def test_every_tasks_summary_is_one_whole_sentence():
    """`devkit --list` shows a docstring's first line: one that goes on in the next line was
    cut mid-sentence there."""
    from devkit.tasks import namespace

    def tasks(collection, prefix=""):
        for name, task in collection.tasks.items():
            yield prefix + name, (task.__doc__ or "").strip().splitlines()
        for name, sub in collection.collections.items():
            yield from tasks(sub, f"{prefix}{name}.")

    cut = [
        name
        for name, lines in tasks(namespace())
        if not lines or not lines[0].endswith((".", ")")) or (len(lines) > 1 and lines[1].strip())
    ]
    assert cut == []
