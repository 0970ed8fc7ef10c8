"""The organisation: the five-level unit tree and jurisdiction, staff, roles, passwords, accounts,
the demo city.

May import `engine` only. Must not import `grid.cases` or `grid.registry` (checked by
tests/test_layers.py): cases and the registry build on the organisation, never the reverse.
"""
