"""`gridflow indicators ...`: recompute the indicator rollup from the case records and prove it
equal to the incremental one (`--check` changes nothing and fails on any difference)."""
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
        """Recompute the rollup from case_record and dispute_case and compare with the stored one."""
        from grid.cases import rollup

        from .cli import _services

        svc = _services(ctx)
        diffs = rollup.rebuild_all(svc, check=check)
        for (unit, day, category, level, measure), have, want in diffs[:limit]:
            click.echo(f"{unit} {day} {category} {level or '-'} {measure}: stored {have}, records say {want}")
        if len(diffs) > limit:
            click.echo(f"... and {len(diffs) - limit} more")
        if not diffs:
            click.echo("indicator rollup matches the records")
        elif check:
            click.echo(f"{len(diffs)} difference(s)", err=True)
            sys.exit(1)
        else:
            click.echo(f"rebuilt: {len(diffs)} row(s) corrected")
