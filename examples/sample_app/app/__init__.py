"""The kit's sample app: the tables of seed 000, managed by Alembic."""
