"""`gridflow audit ...`: check the tamper-evident audit chains (docs/audit.md).

    gridflow audit verify [--quiet]

Walks every instance's event chain and the security audit chain, names the first row changed,
removed or inserted in each broken chain (table, row id, chain), and exits 1 if any is broken.
"""
from __future__ import annotations

import sys

import click

from .progress import Progress


def _svc(ctx: click.Context):
    from grid.config import Settings
    from grid.services import Services

    root = ctx.find_root()
    if root.obj is None:
        root.obj = Services.build(Settings())
    return root.obj


def register(main: click.Group) -> None:
    @main.group("audit")
    def audit_group() -> None:
        """The audit trail: verify its hash chains."""

    @audit_group.command("verify")
    @click.option("--quiet", is_flag=True, help="no progress bar")
    @click.pass_context
    def verify_cmd(ctx, quiet: bool) -> None:
        """Verify the case/instance event chains and the security audit chain; exit 1 on a break."""
        from grid.org import audit

        problems = audit.verify_all(_svc(ctx), progress_for=None if quiet else Progress)
        for p in problems:
            click.echo(f"BROKEN {p}", err=True)
        if problems:
            click.echo(f"audit verify: {len(problems)} broken chain(s)", err=True)
            sys.exit(1)
        click.echo("audit verify: every chain is intact")
