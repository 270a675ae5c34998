"""The use cases: what a task does, as one library function each that returns a result the task
prints (pipx's commands/). A use case that asks the user first is a `prepare` (checks, changes
nothing) and a `run`; the task asks in between.

- `restore.py`: db.restore, db.restore-s3 (a backup file of any kind, kept first, across
  migration versions); `reset.py`: db.reset; `snapshot_restore.py`: db.snapshot.restore.
- db.migrate and db.downgrade: `devkit.alembic_api.migrate_app` (the database kept first, the
  older automatic snapshots pruned once it succeeded; a MigrationRun).
"""
