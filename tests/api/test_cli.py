"""`gridflow api-client` and `gridflow webhook` on a real database: what an administrator types."""
from __future__ import annotations

from click.testing import CliRunner

from web.cli import main


def test_api_client_and_webhook_commands(svc):
    url = svc.db.url_with_password
    run = CliRunner()
    made = run.invoke(main, ["--database", url, "api-client", "create", "data centre", "--scope", "cases:read",
                             "--unit", "420600000000"])
    assert made.exit_code == 0, made.output
    assert "gf_" in made.output
    listed = run.invoke(main, ["--database", url, "api-client", "list"])
    assert listed.exit_code == 0 and "data centre" in listed.output
    added = run.invoke(main, ["--database", url, "webhook", "add", "bus", "http://127.0.0.1:9/hook"])
    assert added.exit_code == 0 and "signing secret" in added.output, added.output
    hooks = run.invoke(main, ["--database", url, "webhook", "list"])
    assert hooks.exit_code == 0 and "bus" in hooks.output and "dead=0" in hooks.output, hooks.output
    replayed = run.invoke(main, ["--database", url, "webhook", "replay"])
    assert replayed.exit_code == 0 and "0 event(s) queued again" in replayed.output
