"""Benchmarks run by `make bench-*`; each prints the figures it measured."""
