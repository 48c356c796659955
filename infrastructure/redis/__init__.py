"""Redis adapters: seat scripts, streams, idempotency, the student cache, pub/sub."""
