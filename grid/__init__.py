"""The grid-governance domain: the organisation tree, staff and their roles, demo data."""
