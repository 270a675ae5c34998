"""Backups as streamed gzip JSON (seed 004's format): create, verify, diff, restore."""
