"""Backups of the app's database as streamed gzip files of COPY text (docs/ARCHITECTURE.md, "Backup" and
"Restore"): the file format, its reader and writer, the row codec, dump, load, diff, local files,
S3, and pg_dump / Redis snapshots beside them."""
