"""The grid registry: buildings, households, residents and their life events, special-population
flags and their visit schedules, import and export, the demo households.

May import `engine` and `grid.org`; from `grid.cases` only `grid.cases.service.report`, the one
way a visit opens a dispute case (checked by tests/test_layers.py).
"""
