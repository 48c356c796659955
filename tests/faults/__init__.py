"""Fault tests: real `coursereg serve` / `coursereg worker` processes against a PostgreSQL and
a Redis of their own (private servers on free ports, which the tests stop, kill and empty),
under a rush of concurrent clients, each test ending with the five invariants of DESIGN.md."""
