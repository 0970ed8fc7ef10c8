"""The CLI verbs (web/cli_org.py): `gridflow org import` brings in the fixture city in one command
(a bad row imports nothing and is named; a re-import changes nothing), `org export`, the
`staff` verbs as a named administrator, `backup` and `restore`."""
from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner

from grid.org import service as org
from grid.services import Services
from tests.conftest import FIXTURES

CITY = FIXTURES / "org"


@pytest.fixture
def cli(sqlite_db, monkeypatch, tmp_path):
    from web import cli_org
    from web.cli import main

    if "org" not in main.commands:  # until web/cli.py registers it
        cli_org.register(main)
    monkeypatch.setenv("GRIDFLOW_DATABASE_URL", sqlite_db.url_with_password)
    monkeypatch.setenv("GRIDFLOW_UPLOADS", str(tmp_path / "uploads"))
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args), catch_exceptions=False)


def test_org_import_in_one_command_then_nothing_changes(cli, sqlite_db, tmp_path):
    codes = tmp_path / "codes.csv"
    r = cli("org", "import", str(CITY / "units.csv"), "--staff", str(CITY / "staff.csv"), "--codes", str(codes))
    assert r.exit_code == 0, r.output
    assert "units: 264 added" in r.output and "staff: 500 added" in r.output
    assert len(list(csv.reader(open(codes)))) == 501 and (codes.stat().st_mode & 0o777) == 0o600
    r = cli("org", "import", str(CITY / "city.xlsx"))
    assert r.exit_code == 0 and "nothing changed" in r.output, r.output
    r = cli("org", "export", str(tmp_path / "out"))
    assert r.exit_code == 0
    r = cli("org", "import", str(tmp_path / "out" / "units.csv"), "--staff", str(tmp_path / "out" / "staff.csv"))
    assert "nothing changed" in r.output, r.output


def test_a_bad_row_is_named_and_nothing_imported(cli, sqlite_db, tmp_path):
    rows = list(csv.reader(open(CITY / "units.csv", encoding="utf-8")))
    rows[7][3] = "hamlet"
    bad = tmp_path / "units.csv"
    with open(bad, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    r = cli("org", "import", str(bad))
    assert r.exit_code == 1 and "units.csv line 8, column level: unknown level 'hamlet'" in r.output, r.output
    with sqlite_db.read() as s:
        assert org.get_unit(s, "429900000000") is None


def test_staff_verbs_and_backup_restore(cli, sqlite_db, tmp_path):
    assert cli("org", "import", str(CITY / "city.xlsx"), "--codes", str(tmp_path / "c.csv")).exit_code == 0
    admin = "13900000001"  # the fixture city's administrator
    r = cli("staff", "add", "--name", "新人", "--unit", "429901001001001", "--role", "grid_worker",
            "--username", "xin.ren", "--as", admin)
    assert r.exit_code == 0 and "one-time password" in r.output, r.output
    assert cli("staff", "reset-password", "xin.ren", "--as", admin).exit_code == 0
    assert cli("staff", "unlock", "xin.ren", "--as", admin).exit_code == 0
    assert cli("staff", "move", "xin.ren", "429901001001002", "--as", admin).exit_code == 0
    assert cli("staff", "deactivate", "xin.ren", "--as", admin).exit_code == 0
    r = cli("staff", "reset-password", "xin.ren", "--as", "13900000004")  # county admin of 429901: fine
    assert r.exit_code == 0, r.output
    r = cli("staff", "reset-password", "13900000001", "--as", "13900000004")  # the city's admin: refused
    assert r.exit_code == 1 and "refused" in r.output

    archive = tmp_path / "b.tar.gz"
    r = cli("backup", str(archive))
    assert r.exit_code == 0 and archive.exists(), r.output
    target = tmp_path / "restored.sqlite"
    r = CliRunner().invoke(__import__("web.cli", fromlist=["main"]).main, ["--database", f"sqlite:///{target}",
                                                                          "restore", str(archive)])
    assert r.exit_code == 0, r.output
    from engine.db import Database

    restored = Services.build(db=Database(f"sqlite:///{target}"))
    try:
        with restored.db.read() as s:
            assert org.staff_by_username(s, "xin.ren") is not None and len(org.subtree(s, "429900000000")) == 264
    finally:
        restored.db.dispose()
