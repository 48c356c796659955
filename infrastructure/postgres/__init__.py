"""Postgres adapters: the table models, the catalog repository and the change writer."""
