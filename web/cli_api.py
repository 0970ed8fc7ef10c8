"""`gridflow api-client create|list|revoke` and `gridflow webhook add|list|replay`."""
from __future__ import annotations

import click


def _svc():
    """The services of the running `gridflow` command (its --database option included)."""
    from .cli import _services

    return _services(click.get_current_context())


@click.group("api-client")
def api_client() -> None:
    """API clients (/api/v1, Open311 POST): tokens are shown once."""


@api_client.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, help="cases:read, indicators:read, "
              "registry:aggregates, reports:create, personal:read (repeat)")
@click.option("--unit", required=True, help="jurisdiction: this unit code and below")
@click.option("--rate", default=600, type=int, help="calls per minute")
def create(name: str, scopes: tuple[str, ...], unit: str, rate: int) -> None:
    from grid.org import api_clients

    try:
        c, token = api_clients.create(_svc(), name, list(scopes), unit, actor="cli", rate_per_minute=rate)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    click.echo(f"client {c.id} ({c.name}) created; its token (shown once):")
    click.echo(token)


@api_client.command("list")
def list_() -> None:
    from grid.org import api_clients

    for c in api_clients.clients(_svc()):
        state = f"revoked {c.revoked_at:%Y-%m-%d}" if c.revoked_at else "active"
        click.echo(f"{c.id}  {c.name:<24} {c.unit_code:<16} {','.join(c.scopes):<40} {state}")


@api_client.command("revoke")
@click.argument("client_id")
def revoke(client_id: str) -> None:
    from grid.org import api_clients

    if not api_clients.revoke(_svc(), client_id):
        raise click.UsageError(f"no active client {client_id}")
    click.echo(f"client {client_id} revoked")


@click.group("webhook")
def webhook() -> None:
    """Webhooks that receive the case event feed (CloudEvents, HMAC-signed)."""


@webhook.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--personal", is_flag=True, help="send the variant with personal data")
def add(name: str, url: str, personal: bool) -> None:
    from engine import outbox_admin

    svc = _svc()
    try:
        hid, secret = outbox_admin.add_webhook(svc.db, name, url, personal=personal)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    click.echo(f"webhook {hid} added; signing secret (shown once): {secret}")


@webhook.command("list")
def list_hooks() -> None:
    from engine import outbox_admin

    for h in outbox_admin.list_webhooks(_svc().db):
        click.echo(f"{h.id:>4}  {h.name:<24} {h.url:<50} {'active' if h.active else 'off'}  dead={h.dead}")


@webhook.command("replay")
@click.argument("webhook_id", type=int, required=False)
def replay(webhook_id: int | None) -> None:
    """Queue dead-lettered events again (of one webhook, or all)."""
    from engine import outbox_admin

    n = outbox_admin.replay(_svc().db, webhook_id)
    click.echo(f"{n} event(s) queued again")


def register(main: click.Group) -> None:
    main.add_command(api_client)
    main.add_command(webhook)
