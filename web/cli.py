"""The `gridflow` command: database, deploy, versions, timers, demo and server."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from grid.config import Settings

from .progress import Progress


def _services(ctx: click.Context):
    from grid.services import Services

    if ctx.obj is None:
        ctx.obj = Services.build(Settings())
    return ctx.obj


@click.group()
@click.option("--database", envvar="GRIDFLOW_DATABASE_URL", help="SQLAlchemy URL (default: SQLite in ./instance)")
@click.pass_context
def main(ctx: click.Context, database: str | None) -> None:
    """Gridflow: BPMN case management for grid-based community governance."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("spiff", "alembic", "apscheduler.executors", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if database:
        import os
        os.environ["GRIDFLOW_DATABASE_URL"] = database
    ctx.obj = None


@main.group()
def db() -> None:
    """Database schema (Alembic)."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply every pending migration."""
    from engine.migrate import upgrade

    svc = _services(ctx)
    upgrade(svc.db, progress=Progress("migrate"))
    click.echo(f"database is at the latest schema ({svc.db.dialect})")


def _deploy(svc, path: Path | None, forms: Path | None, tag: str | None, actor: str, activate: bool = True):
    from engine.deploy import Bundle
    from engine.errors import DeployError
    from engine.versions import deploy_bundle

    path = path or svc.settings.workflows
    bundle = Bundle.from_dirs(path, forms or (svc.settings.forms if path.is_dir() and path == svc.settings.workflows else None))
    try:
        report, _checks = deploy_bundle(svc.db, bundle, actor=actor, tag=tag, activate=activate,
                                        source=str(path), progress=Progress("deploy"))
    except DeployError as e:
        click.echo(f"deploy refused: {len(e.problems)} problem(s); nothing was stored", err=True)
        for p in e.problems:
            click.echo(f"  {p}", err=True)
        sys.exit(1)
    for line in report.lines():
        click.echo(line)
    return report


@main.command()
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--forms", type=click.Path(exists=True, file_okay=False, path_type=Path), help="forms folder")
@click.option("--tag", help="a label for the new version(s), e.g. 2026-q4")
@click.option("--actor", default="cli", help="who deploys (recorded)")
@click.option("--no-activate", is_flag=True, help="store the version without making it active")
@click.pass_context
def deploy(ctx, path, forms, tag, actor, no_activate) -> None:
    """Validate and deploy BPMN/DMN files (default: ./workflows with ./forms)."""
    _deploy(_services(ctx), path, forms, tag, actor, activate=not no_activate)


@main.command()
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--forms", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_context
def validate(ctx, path, forms) -> None:
    """Check diagrams, forms, timer expressions, DMN coverage and call activities without deploying."""
    from engine.deploy import Bundle, parse_bundle
    from engine.errors import DeployError

    svc = _services(ctx)
    path = path or svc.settings.workflows
    bundle = Bundle.from_dirs(path, forms or (svc.settings.forms if path == svc.settings.workflows else None))
    try:
        parsed = parse_bundle(bundle)
    except DeployError as e:
        click.echo(f"{len(e.problems)} problem(s):", err=True)
        for p in e.problems:
            click.echo(f"  {p}", err=True)
        sys.exit(1)
    click.echo(f"ok: {len(bundle.bpmn)} BPMN, {len(bundle.dmn)} DMN, {len(bundle.forms)} form(s); "
               f"processes: {', '.join(parsed.process_ids)}")


@main.command()
@click.pass_context
def sweep(ctx) -> None:
    """Fire every due timer once and exit."""
    n = _services(ctx).runtime.sweep()
    click.echo(f"fired timers on {n} instance(s)")


@main.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@click.option("--scheduler/--no-scheduler", default=True, help="run the timer sweep in this process")
@click.pass_context
def serve(ctx, host, port, scheduler) -> None:
    """Run the web server (and the timer scheduler)."""
    _serve(_services(ctx), host, port, scheduler)


def _serve(svc, host: str, port: int, scheduler: bool) -> None:
    from engine.scheduler import start_scheduler

    from . import create_app

    app = create_app(svc.settings, services=svc)
    sched = start_scheduler(svc.runtime, svc.settings.sweep_seconds) if scheduler else None
    click.echo(f"Gridflow on http://{host}:{port}/ ({svc.db.dialect}; scheduler {'on' if sched else 'off'})")
    try:
        app.run(host=host, port=port, threaded=True, use_reloader=False)
    finally:
        if sched:
            sched.shutdown(wait=False)


@main.command()
@click.option("--size", type=click.Choice(["full", "small"]), default="full", help="demo city size")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@click.option("--serve/--no-serve", "do_serve", default=True)
@click.pass_context
def demo(ctx, size, host, port, do_serve) -> None:
    """Set up the database, deploy ./workflows, generate the demo city, print accounts, serve."""
    import time

    from engine.migrate import upgrade

    svc = _services(ctx)
    upgrade(svc.db, progress=Progress("migrate"))
    _deploy(svc, None, None, "demo", "demo")
    from grid.org import demo as gen
    from grid.registry import demo as registry_demo

    t0 = time.monotonic()
    counts = gen.generate(svc.db, size=size, progress=Progress("demo city"))
    click.echo("demo city: " + ", ".join(f"{k}={v}" for k, v in counts.items()) + f" ({time.monotonic() - t0:.1f}s)")
    if counts.get("created", True):
        t0 = time.monotonic()
        filled = registry_demo.fill(svc, size=size, progress=Progress("households"))
        click.echo("grid registry: " + ", ".join(f"{k}={v}" for k, v in (filled or {}).items())
                   + f" ({time.monotonic() - t0:.1f}s)")
    click.echo(f"demo accounts (password: {gen.DEMO_PASSWORD}):")
    for level, unit, role, username in gen.demo_accounts(svc.db):
        click.echo(f"  {level:<9} {unit:<16} {role:<12} {username}")
    if do_serve:
        _serve(svc, host, port, True)


@main.group()
def scenario() -> None:
    """YAML scenarios that test the processes before they are deployed."""


@scenario.command("run")
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--workflows", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--forms", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--database", "url", help="run on this database URL (it must be empty); default: a temp SQLite")
def scenario_run(files, workflows, forms, url) -> None:
    """Run scenario files (default: every workflows/scenarios/*.yaml) and report each."""
    from engine.db import Database
    from grid.cases.scenario import run_file

    settings = Settings()
    workflows = workflows or settings.workflows
    files = files or tuple(sorted((workflows / "scenarios").glob("*.yaml")))
    failed = 0
    for f in files:
        db = Database(url) if url else None
        result = run_file(f, db=db, workflows=workflows, forms=forms or settings.forms)
        click.echo(str(result))
        failed += not result.passed
    click.echo(f"{len(files) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)

def _register_more() -> None:
    import importlib

    for name in ("cli_versions", "cli_registry"):
        try:
            module = importlib.import_module(f"web.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"web.{name}":
                raise
            continue
        module.register(main)


_register_more()

if __name__ == "__main__":  # pragma: no cover
    main()
