"""devkit: a developer-environment kit (PostgreSQL 16 + Redis 7 in Docker, Invoke tasks, Ansible roles)."""
