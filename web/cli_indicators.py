"""`gridflow indicators ...`: recompute the indicator rollup from the case records, and the
subtree totals from the rollup, and prove them equal to the incremental ones (`--check` changes
nothing and fails on any difference)."""
from __future__ import annotations

import sys

import click


def register(main: click.Group) -> None:
    @main.group("indicators")
    def indicators_group() -> None:
        """Indicator rollup (考核指标汇总)."""

    @indicators_group.command("rebuild")
    @click.option("--check", is_flag=True, help="Only compare; exit 1 if the rollup differs from the records.")
    @click.option("--limit", default=50, show_default=True, help="Print at most this many differences.")
    @click.pass_context
    def rebuild_cmd(ctx: click.Context, check: bool, limit: int) -> None:
        """Recompute indicator_rollup from case_record and dispute_case, and indicator_total from
        indicator_rollup, and compare each with the stored one."""
        from grid.cases import rollups

        from .cli import _services

        svc = _services(ctx)
        base, totals = rollups.rebuild_all(svc, check=check)
        for (unit, day, category, level, measure), have, want in base[:limit]:
            click.echo(f"{unit} {day} {category} {level or '-'} {measure}: stored {have}, records say {want}")
        for (scope, bucket, start, category, level, measure), have, want in totals[:max(0, limit - len(base))]:
            click.echo(f"total {scope} {bucket}:{start} {category} {level or '-'} {measure}: "
                       f"stored {have}, rollup says {want}")
        shown = min(limit, len(base)) + min(max(0, limit - len(base)), len(totals))
        if len(base) + len(totals) > shown:
            click.echo(f"... and {len(base) + len(totals) - shown} more")
        if not base and not totals:
            click.echo("indicator rollup matches the records (and the subtree totals the rollup)")
        elif check:
            click.echo(f"{len(base) + len(totals)} difference(s) ({len(base)} in the rollup, {len(totals)} in the "
                       "subtree totals)", err=True)
            sys.exit(1)
        else:
            click.echo(f"rebuilt: {len(base)} rollup row(s) and {len(totals)} total row(s) corrected")
