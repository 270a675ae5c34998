"""The kit's sample app: users, sessions and files, managed by Alembic."""
