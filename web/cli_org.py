"""`gridflow org import|export`, `gridflow staff add|deactivate|move|reset-password|unlock`,
`gridflow backup` and `gridflow restore`.

The staff verbs act as an administrator named with --as (a username holding an admin role),
so the CLI goes through the same jurisdiction checks and audit entries as the web pages.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .progress import Progress


def _svc(ctx: click.Context):
    from .cli import _services

    return _services(ctx)


def _actor(svc, username: str) -> str:
    from grid.org import accounts, admin

    staff_id = accounts.staff_id_for(svc, username)
    if staff_id is None or accounts.account(svc, staff_id) is None:
        raise click.UsageError(f"no active account {username!r}")
    if not admin.is_org_admin(svc, staff_id):
        raise click.UsageError(f"{username} holds no admin role")
    return staff_id


def _staff(svc, username: str) -> str:
    from grid.org import accounts

    staff_id = accounts.staff_id_for(svc, username)
    if staff_id is None:
        raise click.UsageError(f"no account {username!r}")
    return staff_id


def _on_staff(ctx: click.Context, verb, as_user: str, username: str, *args):
    """`verb(svc, actor, staff_id, *args)` (a grid.org.admin verb) by administrator `as_user` on
    `username`; a refusal ends the command (`_fail`)."""
    svc = _svc(ctx)
    try:
        return verb(svc, _actor(svc, as_user), _staff(svc, username), *args)
    except Exception as e:  # noqa: BLE001
        _fail(e)


def _write_codes(path: Path, rows: list[tuple[str, str, str]]) -> None:
    """The one-time passwords, readable by the owner only (they open accounts until changed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("username,name,initial_password\n")
        for r in rows:
            f.write(",".join(r) + "\n")


def _fail(e) -> None:
    from engine.errors import EngineError
    from grid.org.service import OrgError

    if isinstance(e, (OrgError, EngineError)):
        click.echo(f"refused: {e}", err=True)
        sys.exit(1)
    raise e


def register(main: click.Group) -> None:
    @main.group("org")
    def org_group() -> None:
        """The city's own unit tree and staff (import, export)."""

    @org_group.command("import")
    @click.argument("units", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
    @click.option("--staff", "staff", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="Staff CSV/XLSX (an XLSX with a 'staff' sheet needs no separate file).")
    @click.option("--codes", type=click.Path(dir_okay=False, path_type=Path),
                  help="Where to write new accounts' one-time passwords (default: beside the input).")
    @click.pass_context
    def import_cmd(ctx: click.Context, units: Path | None, staff: Path | None, codes: Path | None) -> None:
        """Import units (and staff): every row is checked first; any problem imports nothing."""
        from grid.org import importer

        if units is None and staff is None:
            raise click.UsageError("give a units file, --staff, or both")
        svc = _svc(ctx)
        try:
            report = importer.import_org(svc, units, staff, progress=Progress("import"))
        except importer.ImportRefused as e:
            click.echo(f"import refused: {len(e.problems)} problem(s); nothing was imported", err=True)
            for p in e.problems[:200]:
                click.echo(f"  {p}", err=True)
            sys.exit(1)
        for line in report.lines():
            click.echo(line)
        if report.initial_passwords:
            base = units or staff
            out = codes or base.with_name(base.stem + ".initial-passwords.csv")
            _write_codes(out, report.initial_passwords)
            click.echo(f"one-time passwords of {len(report.initial_passwords)} new account(s): {out} "
                       "(each must be changed at first sign-in)")
        if not report.changed:
            click.echo("nothing changed")

    @org_group.command("export")
    @click.argument("out", type=click.Path(path_type=Path))
    @click.option("--under", help="Only this unit and everything below it.")
    @click.pass_context
    def export_cmd(ctx: click.Context, out: Path, under: str | None) -> None:
        """Write units and staff in the import format: OUT.xlsx (two sheets) or a directory of CSVs."""
        from grid.org import importer

        svc = _svc(ctx)
        units, staff = importer.export_rows(svc, under)
        if out.suffix.lower() == ".xlsx":
            out.unlink(missing_ok=True)
            importer.write_table(out, units, "units")
            importer.write_table(out, staff, "staff")
        else:
            out.mkdir(parents=True, exist_ok=True)
            importer.write_table(out / "units.csv", units)
            importer.write_table(out / "staff.csv", staff)
        click.echo(f"{len(units) - 1} unit(s), {len(staff) - 1} staff role(s) written to {out}")

    @main.group("staff")
    def staff_group() -> None:
        """Staff accounts: add, deactivate, move, reset a password, unlock (audited)."""

    as_option = click.option("--as", "as_user", required=True, help="Username of the administrator acting.")

    @staff_group.command("add")
    @click.option("--name", required=True)
    @click.option("--unit", required=True, help="Unit code.")
    @click.option("--role", required=True)
    @click.option("--phone")
    @click.option("--username")
    @click.option("--title")
    @as_option
    @click.pass_context
    def add_cmd(ctx, name, unit, role, phone, username, title, as_user) -> None:
        """Add an account; prints its one-time password (changed at first sign-in)."""
        from grid.org import admin

        svc = _svc(ctx)
        try:
            acc = admin.add_staff(svc, _actor(svc, as_user), name=name, unit_code=unit, role=role, phone=phone,
                                  username=username, title=title)
        except Exception as e:  # noqa: BLE001 - _fail re-raises what it does not know
            _fail(e)
        click.echo(f"{acc.staff_id} {acc.username} one-time password: {acc.initial_password}")

    @staff_group.command("deactivate")
    @click.argument("username")
    @click.option("--hand-over-to", help="Username who takes over the open tasks.")
    @as_option
    @click.pass_context
    def deactivate_cmd(ctx, username, hand_over_to, as_user) -> None:
        """Deactivate an account (sessions end at once; open tasks handed over or back to the pool)."""
        from grid.org import admin

        svc = _svc(ctx)
        try:
            actor = _actor(svc, as_user)
            target = _staff(svc, username)
            for t in admin.open_tasks(svc, actor, target):
                click.echo(f"  open: {t.name} (case instance {t.instance_id})")
            n = admin.deactivate(svc, actor, target, _staff(svc, hand_over_to) if hand_over_to else None)
        except Exception as e:  # noqa: BLE001
            _fail(e)
        click.echo(f"{username} deactivated; {n} task(s) handed over")

    @staff_group.command("move")
    @click.argument("username")
    @click.argument("grid")
    @as_option
    @click.pass_context
    def move_cmd(ctx, username, grid, as_user) -> None:
        """Move a grid worker to another grid."""
        from grid.org import admin

        _on_staff(ctx, admin.move_grid_worker, as_user, username, grid)
        click.echo(f"{username} now works grid {grid}")

    @staff_group.command("reset-password")
    @click.argument("username")
    @as_option
    @click.pass_context
    def reset_cmd(ctx, username, as_user) -> None:
        """A new one-time password (printed); the person must change it at next sign-in."""
        from grid.org import admin

        pw = _on_staff(ctx, admin.reset_password, as_user, username)
        click.echo(f"{username} one-time password: {pw}")

    @staff_group.command("unlock")
    @click.argument("username")
    @as_option
    @click.pass_context
    def unlock_cmd(ctx, username, as_user) -> None:
        """Lift a sign-in throttle."""
        from grid.org import admin

        _on_staff(ctx, admin.unlock, as_user, username)
        click.echo(f"{username} unlocked")

    @main.command("backup")
    @click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
    @click.pass_context
    def backup_cmd(ctx: click.Context, archive: Path) -> None:
        """Consistent copy of the database and the attachments (originals and renditions, in the
        configured store: the uploads directory or the S3 bucket) into ARCHIVE (.tar.gz); the server
        may keep running."""
        from engine import backup as b
        from grid import storage
        from grid.config import ConfigError

        svc = _svc(ctx)
        try:
            store = storage.from_settings(svc.settings)
            m = b.backup(svc.db, archive, store, note={"store": store.description}, progress=Progress("backup"))
        except (ConfigError, b.BackupError) as e:
            click.echo(f"backup failed: {e}", err=True)
            sys.exit(1)
        click.echo(f"{archive}: {m['dialect']} at {m['revision']}, {sum(n or 0 for n in m['tables'].values())} rows, "
                   f"{len(m['uploads'])} upload(s)")

    @main.command("restore")
    @click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--overwrite", is_flag=True, help="SQLite: replace an existing database file.")
    @click.pass_context
    def restore_cmd(ctx: click.Context, archive: Path, overwrite: bool) -> None:
        """Put a backup back into the configured (fresh) database and attachment store (the uploads
        directory or the S3 bucket)."""
        from engine import backup as b
        from grid import storage
        from grid.config import ConfigError, Settings

        settings = Settings()
        try:
            m = b.restore(archive, settings.database_url, storage.from_settings(settings), overwrite=overwrite,
                          progress=Progress("restore"))
        except (ConfigError, b.BackupError) as e:
            click.echo(f"restore failed: {e}", err=True)
            sys.exit(1)
        click.echo(f"restored {sum(n or 0 for n in m['tables'].values())} rows and {len(m['uploads'])} upload(s) "
                   f"from {m['created_at']}")
