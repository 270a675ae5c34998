"""What a cluster holds that a lower wal_level would keep from starting (devkit/wal_level.py):
PostgreSQL 16 stops at start-up with `physical replication slot "…" exists, but wal_level <
replica`, `logical replication slot "…" exists, but wal_level < logical` (slot.c,
RestoreSlotFromDisk) and `WAL archival cannot be enabled when wal_level is "minimal"`
(postmaster.c); the first was seen for real on this machine (tests/integration/test_wal_level.py)."""

import pytest

from devkit.wal_level import LEVELS, refusal, senders

pytestmark = pytest.mark.unit

C = "shop-0a1b2c-postgres-1"
OFF = ("archive_mode", "off")


def test_a_cluster_without_slots_or_archiving_starts_at_every_level():
    assert [refusal(level, [OFF], C) for level in LEVELS] == [None, None, None]
    assert [senders(level) for level in LEVELS] == ["0", "10", "10"]


def test_a_physical_slot_needs_replica_and_the_fix_names_the_setting_and_the_drop():
    cause, fix = refusal("minimal", [OFF, ("physical", "standby_1")], C)
    assert cause == (
        "PostgreSQL would not start at wal_level minimal: the physical replication slot "
        '"standby_1" needs replica'
    )
    assert "devkit.postgres_wal_level: replica" in fix
    assert (
        f"docker exec -u postgres {C} psql -c \"SELECT pg_drop_replication_slot('standby_1')\""
        in fix
    )
    assert refusal("replica", [OFF, ("physical", "standby_1")], C) is None


def test_a_logical_slot_needs_logical_and_only_what_needs_more_is_named():
    rows = [("archive_mode", "on"), ("physical", "standby_1"), ("logical", "debezium")]
    cause, fix = refusal("replica", rows, C)
    assert cause.endswith(': the logical replication slot "debezium" needs logical')
    assert "postgres_wal_level: logical" in fix and "standby_1" not in fix
    cause, fix = refusal("minimal", rows, C)
    assert "archive_mode on, the physical replication slot" in cause
    assert cause.endswith("needs logical")
    assert "ALTER SYSTEM RESET archive_mode; SELECT pg_drop_replication_slot('standby_1')" in fix
    assert refusal("logical", rows, C) is None
