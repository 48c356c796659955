"""Thin GraphQL and REST entry points: parse input, check who asks, call the domain, map."""
