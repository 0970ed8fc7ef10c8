"""`gridflow registry ...`: import and export the grid registry, fill the demo city with households.

    gridflow registry import FILE [--grid CODE] [--actor NAME] [--dry-run]
    gridflow registry export FILE [--grid CODE] [--format csv|xlsx]
    gridflow registry demo [--size small|full]
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .progress import Progress


def _svc(ctx: click.Context):
    from grid.config import Settings
    from grid.registry import visits
    from grid.services import Services

    root = ctx.find_root()
    if root.obj is None:
        root.obj = Services.build(Settings())
    visits.install(root.obj)
    return root.obj


def register(main: click.Group) -> None:
    @main.group("registry")
    def registry_group() -> None:
        """Grid registry: buildings, households, residents (网格登记)."""

    @registry_group.command("import")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--grid", "grid_code", help="the grid the file is for (rows may leave the grid column out)")
    @click.option("--actor", default="cli", show_default=True, help="who imports (recorded)")
    @click.option("--dry-run", is_flag=True, help="check every row, import nothing")
    @click.option("--max-errors", default=1000, show_default=True, help="stop listing errors after this many")
    @click.pass_context
    def import_cmd(ctx, file: Path, grid_code, actor, dry_run, max_errors) -> None:
        """Import a CSV or XLSX file of buildings, households and residents. Every row is checked
        first; a file with any error imports nothing and lists each bad row."""
        from grid.registry import writer

        svc = _svc(ctx)
        try:
            res = writer.import_file(svc, file, actor=actor, grid_code=grid_code, dry_run=dry_run,
                                     progress=Progress("import"), max_errors=max_errors)
        except ValueError as e:
            raise click.UsageError(str(e)) from e
        if not res.ok:
            click.echo(f"{file}: {res.summary()}", err=True)
            for e in res.errors:
                click.echo(f"  line {e.line}, {e.column}: {e.reason}", err=True)
            if res.error_count > len(res.errors):
                click.echo(f"  ... and {res.error_count - len(res.errors)} more", err=True)
            sys.exit(1)
        rate = res.rows / res.seconds if res.seconds else 0
        click.echo(f"{file}: {res.summary()} ({res.seconds:.1f}s, {rate:,.0f} rows/s)"
                   + (f", batch #{res.batch_id}" if res.batch_id else ""))

    @registry_group.command("export")
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--grid", "grid_code", help="only this grid")
    @click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), help="default: from the file name")
    @click.option("--actor", default="cli", show_default=True)
    @click.pass_context
    def export_cmd(ctx, file: Path, grid_code, fmt, actor) -> None:
        """Export the registry (or one grid) in the import format, unmasked. The export is recorded."""
        from grid.registry import export

        svc = _svc(ctx)
        fmt = fmt or (file.suffix.lstrip(".").lower() or "csv")
        if fmt not in ("csv", "xlsx"):
            raise click.UsageError("the file must end in .csv or .xlsx (or give --format)")
        bar = Progress("export")
        n = export.export_file(svc, file, fmt, grid_code=grid_code, actor=actor,
                               progress=lambda d, t, note="": bar(d, max(t, d), note))
        click.echo(f"{file}: {n} row(s)")

    @registry_group.command("demo")
    @click.option("--size", type=click.Choice(["small", "full"]), default="full", show_default=True)
    @click.option("--seed", default=42, show_default=True)
    @click.pass_context
    def demo_cmd(ctx, size, seed) -> None:
        """Fill the demo city's grids with synthetic households (once; needs `gridflow demo` first)."""
        from grid.registry import demo as registry_demo

        svc = _svc(ctx)
        counts = registry_demo.fill(svc, size=size, seed=seed, progress=Progress("households"))
        click.echo("registry: " + ", ".join(f"{k}={v}" for k, v in counts.items()))

    @registry_group.command("rekey")
    @click.option("--batch", default=500, show_default=True, help="rows per transaction")
    @click.option("--check", is_flag=True, help="only count what is not yet under the current key")
    @click.pass_context
    def rekey_cmd(ctx, batch, check) -> None:
        """Seal every ID number and phone again under the current key (GRIDFLOW_DATA_KEY), the old
        key(s) in GRIDFLOW_DATA_KEYS_OLD. Resumable: run it again after an interruption."""
        from grid.registry import rekey

        svc = _svc(ctx)
        if not check:
            res = rekey.rekey(svc, batch=batch, progress=Progress("rekey"))
            click.echo(f"rekey to key {res.kid}: " + ", ".join(f"{k}={v}" for k, v in res.rewritten.items()))
        left = rekey.remaining(svc)
        click.echo("not under the current key: " + ", ".join(f"{k}={v}" for k, v in left.items()))
        if check and any(v for k, v in left.items() if "kept" not in k):
            sys.exit(1)
