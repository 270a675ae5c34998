import gzip
import json
import os
import re
import time
from datetime import UTC, datetime

import pytest

from devkit.backup.catalog import load_order
from devkit.backup.fileformat import BackupWriter, CorruptBackup
from devkit.backup.files import plan_prune
from devkit.backup.models import BackupMetadata
from devkit.backup.reader import BackupReader, verify

pytestmark = pytest.mark.unit

META = BackupMetadata(
    timestamp=datetime(2025, 11, 1, tzinfo=UTC),
    migration_version="0aa2",
    database_name="db",
    database_host="h",
)


def write(directory, tables):
    writer = BackupWriter(directory, META)
    for name, rows in tables.items():
        writer.begin_table(name, ["a", "b"], ["integer", "text"])
        writer.write_rows(rows)
        writer.end_table()
    return writer.finish()


def test_written_file_reads_back_row_by_row(tmp_path):
    path = write(tmp_path, {"public.t": ["1\tx", "2\ty\\n"], "public.empty": []})
    assert path.name == "backup_20251101_000000.backup.gz"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with BackupReader(path) as reader:
        assert reader.streamed and reader.metadata.migration_version == "0aa2"
        got = {t.name: list(t.rows()) for t in reader.tables()}
    assert got == {"public.t": ["1\tx", "2\ty\\n"], "public.empty": []}
    assert verify(path).tables == {"public.t": 2, "public.empty": 0}


def test_a_database_without_tables_makes_a_readable_backup(tmp_path):
    path = write(tmp_path, {})
    assert verify(path).tables == {}


def test_an_aborted_write_leaves_nothing_under_a_backup_name(tmp_path):
    writer = BackupWriter(tmp_path, META)
    writer.begin_table("public.t", ["a"], ["integer"])
    writer.write_rows(["1"])
    writer.abort()
    # What stays is the directory's .gitignore (backups are never committed).
    assert [path.name for path in tmp_path.iterdir()] == [".gitignore"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda text: text.replace("2\ty", "3\ty"), r"SHA-256"),
        (lambda text: text.replace('"row_count": 2', '"row_count": 5'), "header says 5"),
        (lambda text: text[: text.index("2\ty") + 2], r"truncated|damaged"),
    ],
    ids=["changed-row", "wrong-count", "truncated"],
)
def test_damage_is_detected(tmp_path, damage, message):
    path = write(tmp_path, {"public.t": ["1\tx", "2\ty"]})
    path.write_bytes(gzip.compress(damage(gzip.decompress(path.read_bytes()).decode()).encode()))
    with pytest.raises(CorruptBackup, match=message):
        verify(path)


def test_not_gzip_is_a_clear_error(tmp_path):
    path = tmp_path / "backup_bad.backup.gz"
    path.write_text("plain text")
    with pytest.raises(CorruptBackup, match="not a readable gzip file"):
        verify(path)


def test_load_order_puts_parents_first_and_keeps_cycles():
    edges = [
        ("public.child", "public.parent"),
        ("public.grandchild", "public.child"),
        ("a.x", "a.y"),
        ("a.y", "a.x"),
    ]
    order = load_order(["a.x", "a.y", "public.child", "public.grandchild", "public.parent"], edges)
    assert (
        order.index("public.parent")
        < order.index("public.child")
        < order.index("public.grandchild")
    )
    assert set(order) == {"a.x", "a.y", "public.child", "public.grandchild", "public.parent"}


def test_prune_keeps_the_newest_intact_backup_and_removes_old_partials(tmp_path):
    now = time.time()
    names = {
        "backup_1.backup.gz": 30,
        "backup_2.backup.gz": 20,
        "backup_3.backup.gz": 10,
        "backup_4.backup.gz": 1,
    }
    for name, age_days in names.items():
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (now - age_days * 86400, now - age_days * 86400))
    old_partial = tmp_path / ".backup_5.backup.gz.partial"
    fresh_partial = tmp_path / ".backup_6.backup.gz.partial"
    for p, age in ((old_partial, 7200), (fresh_partial, 10)):
        p.write_bytes(b"x")
        os.utime(p, (now - age, now - age))
    # The two newest are damaged: the newest intact one (20 days old) must survive a 7-day retention.
    intact = {"backup_1.backup.gz", "backup_2.backup.gz"}
    plan = plan_prune(tmp_path, 7, lambda p: p.name in intact, now=now)
    assert plan.kept_newest_verified.name == "backup_2.backup.gz"
    assert sorted(p.name for p in plan.delete) == [
        ".backup_5.backup.gz.partial",
        "backup_1.backup.gz",
        "backup_3.backup.gz",
    ]


def test_two_backups_of_the_same_second_each_get_a_file_of_their_own(tmp_path):
    """Two writers started in the same second (same metadata time): each its own partial file
    and its own name, each file holding its own rows (was: one partial file, opened with O_TRUNC,
    shared by both)."""
    first, second = BackupWriter(tmp_path, META), BackupWriter(tmp_path, META)
    assert first.partial != second.partial
    for writer, row in ((first, "1\tfirst"), (second, "2\tsecond")):
        writer.begin_table("public.t", ["a", "b"], ["integer", "text"])
        writer.write_rows([row])
        writer.end_table()
    paths = [second.finish(), first.finish()]
    assert [p.name for p in sorted(paths)] == [
        "backup_20251101_000000.backup.gz",
        "backup_20251101_000000_2.backup.gz",
    ]
    with BackupReader(paths[1]) as reader:
        assert [list(t.rows()) for t in reader.tables()] == [["1\tfirst"]]
    with BackupReader(paths[0]) as reader:
        assert [list(t.rows()) for t in reader.tables()] == [["2\tsecond"]]


def test_a_link_at_the_partial_name_is_never_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / ".backup_20251101_000000.backup.gz.partial").symlink_to(victim)
    path = write(tmp_path, {"public.t": ["1\tx"]})
    assert path.name == "backup_20251101_000000_2.backup.gz"
    assert victim.read_text() == "keep me"


@pytest.mark.parametrize(
    ("flag", "env", "setting", "message"),
    [
        ("0", None, 7, "--retention-days='0'"),
        ("-3", None, 7, "--retention-days='-3'"),
        ("soon", None, 7, "--retention-days='soon'"),
        (None, "0", 7, "BACKUP_RETENTION_DAYS='0'"),
        (None, "-3", 7, "BACKUP_RETENTION_DAYS='-3'"),
        (None, None, 0, "devkit.backup_retention_days=0"),
    ],
)
def test_retention_below_one_day_is_refused(monkeypatch, flag, env, setting, message):
    from devkit.backup.files import retention_days
    from devkit.errors import SettingsError

    if env is None:
        monkeypatch.delenv("BACKUP_RETENTION_DAYS", raising=False)
    else:
        monkeypatch.setenv("BACKUP_RETENTION_DAYS", env)
    with pytest.raises(SettingsError, match=re.escape(message)):
        retention_days({"backup_retention_days": setting}, flag)


def test_retention_comes_from_the_flag_then_the_environment_then_the_setting(monkeypatch):
    from devkit.backup.files import retention_days

    monkeypatch.setenv("BACKUP_RETENTION_DAYS", "5")
    assert retention_days({"backup_retention_days": 7}, "2") == 2
    assert retention_days({"backup_retention_days": 7}, None) == 5
    monkeypatch.delenv("BACKUP_RETENTION_DAYS")
    assert retention_days({"backup_retention_days": 7}, None) == 7


def _aged(path, days, now):
    os.utime(path, (now - days * 86400, now - days * 86400))


def test_prune_keeps_the_newest_dump_when_every_backup_is_a_dump(tmp_path):
    """pg_dump files count as intact (header and size, without a container); before, none did,
    and every old .dump was deleted, the newest included."""
    from devkit.backup.reader import is_intact

    now = time.time()
    for name, days in (("backup_1.dump", 30), ("backup_2.dump", 20)):
        (tmp_path / name).write_bytes(b"PGDMP" + b"\0" * 4096)
        _aged(tmp_path / name, days, now)
    (tmp_path / "backup_3.dump").write_bytes(b"PGDMP")  # newer, but cut short
    _aged(tmp_path / "backup_3.dump", 10, now)
    plan = plan_prune(tmp_path, 7, lambda p: is_intact(p, None), now=now)
    assert plan.kept_newest_verified.name == "backup_2.dump"
    assert sorted(p.name for p in plan.delete) == ["backup_1.dump", "backup_3.dump"]


def test_prune_goes_on_past_a_damaged_newest_backup(tmp_path):
    """Any failure to verify means 'not intact' (was: a traceback that stopped prune)."""
    from devkit.backup.reader import is_intact

    now = time.time()
    good = write(tmp_path, {"public.t": ["1\tx"]})
    _aged(good, 20, now)
    for name, data in (
        ("backup_20251102_000000.backup.gz", gzip.compress(b'{"metadata": [1, 2]}')),
        ("backup_20251103_000000.backup.gz", b"\x1f\x8b\x08garbage"),
        ("backup_20251104_000000.backup.gz", gzip.compress(b"[" * 100_000)),
    ):
        (tmp_path / name).write_bytes(data)
        _aged(tmp_path / name, 9, now)
    plan = plan_prune(tmp_path, 7, lambda p: is_intact(p, None), now=now)
    assert plan.kept_newest_verified == good
    assert len(plan.delete) == 3 and good not in plan.delete


def test_prune_refuses_a_retention_below_one_day(tmp_path):
    with pytest.raises(ValueError):
        plan_prune(tmp_path, 0, lambda p: True)


@pytest.fixture
def limits():
    """Restores the readers' limits a test changes."""
    from devkit.backup import fileformat

    before = fileformat.LIMITS
    yield fileformat.apply_limits
    fileformat.LIMITS = before


def refused_until_raised(limits, path, setting: str, low: int, high: int, cause: str):
    """verify(path) is refused under `setting` = low with `cause`; its report under high."""
    limits({setting: low})
    with pytest.raises(CorruptBackup, match=cause):
        verify(path)
    limits({setting: high})
    return verify(path)


def test_a_row_longer_than_the_line_limit_is_refused_until_the_setting_allows_it(tmp_path, limits):
    big = "1\t" + "x" * (3 << 20)  # a 3 MiB row
    path = write(tmp_path, {"public.t": ["0\ta", big, "2\tb"]})
    cause = r"is larger than 2 MiB \(devkit.backup_max_line_mb\)"
    report = refused_until_raised(limits, path, "backup_max_line_mb", 2, 4, cause)
    assert report.tables == {"public.t": 3}
    with BackupReader(path) as reader:
        rows = [row for table in reader.tables() for row in table.rows()]
    assert rows[1] == big


def test_a_seed_file_larger_than_the_document_limit_is_refused_until_allowed(tmp_path, limits):
    rows = [[n, "y" * 100] for n in range(20000)]  # about 2.3 MiB of JSON
    path = tmp_path / "seed.backup.gz"
    with gzip.open(path, "wt") as out:
        json.dump(
            {
                "metadata": META.as_json(),
                "tables": {"t": {"columns": ["a", "b"], "data": rows}},
            },
            out,
        )
    cause = r"decompressed file is larger than 1 MiB"
    report = refused_until_raised(limits, path, "backup_max_document_mb", 1, 3, cause)
    assert report.tables == {"t": 20000}
    with BackupReader(path) as reader:
        blocks = [block for table in reader.tables() for block in table.blocks]
    # Handed on in blocks, never the whole table as one text.
    assert len(blocks) > 1 and sum(b.count(b"\n") for b in blocks) == 20000
    assert blocks[-1].endswith(b"]\n") and all(b.endswith(b"],\n") for b in blocks[:-1])


@pytest.mark.parametrize("value", ["0", "lots", "-3", 70000])
def test_bad_limit_settings_are_refused(limits, value):
    from devkit.errors import SettingsError

    with pytest.raises(SettingsError, match="backup_max_line_mb"):
        limits({"backup_max_line_mb": value})


def test_a_row_split_over_many_reads_is_read_in_linear_time(tmp_path, limits):
    """Was: each read of a long row copied all of it again (a 256 MiB row took 58 s)."""
    from devkit.backup import reader

    big = "1\t" + "x" * (24 << 20)
    path = write(tmp_path, {"public.t": [big]})
    limits({"backup_max_line_mb": 32})
    calls = []
    original = reader.BackupReader._gather_line

    def counted(self, *args, **kwargs):
        calls.append(len(self._buf) - self._pos)
        return original(self, *args, **kwargs)

    reader.BackupReader._gather_line = counted
    try:
        assert verify(path).tables == {"public.t": 1}
    finally:
        reader.BackupReader._gather_line = original
    # The row gathered once (its 1 MiB reads joined once), not per read; a call on an empty
    # buffer copies nothing.
    assert len([call for call in calls if call]) <= 2


def test_a_file_still_being_written_reads_to_its_end_and_a_failed_writer_fails_the_read(tmp_path):
    """db.pull loads its copy as it arrives: a reader of a file another writer still fills waits
    at its end (backup/reader.following); the writer's failure reaches the reader."""
    import threading

    from devkit.backup.arriving import following

    whole = write(tmp_path, {"public.t": [f"{n}\trow {n}" for n in range(2000)]}).read_bytes()
    arriving = tmp_path / "arriving.backup.gz"
    arriving.write_bytes(b"")
    finished = threading.Event()

    def writer(cut: int) -> None:
        with arriving.open("ab") as out:
            for start in range(0, cut, 97):  # small pieces, slowly
                out.write(whole[start : min(start + 97, cut)])
                out.flush()
                time.sleep(0.001)
        finished.set()

    def still_writing() -> bool:
        return not finished.is_set()

    thread = threading.Thread(target=writer, args=(len(whole),))
    thread.start()
    with following(arriving, still_writing), BackupReader(arriving) as reader:
        rows = [row for table in reader.tables() for row in table.rows()]
    thread.join()
    assert len(rows) == 2000 and rows[-1] == "1999\trow 1999"

    class ServerFailed(Exception):
        pass

    def failed() -> bool:
        if finished.is_set():
            raise ServerFailed("the server stopped")
        return True

    arriving.write_bytes(b"")
    finished.clear()
    thread = threading.Thread(target=writer, args=(len(whole) // 2,))
    thread.start()
    with pytest.raises(ServerFailed), following(arriving, failed), BackupReader(arriving) as reader:
        for table in reader.tables():
            list(table.rows())
    thread.join()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["1\tx", "\\.", "2\ty"], "damaged after the rows of public.t"),
        (["1\tx\ty"], "a row of public.t is damaged"),
        (["1"], "a row of public.t is damaged"),
    ],
    ids=["end-of-data-inside", "a-tab-too-many", "a-value-missing"],
)
def test_copy_rows_that_are_not_the_tables_are_refused_whatever_the_checksum(
    tmp_path, rows, message
):
    """Format 2 with its SHA-256 intact (written so): a line that would end COPY early and rows
    of the wrong width are refused by verify, so a restore's check before COPY refuses them too."""
    path = write(tmp_path, {"public.t": rows})
    with pytest.raises(CorruptBackup, match=message):
        verify(path)


def test_a_value_holding_a_backslash_and_a_dot_is_a_row_like_any_other(tmp_path):
    # COPY prints a backslash as two: "\\." is a value, never the end-of-data line.
    path = write(tmp_path, {"public.t": ["1\t\\\\.", "2\t\\\\.\\\\."]})
    assert verify(path).tables == {"public.t": 2}
    with BackupReader(path) as reader:
        assert [list(t.rows()) for t in reader.tables()] == [["1\t\\\\.", "2\t\\\\.\\\\."]]
