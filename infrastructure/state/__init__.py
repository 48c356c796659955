"""Redis rebuilt from PostgreSQL and checked against it: recovery, losses, reconcile."""
