"""The contract's types, inputs and enums as data, and the extensions that code errors and
refuse what Strawberry would mishandle. No I/O here: resolvers/ adds the fields that read,
and assembles the Schema (resolvers/root.py)."""
