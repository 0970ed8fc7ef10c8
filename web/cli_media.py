"""`gridflow uploads cleanup` and `gridflow uploads where`: the attachment store from the command line.

The cleanup is the same as the scheduler's hourly job (grid.cases.attachments.cleanup): uploads
left pending by a step that never finished, and bytes no record names, once older than the grace
period (GRIDFLOW_UPLOAD_GRACE_HOURS, or --grace-hours).
"""
from __future__ import annotations

from datetime import timedelta

import click


def register(main: click.Group) -> None:
    @main.group("uploads")
    def uploads() -> None:
        """Attachment storage (local directory or S3-compatible store)."""

    @uploads.command("cleanup")
    @click.option("--grace-hours", type=click.FloatRange(min=0), default=None,
                  help="remove only what is older than this (default GRIDFLOW_UPLOAD_GRACE_HOURS)")
    @click.pass_context
    def cleanup_cmd(ctx: click.Context, grace_hours: float | None) -> None:
        """Remove uploads no finished form owns (pending ones and stray bytes) past the grace period."""
        from grid.cases import attachments

        from .cli import _services

        svc = _services(ctx)
        grace = timedelta(hours=grace_hours) if grace_hours is not None else None
        done = attachments.cleanup(svc, grace=grace)
        click.echo(f"removed {done['pending']} pending upload(s) and {done['stray']} stray file(s)")

    @uploads.command("where")
    @click.pass_context
    def where_cmd(ctx: click.Context) -> None:
        """Say where attachment bytes are stored."""
        from grid import storage

        from .cli import _services

        click.echo(storage.from_settings(_services(ctx).settings).description)
