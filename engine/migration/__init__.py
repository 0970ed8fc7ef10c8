"""Comparing process versions and moving running instances from one version to another.

`Migrator` is the facade; each verb has its module: `compare` (versions for people), `rule`
(the verdict), `plan` (one instance's move in memory), `dryrun`, `execute`, `revert`, `runs`.
"""
from .compare import compare, compare_lines
from .diff import PairDiff
from .dryrun import verdict_lines
from .migrator import Migrator
from .plan import MigrationRefused, Plan
from .selection import Selection

__all__ = ["Migrator", "MigrationRefused", "PairDiff", "Plan", "Selection", "compare", "compare_lines",
           "verdict_lines"]
