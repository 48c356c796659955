"""The rules of course registration. Standard library only; storage is reached through ports."""
