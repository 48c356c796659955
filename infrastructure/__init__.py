"""Adapters (Postgres, Redis), settings, auth, the ASGI app and the composition root."""
