import gzip
import os
import time
from datetime import UTC, datetime

import pytest

from devkit.backup.catalog import load_order
from devkit.backup.fileformat import BackupReader, BackupWriter, CorruptBackup, verify
from devkit.backup.models import BackupMetadata
from devkit.backup.store import plan_prune

pytestmark = pytest.mark.unit

META = BackupMetadata(
    timestamp=datetime(2025, 11, 1, tzinfo=UTC),
    migration_version="0aa2",
    database_name="db",
    database_host="h",
)


def write(path, tables):
    writer = BackupWriter(path, META)
    for name, rows in tables.items():
        writer.begin_table(name, ["a", "b"], ["integer", "text"])
        writer.write_rows(rows)
        writer.end_table()
    return writer.finish()


def test_written_file_reads_back_row_by_row(tmp_path):
    path = write(
        tmp_path / "backup_x.backup.gz", {"public.t": ['[1,"x"]', '[2,"y\\n"]'], "public.empty": []}
    )
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with BackupReader(path) as reader:
        assert reader.streamed and reader.metadata.migration_version == "0aa2"
        got = {t.name: list(t.rows()) for t in reader.tables()}
    assert got == {"public.t": ['[1,"x"]', '[2,"y\\n"]'], "public.empty": []}
    assert verify(path).tables == {"public.t": 2, "public.empty": 0}


def test_a_database_without_tables_makes_a_readable_backup(tmp_path):
    path = write(tmp_path / "backup_e.backup.gz", {})
    assert verify(path).tables == {}


def test_an_aborted_write_leaves_nothing_under_a_backup_name(tmp_path):
    writer = BackupWriter(tmp_path / "backup_y.backup.gz", META)
    writer.begin_table("public.t", ["a"], ["integer"])
    writer.write_rows(["[1]"])
    writer.abort()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda text: text.replace('[2,"y"]', '[3,"y"]'), r"SHA-256"),
        (lambda text: text.replace('"row_count": 2', '"row_count": 5'), "header says 5"),
        (lambda text: text[: len(text) // 2], r"truncated|damaged"),
    ],
    ids=["changed-row", "wrong-count", "truncated"],
)
def test_damage_is_detected(tmp_path, damage, message):
    path = write(tmp_path / "backup_z.backup.gz", {"public.t": ['[1,"x"]', '[2,"y"]']})
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
