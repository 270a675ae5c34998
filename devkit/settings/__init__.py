"""The kit's settings: `table` (every setting, its default and where it goes; plain data, so
tasks.py and everyday tasks start without pydantic) and `model` (their validation)."""
