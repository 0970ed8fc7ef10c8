"""Process version administration (blueprint `admin`, /admin): versions and their case counts, upload
of a new bundle with its validation report, activate / roll back, pilots (pins), retire, compare
two versions with both diagrams, migrate running cases (dry run, execute with progress, revert),
and the audit trail. Administrators only."""
from __future__ import annotations

from flask import Blueprint, Flask, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from jinja2 import ChoiceLoader, DictLoader

from engine import versions as v
from engine.errors import Conflict, DeployError, EngineError, NotFound
from engine.migration import Migrator, Selection, compare
from grid.org import accounts
from web.ui import admin_words as words
from web.ui import safe_next
from web.ui.admin_words import version_label
from web.ui.forms import has_control

bp = Blueprint("admin", __name__, url_prefix="/admin")
PAGE = 200


def _services():
    from flask import current_app

    return current_app.extensions["gridflow"]


def is_admin(user) -> bool:
    """Administrators: a signed-in user whose staff roles include `admin` (StaffUser.is_admin)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if getattr(user, "is_admin", False):
        return True
    has_role = getattr(user, "has_role", None)
    return bool(has_role and has_role("admin"))


def _actor() -> str:
    return getattr(current_user, "username", None) or current_user.get_id()


@bp.before_request
@login_required
def _only_admins():
    """Process versions serve the whole city: a county's administrator manages its organisation
    (/admin/org/), not the city's processes."""
    if not is_admin(current_user) or not any(r.role == "admin" and r.level == "city"
                                             for r in getattr(current_user, "roles", ())):
        abort(403)
    return None


def _migrator() -> Migrator:
    from flask import current_app

    m = current_app.extensions.get("gridflow_migrator")
    if m is None:  # one per app: it caches the spec diffs between version pairs
        m = current_app.extensions["gridflow_migrator"] = Migrator(_services().runtime)
    return m


def _next(default: str) -> str:
    """Where to go back to: the posted `next` if it is a path on this site (see `safe_next`; CR/LF
    and other control characters are refused too, they would break the header), else `default`."""
    target = request.form.get("next")
    return safe_next(None if has_control(target, single_line=True) else target, default)


def process_names() -> dict[str, str]:
    """{process id: BPMN name} of every deployed process, once per request."""
    from flask import g

    if "gridflow_process_names" not in g:
        g.gridflow_process_names = {p["process_id"]: p["name"] or p["process_id"]
                                    for p in v.processes(_services().db)}
    return g.gridflow_process_names


def actor_name(username: str | None):
    """The name of the person behind an audit username (the CLI's `admin`, a staff login)."""
    if not username:
        return "—"
    from flask import g

    cache = g.setdefault("gridflow_actor_names", {})
    if username not in cache:
        sid = accounts.staff_id_for(_services(), username)
        name = accounts.staff_names(_services(), [sid]).get(sid) if sid else None
        cache[username] = name or words.code(username)  # a CLI or scenario login: shown as a code
    return cache[username]


def _unit_names(codes: list[str]) -> dict[str, str]:
    return accounts.unit_names(_services(), codes)


def _scope_label(scope: str, names: dict[str, str]) -> str:
    code = [p for p in scope.split("/") if p][-1:] or [scope]
    return f"{names.get(code[0], code[0])} ({code[0]})"


# ---- versions --------------------------------------------------------------------------------
@bp.get("/")
def index():
    """The administrator's landing page: versions, recent deploys, incidents, the scheduler."""
    db = _services().db
    deploys = [e for e in v.audit(db, limit=60) if e["action"] == "deploy"][:8]
    return render_template("admin/home.html", processes=v.processes(db), deploys=deploys, health=v.health(db))


@bp.post("/instances/<int:instance_id>/retry")
def retry(instance_id: int):
    """Re-run the failed step of an incident (a failed instance)."""
    try:
        _services().runtime.retry(instance_id, actor=_actor())
        flash(_("Retried: the case runs again."), "success")
    except EngineError as e:
        flash(_("Not retried: %(e)s", e=e), "error")
    return redirect(_next("admin.index"))


@bp.get("/versions")
def versions():
    procs = v.processes(_services().db)
    codes = sorted({[p for p in s.split("/") if p][-1] for pr in procs for r in pr["versions"] for s in r["pins"]
                    if s.strip("/")})
    names = _unit_names(codes)
    return render_template("admin/versions.html", processes=procs, names=names, scope_label=_scope_label,
                           audit=v.audit(_services().db, limit=15))


@bp.post("/versions/upload")
def upload():
    files = [(f.filename or "", f.read()) for f in request.files.getlist("files") if f and f.filename]
    tag = (request.form.get("tag") or "").strip() or None
    if not files:
        flash(_("Choose BPMN, DMN and form files, or a zip of them."), "error")
        return redirect(url_for("admin.versions"))
    try:
        bundle = v.bundle_from_upload(files)
        report, checks = v.deploy_bundle(_services().db, bundle, actor=_actor(), tag=tag,
                                         source="upload: " + ", ".join(n for n, _c in files)[:300])
    except DeployError as e:
        return render_template("admin/refused.html", problems=e.problems, files=[n for n, _c in files]), 422
    if not report.created:
        flash(_("Nothing new: the upload is identical to %(v)s.",
                v=", ".join(f"{x.process_id} v{x.number}" for x in report.unchanged)), "info")
        return redirect(url_for("admin.versions"))
    created = [{"process_id": x.process_id, "number": x.number} for x in report.created]
    return render_template("admin/deployed.html", created=created, checks=checks,
                           unchanged=[{"process_id": x.process_id, "number": x.number} for x in report.unchanged])


@bp.get("/versions/<process_id>/<int:number>")
def version(process_id: str, number: int):
    db = _services().db
    rows = v.list_versions(db, process_id)
    row = next((r for r in rows if r["number"] == number), None)
    if row is None:
        raise NotFound(f"{process_id} has no version {number}")
    active = next((r for r in rows if r["active"]), None)
    cmp = None
    if active and active["number"] != number:
        cmp = compare(_services().runtime, process_id, active["number"], number)
    files = v.version_files(db, process_id, number)
    return render_template("admin/version.html", row=row, active=active, cmp=cmp,
                           deploy=v.deploy_event(db, process_id, number), files=sorted(files["files"]),
                           forms=sorted(files["forms"]), names=_unit_names(
                               [[p for p in s.split("/") if p][-1] for s in row["pins"] if s.strip("/")]),
                           scope_label=_scope_label, others=[r for r in rows if r["number"] != number])


@bp.get("/versions/<process_id>/<int:number>/activate")
def confirm_activate(process_id: str, number: int):
    """The confirmation before activating: what changes (every process of the bundle), for whom
    (every unit but the pilots, which keep their pinned version), and what stays (open cases)."""
    db = _services().db
    impact = v.activation_impact(db, process_id, number)
    codes = sorted({[p for p in x["scope"].split("/") if p][-1] for x in impact["pins"] if x["scope"].strip("/")})
    return render_template("admin/activate.html", process_id=process_id, number=number, impact=impact,
                           names=_unit_names(codes), scope_label=_scope_label,
                           back=request.args.get("next") or url_for("admin.versions"))


@bp.post("/versions/<process_id>/<int:number>/activate")
def activate(process_id: str, number: int):
    try:
        members = v.activate_bundle(_services().db, process_id, number, actor=_actor())
        names = process_names()
        label = "、".join(version_label(m["number"], m["process_id"], names) for m in members)
        flash(_("%(v)s is now active: new cases use it.", v=label), "success")
    except EngineError as e:
        flash(str(e), "error")
    return redirect(_next("admin.versions"))


@bp.post("/versions/<process_id>/<int:number>/retire")
def retire(process_id: str, number: int):
    try:
        v.retire(_services().db, process_id, number, actor=_actor())
        label = version_label(number, process_id, process_names())
        flash(_("%(v)s is retired.", v=label), "success")
    except EngineError as e:
        flash(_("Not retired: %(e)s", e=e), "error")
    return redirect(url_for("admin.versions"))


@bp.post("/versions/<process_id>/pins")
def pin(process_id: str):
    from .cli_versions import unit_scope

    unit = (request.form.get("unit") or "").strip()
    number = request.form.get("number", type=int)
    try:
        scope, _cond, label = unit_scope(_services(), unit)
        members = v.pin_bundle(_services().db, process_id, scope, number, actor=_actor(), label=label)
        names = process_names()
        shown = "、".join(version_label(m["number"], m["process_id"], names) for m in members)
        flash(_("%(v)s pinned for %(u)s.", v=shown, u=label), "success")
    except EngineError as e:  # unknown unit, retired version, ...
        flash(_("Not pinned: %(e)s", e=e), "error")
    return redirect(url_for("admin.versions"))


@bp.post("/versions/<process_id>/pins/delete")
def unpin(process_id: str):
    try:
        v.unpin(_services().db, process_id, request.form.get("scope", ""), actor=_actor())
        flash(_("Pilot ended: the unit follows the active version again."), "success")
    except EngineError as e:
        flash(str(e), "error")
    return redirect(url_for("admin.versions"))


@bp.get("/versions/<process_id>/compare")
def compare_page(process_id: str):
    rows = v.list_versions(_services().db, process_id)
    if not rows:
        raise NotFound(process_id)
    a = request.args.get("a", type=int) or (rows[-2]["number"] if len(rows) > 1 else rows[-1]["number"])
    b = request.args.get("b", type=int) or rows[-1]["number"]
    c = compare(_services().runtime, process_id, a, b)
    return render_template("admin/compare.html", c=c, rows=rows, process_id=process_id)


@bp.get("/versions/<process_id>/compare.json")
def compare_json(process_id: str):
    a, b = request.args.get("a", type=int), request.args.get("b", type=int)
    c = compare(_services().runtime, process_id, a, b)
    return jsonify({"a": c["a"], "b": c["b"], "diagrams": c["diagrams"]})


# ---- migrations ------------------------------------------------------------------------------
@bp.get("/migrations")
def migrations():
    procs = v.processes(_services().db)
    pid = request.args.get("process") or next((p["process_id"] for p in procs if any(r["open"] for r in p["versions"])),
                                              procs[0]["process_id"] if procs else None)
    return render_template("admin/migrations.html", processes=procs, process_id=pid,
                           choices=v.choices(_services().db, pid) if pid else [],
                           runs=_migrator().runs(pid, limit=30) if pid else [])


def _selection_from_form(form) -> Selection:
    from .cli_versions import unit_scope

    pid = form.get("process_id", "")
    sel = Selection(pid)
    froms = [int(x) for x in form.getlist("from") if x.strip().isdigit()]
    sel.from_versions = froms or None
    at = [x.strip() for x in (form.get("at") or "").replace(",", " ").split() if x.strip()]
    sel.at_tasks = at or None
    keys = [x.strip() for x in (form.get("cases") or "").replace(",", " ").split() if x.strip()]
    sel.business_keys = keys or None
    unit = (form.get("unit") or "").strip()
    if unit:
        _path, sel.where, sel.label = unit_scope(_services(), unit)
    return sel


@bp.post("/migrations/dry-run")
def dry_run():
    to = request.form.get("to", type=int)
    try:
        sel = _selection_from_form(request.form)
        run_id, _plans = _migrator().dry_run(sel, to, actor=_actor())
    except EngineError as e:  # unknown unit, retired target, ...
        flash(_("Dry run not started: %(e)s", e=e), "error")
        return redirect(url_for("admin.migrations", process=request.form.get("process_id")))
    return redirect(url_for("admin.run", run_id=run_id))


@bp.post("/migrations/<int:run_id>/execute")
def execute(run_id: int):
    m = _migrator()
    if not m.records(run_id, "can_move", limit=1):
        flash(_("No case can move."), "info")
        return redirect(url_for("admin.run", run_id=run_id))
    try:
        new_id = m.start_from_dry_run(run_id, actor=_actor())
    except Conflict as e:
        flash(str(e), "error")
        return redirect(url_for("admin.run", run_id=run_id))
    return redirect(url_for("admin.run", run_id=new_id))


@bp.post("/migrations/<int:run_id>/step")
def step(run_id: int):
    run = _migrator().step(run_id, limit=request.args.get("n", 50, type=int))
    return jsonify(_run_json(run))


def _run_json(run) -> dict:
    return {"id": run.id, "status": run.status, "total": run.total, "done": run.done, "migrated": run.migrated,
            "blocked": run.blocked, "skipped": run.skipped, "failed": run.failed}


@bp.get("/migrations/<int:run_id>")
def run(run_id: int):
    m = _migrator()
    r = m.get_run(run_id)
    page = max(request.args.get("page", 1, type=int), 1)
    outcome = request.args.get("outcome") or None
    records = m.record_rows(run_id, outcome, limit=PAGE, offset=(page - 1) * PAGE)
    return render_template("admin/run.html", r=r, to=m.version_label(r.to_version_id), records=records, page=page,
                           outcome=outcome, per_page=PAGE, state=_run_json(r))


@bp.post("/instances/<int:instance_id>/revert")
def revert(instance_id: int):
    try:
        _migrator().revert(instance_id, actor=_actor())
        flash(_("Case %(i)s is back on its previous version.", i=instance_id), "success")
    except EngineError as e:
        flash(_("Not reverted: %(e)s", e=e), "error")
    return redirect(_next("admin.migrations"))


@bp.get("/audit")
def audit():
    return render_template("admin/audit.html", events=v.audit(_services().db, request.args.get("process"), 500))


# ---- wiring ----------------------------------------------------------------------------------
_FALLBACK_BASE = """<!doctype html><html><head><meta charset="utf-8"><title>{% block title %}{% endblock %}</title>
{% block head %}{% endblock %}</head><body><main>{% with m = get_flashed_messages(with_categories=true) %}
{% for c, t in m %}<p class="flash {{ c }}">{{ t }}</p>{% endfor %}{% endwith %}{% block content %}{% endblock %}
</main>{% block scripts %}{% endblock %}</body></html>"""


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    # the staff UI provides base.html, `_` and csrf_token(); keep admin pages rendering without it
    app.jinja_loader  # noqa: B018 - make sure the app loader exists
    app.jinja_env.loader = ChoiceLoader([app.jinja_env.loader, DictLoader({"base.html": _FALLBACK_BASE})])

    @app.context_processor
    def _admin_helpers():
        out = {"is_admin_user": is_admin(current_user) if current_user else False}
        if request.path.startswith(bp.url_prefix or "/admin"):
            names = process_names() if is_admin(current_user) else {}
            out.update(pname=lambda pid: names.get(pid) or pid, vlabel=lambda n, pid=None: version_label(n, pid, names),
                       verdict=lambda t: words.verdict(t, names), check_text=lambda c: words.check(c, names), detail_text=words.detail,
                       action_word=lambda a: words.word(words.ACTIONS, a),
                       outcome_word=lambda o: words.word(words.OUTCOMES, o),
                       status_word=lambda o: words.word(words.STATUSES, o),
                       run_status=lambda o: words.word(words.RUN_STATUS, o), actor_name=actor_name,
                       version_text=lambda t: words.version_text(t, names))
        if "_" not in app.jinja_env.globals:
            out["_"] = lambda s, **kw: (s % kw) if kw else s
        if "csrf_token" not in app.jinja_env.globals:
            out["csrf_token"] = lambda: ""
        return out

    if "dt" not in app.jinja_env.filters:  # the staff UI formats times in Asia/Shanghai; same fallback
        from engine import clock

        app.jinja_env.filters["dt"] = lambda v: clock.local(v).strftime("%Y-%m-%d %H:%M") if v else ""
