"""`gridflow version ...`: deploy a new version without activating it, compare, activate (roll back),
pin for a jurisdiction (pilot), retire, and migrate running cases (dry run, then execute with a
progress bar), revert one case, and the audit trail."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .progress import Progress


def _svc(ctx: click.Context):
    from .cli import _services

    return _services(ctx)


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(1)


def _engine(verb, *args, refused: str = "", **kw):
    """`verb(*args, **kw)`; if the engine refuses (EngineError), the command ends with the reason
    after `refused`, exit status 1."""
    from engine.errors import EngineError

    try:
        return verb(*args, **kw)
    except EngineError as e:
        _fail(f"{refused}{e}")


def unit_scope(svc, unit: str):
    """grid.cases.service.unit_scope, re-exported for web.admin; imported on use, so that loading
    the `gridflow` command does not load the domain (`gridflow validate` starts fast)."""
    from grid.cases.service import unit_scope as scope

    return scope(svc, unit)


def _scope(svc, unit: str | None, scope: str | None) -> tuple[str, str | None]:
    """The pin scope from --unit (a unit's path, with a label) or a raw --scope."""
    if not (unit or scope):
        raise click.UsageError("give --unit or --scope")
    if unit:
        path, _cond, label = unit_scope(svc, unit)
        return path, label
    return scope, None


def register(main: click.Group) -> None:
    @main.group("version")
    def version() -> None:
        """Process versions: new, compare, activate, pin, retire, migrate, revert, audit."""

    @version.command("list")
    @click.argument("process_id", required=False)
    @click.pass_context
    def list_(ctx, process_id) -> None:
        """Versions with tag, hash, who/when, state, active (*), pins and open/closed cases."""
        from engine import clock
        from engine import versions as v

        for r in v.list_versions(_svc(ctx).db, process_id):
            pins = f" pinned: {', '.join(r['pins'])}" if r["pins"] else ""
            click.echo(f"{r['process_id']:<20} v{r['number']:<3} {'*' if r['active'] else ' '} {r['state']:<9} "
                       f"{r['sha256'][:12]} {r['tag'] or '-':<12} {r['deployed_by'] or '-':<10} "
                       f"{clock.local(r['deployed_at']):%Y-%m-%d %H:%M} open={r['open']} closed={r['closed']}{pins}")

    @version.command("new")
    @click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
    @click.option("--forms", type=click.Path(exists=True, file_okay=False, path_type=Path), help="forms folder")
    @click.option("--tag", help="a label for the new version(s)")
    @click.option("--actor", default="cli", help="who deploys (audited)")
    @click.option("--activate", "do_activate", is_flag=True, help="also make the new versions active")
    @click.pass_context
    def new(ctx, path, forms, tag, actor, do_activate) -> None:
        """Validate workflows/ (or PATH) and store new versions, not yet active; print the report."""
        from engine import versions as v
        from engine.deploy import Bundle
        from engine.errors import DeployError
        from engine.migration import compare, compare_lines

        svc = _svc(ctx)
        path = path or svc.settings.workflows
        if forms is None and path == svc.settings.workflows:
            forms = svc.settings.forms
        bundle = Bundle.from_dirs(path, forms)
        try:
            report, checks = v.deploy_bundle(svc.db, bundle, actor=actor, tag=tag, activate=do_activate,
                                             source=str(path))
        except DeployError as e:
            click.echo(f"refused: {len(e.problems)} problem(s); nothing was stored", err=True)
            for p in e.problems:
                click.echo(f"  {p}", err=True)
            sys.exit(1)
        click.echo("validation passed:")
        for c in checks:
            click.echo(f"  ok  {c}")
        for line in report.lines():
            click.echo(line)
        active = {r["process_id"]: r["number"] for r in v.list_versions(svc.db) if r["active"]}
        for ver in report.created:
            if ver.process_id in active and active[ver.process_id] != ver.number:
                for line in compare_lines(compare(svc.runtime, ver.process_id, active[ver.process_id], ver.number)):
                    click.echo(line)
            if ver not in report.activated:
                click.echo(f"not active yet: gridflow version activate {ver.process_id} {ver.number}")

    @version.command("activate")
    @click.argument("process_id")
    @click.argument("number", type=int)
    @click.option("--actor", default="cli")
    @click.pass_context
    def activate(ctx, process_id, number, actor) -> None:
        """Make version NUMBER active for new cases (activating an older one rolls back)."""
        from engine import versions as v

        _engine(v.activate, _svc(ctx).db, process_id, number, actor=actor)
        click.echo(f"{process_id} v{number} is active")

    @version.command("pin")
    @click.argument("process_id")
    @click.argument("number", type=int)
    @click.option("--unit", help="unit code: cases reported in this unit's jurisdiction use the version")
    @click.option("--scope", help="a raw scope (a unit path such as 420600000000/420602000000/)")
    @click.option("--actor", default="cli")
    @click.pass_context
    def pin(ctx, process_id, number, unit, scope, actor) -> None:
        """Pin a version for a jurisdiction (a pilot)."""
        from engine import versions as v

        svc = _svc(ctx)
        scope, label = _engine(_scope, svc, unit, scope)
        _engine(v.pin, svc.db, process_id, scope, number, actor=actor, label=label)
        click.echo(f"{process_id} v{number} pinned for {label or scope}")

    @version.command("unpin")
    @click.argument("process_id")
    @click.option("--unit")
    @click.option("--scope")
    @click.option("--actor", default="cli")
    @click.pass_context
    def unpin(ctx, process_id, unit, scope, actor) -> None:
        """Remove a pin: the jurisdiction follows the active version again."""
        from engine import versions as v

        svc = _svc(ctx)
        scope, _label = _engine(_scope, svc, unit, scope)
        _engine(v.unpin, svc.db, process_id, scope, actor=actor)
        click.echo(f"{process_id}: pin for {scope} removed")

    @version.command("retire")
    @click.argument("process_id")
    @click.argument("number", type=int)
    @click.option("--actor", default="cli")
    @click.pass_context
    def retire(ctx, process_id, number, actor) -> None:
        """Retire a version without open cases (it can no longer be activated or pinned)."""
        from engine import versions as v

        _engine(v.retire, _svc(ctx).db, process_id, number, actor=actor, refused="refused: ")
        click.echo(f"{process_id} v{number} is retired")

    @version.command("compare")
    @click.argument("process_id")
    @click.argument("a", type=int)
    @click.argument("b", type=int)
    @click.pass_context
    def compare_(ctx, process_id, a, b) -> None:
        """Tasks added/removed/changed, timers, time limits and forms between versions A and B."""
        from engine.migration import compare, compare_lines

        for line in compare_lines(_engine(compare, _svc(ctx).runtime, process_id, a, b)):
            click.echo(line)

    @version.command("migrate")
    @click.argument("process_id")
    @click.option("--to", "to", type=int, required=True, help="target version number")
    @click.option("--from", "from_", type=int, multiple=True, help="only cases on this version (repeatable)")
    @click.option("--unit", help="only cases reported in this unit's jurisdiction")
    @click.option("--at", "at", multiple=True, help="only cases with an open task with this id (repeatable)")
    @click.option("--case", "keys", multiple=True, help="only this case / business key (repeatable)")
    @click.option("--dry-run", is_flag=True, help="only say which cases can move and why not")
    @click.option("--yes", is_flag=True, help="do not ask before moving")
    @click.option("--batch", default=50, show_default=True, help="cases per transaction")
    @click.option("--verbose", "-v", is_flag=True, help="print every verdict")
    @click.option("--actor", default="cli")
    @click.pass_context
    def migrate(ctx, process_id, to, from_, unit, at, keys, dry_run, yes, batch, verbose, actor) -> None:
        """Move running cases to version --to: a dry run first, then every safe case (with progress)."""
        from engine.errors import EngineError
        from engine.migration import Migrator, Selection, verdict_lines

        svc = _svc(ctx)
        sel = Selection(process_id, from_versions=list(from_) or None, at_tasks=list(at) or None,
                        business_keys=list(keys) or None)
        m = Migrator(svc.runtime)
        try:
            if unit:
                _path, sel.where, sel.label = unit_scope(svc, unit)
            run_id, plans = m.dry_run(sel, to, actor=actor, progress=Progress("dry run"))
        except EngineError as e:
            _fail(str(e))
        ok = [p for p in plans if p.ok]
        blocked = [p for p in plans if not p.ok]
        shown = plans if verbose or len(plans) <= 20 else blocked[:20]
        for line in verdict_lines(shown):
            click.echo(line)
        click.echo(f"dry run #{run_id}: {len(plans)} case(s); {len(ok)} can move, {len(blocked)} cannot")
        reasons: dict[str, int] = {}
        for p in blocked:
            for r in p.reasons:
                reasons[r] = reasons.get(r, 0) + 1
        for r, n in sorted(reasons.items(), key=lambda x: -x[1])[:10]:
            click.echo(f"  {n:>6} × {r}")
        if dry_run or not ok:
            return
        if not yes and not click.confirm(f"move {len(ok)} case(s) to v{to}?"):
            return
        sel.instance_ids = [p.instance_id for p in ok]
        run = m.execute(sel, to, actor=actor, batch=batch, progress=Progress("migrate"))
        click.echo(f"run #{run.id}: migrated {run.migrated}, blocked {run.blocked}, skipped {run.skipped} "
                   f"(changed meanwhile), failed {run.failed}")
        for rec in m.records(run.id):
            if rec.outcome in ("skipped", "failed", "blocked"):
                click.echo(f"  {rec.outcome:<8} instance {rec.instance_id}: {'; '.join(rec.reasons)}")
        if run.skipped or run.failed:
            sys.exit(2)

    @version.command("revert")
    @click.argument("case")
    @click.option("--actor", default="cli")
    @click.pass_context
    def revert(ctx, case, actor) -> None:
        """Put a migrated case (instance id or business key) back as it was before its last migration."""
        from engine.migration import Migrator
        from engine.versions import find_instance

        svc = _svc(ctx)
        iid = find_instance(svc.db, case)
        if iid is None:
            _fail(f"no case {case}")
        rec = _engine(Migrator(svc.runtime).revert, iid, actor=actor, refused="refused: ")
        click.echo(f"instance {iid} is back on version id {rec.from_version_id}")

    @version.command("replay")
    @click.argument("process_id")
    @click.option("--to", "to", type=int, required=True, help="the candidate version number")
    @click.option("--since", type=click.DateTime(["%Y-%m-%d"]), required=True,
                  help="cases reported on or after this day (Beijing), e.g. 2026-01-01")
    @click.option("--calendar", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="a candidate work calendar (default: the configured workflows/calendar.yaml)")
    @click.pass_context
    def replay(ctx, process_id, to, since, calendar) -> None:
        """What if: past cases' timing against version --to's time limits, per unit, before activating it."""
        from engine.calendar import WorkCalendar
        from grid.cases.replay import replay as run_replay
        from grid.cases.replay import report_lines

        svc = _svc(ctx)
        report = _engine(run_replay, svc, process_id, to, since.date(),
                         calendar=WorkCalendar.load(calendar) if calendar else None)
        for line in report_lines(report):
            click.echo(line)

    @version.command("audit")
    @click.argument("process_id", required=False)
    @click.option("--limit", default=50)
    @click.pass_context
    def audit(ctx, process_id, limit) -> None:
        """Who deployed, activated, pinned, retired or migrated what, and when."""
        from engine import clock
        from engine import versions as v

        for e in v.audit(_svc(ctx).db, process_id, limit):
            what = f"v{e['number']}" if e["number"] else ""
            extra = f" scope={e['scope']}" if e["scope"] else ""
            if e["action"] == "migrate":
                d = e["data"]
                extra += f" migrated={d.get('migrated')} blocked={d.get('blocked')} skipped={d.get('skipped')}"
            click.echo(f"{clock.local(e['at']):%Y-%m-%d %H:%M:%S} {e['actor'] or '-':<12} {e['action']:<8} "
                       f"{e['process_id'] or '-'} {what}{extra}")
