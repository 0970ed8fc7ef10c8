"""The `gridflow` command: database, deploy, versions, timers, demo, server, scheduler and config check."""
from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import click

from grid.config import ConfigError, Settings, install_test_clock

from .logs import configure_logging
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
    if database:
        os.environ["GRIDFLOW_DATABASE_URL"] = database
    if ctx.invoked_subcommand == "check-config":  # it reports bad values itself
        ctx.obj = None
        return
    try:
        settings = Settings()
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    configure_logging(settings)
    install_test_clock(settings)
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
    from engine.migrate import exit_if_no_schema
    from engine.versions import deploy_bundle

    exit_if_no_schema(svc.db)  # "run gridflow db upgrade", not a traceback about a missing table
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
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="json: a list of problems (file, path, line, element, name, code, message, hint) on stdout")
@click.option("--watch", is_flag=True, help="validate again whenever a file under PATH (or the forms) changes")
@click.pass_context
def validate(ctx, path, forms, fmt, watch) -> None:
    """Check diagrams, forms, timer expressions, DMN coverage and call activities without deploying."""
    path = path or Settings().workflows
    if forms is None and path == Settings().workflows:
        forms = Settings().forms
    if not watch:
        problems, summary = _validate_once(ctx, path, forms)
        _show(problems, summary, path, forms, fmt)
        sys.exit(1 if problems else 0)
    try:
        _watch(ctx, path, forms, fmt)
    except KeyboardInterrupt:
        sys.exit(0)


def _files(path: Path, forms: Path | None) -> list[Path]:
    """The files validation reads, as engine.deploy.Bundle.from_dirs picks them."""
    files = [path] if path.is_file() else sorted(p for p in path.glob("*") if p.suffix in (".bpmn", ".dmn"))
    fdir = forms or (path if path.is_dir() else path.parent).parent / "forms"
    return files + (sorted(fdir.glob("*.json")) if fdir.is_dir() else [])


def _validate_once(ctx: click.Context, path: Path, forms: Path | None) -> tuple[list, str | None]:
    """Problems (coded where their wording is known) and, when there are none, a one-line summary.
    XML and XML Schema problems are found before SpiffWorkflow and the database layer load."""
    from engine.problems import coded_all, precheck

    bpmn = {p.name: p.read_bytes() for p in _files(path, forms) if p.suffix == ".bpmn"}
    dmn = {p.name: p.read_bytes() for p in _files(path, forms) if p.suffix == ".dmn"}
    form_names = {p.name for p in _files(path, forms) if p.suffix == ".json"}
    problems = precheck(bpmn, dmn, form_names)
    if problems:
        return problems, None
    from engine.deploy import Bundle, parse_bundle
    from engine.errors import DeployError

    _services(ctx)  # the composition root registers the domain's checks (DMN coverage)
    bundle = Bundle.from_dirs(path, forms)
    try:
        parsed = parse_bundle(bundle)
    except DeployError as e:
        return coded_all(e.problems, None), None
    return [], (f"ok: {len(bundle.bpmn)} BPMN, {len(bundle.dmn)} DMN, {len(bundle.forms)} form(s); "
                f"processes: {', '.join(parsed.process_ids)}")


def _problem_json(p, path: Path, forms: Path | None) -> dict:
    """One problem for an editor: where (bundle name and path on disk), what (code, en/zh), what to do."""
    where = None
    if p.file.startswith("forms/"):
        fdir = forms or (path if path.is_dir() else path.parent).parent / "forms"
        where = fdir / p.file.removeprefix("forms/")
    elif p.file != "(bundle)":
        where = path if path.is_file() else path / p.file
    return {"file": p.file, "path": str(where) if where else None, "line": p.line, "element": p.element,
            "name": p.name, "code": p.code, "message": {"en": p.en, "zh": p.zh},
            "hint": {"en": p.hint_en, "zh": p.hint_zh}}


def _show(problems: list, summary: str | None, path: Path, forms: Path | None, fmt: str) -> None:
    if fmt == "json":
        import json

        click.echo(json.dumps([_problem_json(p, path, forms) for p in problems], ensure_ascii=False))
        return
    if not problems:
        click.echo(summary)
        return
    click.echo(f"{len(problems)} problem(s):", err=True)
    for p in problems:
        click.echo(f"  {p}", err=True)


def _watch(ctx: click.Context, path: Path, forms: Path | None, fmt: str, interval: float = 0.5) -> None:
    """Validate, then again whenever a file's mtime (or the set of files) changes; polled, no dependency."""
    import time

    def stamps() -> dict[Path, int]:
        out = {}
        for p in _files(path, forms):
            try:
                out[p] = p.stat().st_mtime_ns
            except OSError:
                pass
        return out

    seen: dict[Path, int] | None = None
    while True:
        now = stamps()
        if now != seen:
            seen = now
            problems, summary = _validate_once(ctx, path, forms)
            if fmt == "text":
                click.echo(f"--- {time.strftime('%H:%M:%S')} {path}")
                if problems:  # in watch mode everything goes to stdout, in order
                    click.echo(f"{len(problems)} problem(s):")
                    for p in problems:
                        click.echo(f"  {p}")
                else:
                    click.echo(summary)
            else:
                _show(problems, summary, path, forms, fmt)
        time.sleep(interval)


@main.command()
@click.pass_context
def sweep(ctx) -> None:
    """Fire every due timer once and exit."""
    from engine.migrate import exit_if_no_schema

    svc = _services(ctx)
    exit_if_no_schema(svc.db)
    n = svc.runtime.sweep()
    click.echo(f"fired timers on {n} instance(s)")


@main.command()
@click.option("--host", default=None, help="address to listen on (default 127.0.0.1)")
@click.option("--port", default=None, type=int, help="port (default 5000; with --production GRIDFLOW_BIND or 8000)")
@click.option("--scheduler/--no-scheduler", default=True, help="run the timer sweep in this process (dev server)")
@click.option("--production", is_flag=True, help="run gunicorn with web/gunicorn_conf.py (no scheduler)")
@click.pass_context
def serve(ctx, host, port, scheduler, production) -> None:
    """Run the web server: the development server (with the timer scheduler), or gunicorn."""
    from engine.migrate import exit_if_no_schema

    if production:
        _exec_gunicorn(host, port)
    svc = _services(ctx)
    exit_if_no_schema(svc.db)
    _serve(svc, host or "127.0.0.1", port or 5000, scheduler)


def _exec_gunicorn(host: str | None, port: int | None) -> None:
    """Replace this process by gunicorn, so signals (TERM, HUP) reach its master directly."""
    os.environ.setdefault("GRIDFLOW_ENV", "production")
    try:
        Settings().require_safe()
    except ConfigError as e:
        click.echo(f"refusing to start: {e}", err=True)
        sys.exit(1)
    conf = Path(__file__).with_name("gunicorn_conf.py")
    args = [sys.executable, "-m", "gunicorn", "-c", str(conf)]
    if host or port:
        args += ["--bind", f"{host or '127.0.0.1'}:{port or 8000}"]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [*args, "web.wsgi:app"])


def _dev_request_handler():
    from werkzeug.serving import WSGIRequestHandler

    class Handler(WSGIRequestHandler):
        """The development server without its version in the Server header."""

        def version_string(self) -> str:
            return "gridflow"

    return Handler


def _serve(svc, host: str, port: int, scheduler: bool) -> None:
    from engine.scheduler import start_scheduler

    from . import create_app

    app = create_app(svc.settings, services=svc)
    sched = start_scheduler(svc.runtime, svc.settings.sweep_seconds, svc.periodic_jobs()) if scheduler else None
    click.echo(f"Gridflow on http://{host}:{port}/ ({svc.db.dialect}; scheduler {'on' if sched else 'off'})")
    try:
        app.run(host=host, port=port, threaded=True, use_reloader=False, debug=svc.settings.debug,
                request_handler=_dev_request_handler())
    finally:
        if sched:
            sched.shutdown(wait=False)


@main.command("scheduler")
@click.pass_context
def scheduler_cmd(ctx) -> None:
    """Run the timer sweep (and other periodic jobs) without serving HTTP, until SIGTERM or Ctrl-C.
    Several copies may run on PostgreSQL: each due timer is claimed by one of them."""
    from engine.migrate import exit_if_no_schema
    from engine.scheduler import run_until_stopped

    svc = _services(ctx)
    exit_if_no_schema(svc.db)
    stop = threading.Event()

    def _stop(signum, _frame) -> None:
        click.echo(f"scheduler: {signal.Signals(signum).name} received, stopping", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo(f"scheduler on {svc.db.dialect}: timer sweep every {svc.settings.sweep_seconds:g}s", err=True)
    run_until_stopped(svc.runtime, stop, svc.settings.sweep_seconds, svc.periodic_jobs())
    svc.db.dispose()


@main.command("check-config")
def check_config() -> None:
    """Print the configuration: what is set, what is missing, what is unsafe. Exits 1 when a
    production configuration is unsafe (or a value cannot be read)."""
    try:
        settings = Settings()
    except ConfigError as e:
        click.echo(f"unsafe: {e}")
        sys.exit(1)
    click.echo(f"environment: {settings.env}")
    for name, value, is_set in settings.describe():
        click.echo(f"  {name:<30} {value}{'' if is_set else '  (default)'}")
    findings = settings.findings()
    for level, message in findings:
        click.echo(f"{level}: {message}")
    unsafe = [m for level, m in findings if level == "unsafe"]
    if unsafe:
        click.echo(f"{len(unsafe)} unsafe setting(s): this configuration must not run in production")
        sys.exit(1)
    click.echo("ok" + ("" if settings.production else " (checked as a non-production configuration)"))


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
    gen.add_departments(svc.db)  # 城管, 住建, 司法所, 派出所 on the seed chain (部门协同)
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
    from web import present_modules

    for module in present_modules(("cli_versions", "cli_registry", "cli_indicators", "cli_api", "cli_org", "cli_audit",
                                   "cli_media")):
        module.register(main)


_register_more()

if __name__ == "__main__":  # pragma: no cover
    main()
