"""Stream consumers that persist the seat scripts' changes into Postgres."""
