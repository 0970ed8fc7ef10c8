"""The grid registry pages: "my grid at a glance" (buildings → households → members, with flags
and due visits), household and resident pages with the life events, flags and an audited reveal
of ID numbers and phones, the import page (with progress) and the export.

Blueprint `registry` under /registry; `register(app)` is called by `web.create_app`. Pages extend
`base.html`. Every word on screen goes through Flask-Babel (English msgids, translated in
web/translations); the codes of `grid.registry_models` (categories, risk levels, statuses, life
events ...) are shown through the tables below, so English users see English. Every call goes
through `grid.registry` / `grid.registry_import`, which check jurisdiction and rights.

Imports run in a background thread of this process; the import page refreshes itself (no script:
the app's content security policy allows none inline) until the job is done. Large files belong
on the command line (`gridflow registry import`).
"""
from __future__ import annotations

import os
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from datetime import date

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from engine import clock
from engine.errors import Conflict, EngineError, InvalidData
from grid.registry import importer as registry_import
from grid.registry import service as registry
from grid.registry.models import CATEGORIES, RELATIONS, RISK_LEVELS

bp = Blueprint("registry", __name__, url_prefix="/registry")

# Words for the codes of grid.registry_models (whose own labels are Chinese data labels).
CATEGORY_NAMES = {
    "community_correction": _l("People under community correction"),
    "released": _l("Released prisoners"),
    "mental_disorder": _l("People with severe mental disorders"),
    "drug_user": _l("Drug users"),
    "key_youth": _l("Youth at risk"),
    "elderly_alone": _l("Elderly living alone"),
    "left_behind_child": _l("Left-behind children"),
    "disabled": _l("People with disabilities"),
}
RISK_NAMES = {"high": _l("High risk"), "medium": _l("Medium risk"), "low": _l("Low risk")}
STATUS_NAMES = {"living": _l("Living here"), "moved_out": _l("Moved out"), "deceased": _l("Deceased")}
SEX_NAMES = {"M": _l("Male"), "F": _l("Female")}
RELATION_NAMES = {
    "head": _l("Head of household"), "spouse": _l("Spouse"), "child": _l("Child"), "parent": _l("Parent"),
    "grandchild": _l("Grandchild"), "grandparent": _l("Grandparent"), "sibling": _l("Sibling"),
    "child_in_law": _l("Child-in-law"), "other": _l("Other"),
}
EVENT_NAMES = {
    "birth": _l("Birth"), "death": _l("Death"), "move_in": _l("Moved in"), "move_out": _l("Moved out"),
    "transfer": _l("Moved to another household"), "update": _l("Details corrected"),
    "head": _l("Head of household changed"), "flag": _l("Flagged"), "unflag": _l("Flag ended"),
    "risk": _l("Risk level changed"), "visit": _l("Visit"), "import": _l("Imported"),
}
JOB_NOTES = {  # the progress notes of grid.registry_import
    "queued": _l("Queued"), "validating": _l("Validating"), "writing": _l("Writing"), "checked": _l("Checked"),
    "exporting": _l("Exporting"), "done": _l("Done"),
}
BATCH_STATUSES = {"running": _l("Running"), "done": _l("Done"), "rejected": _l("Rejected"),
                  "exported": _l("Exported"), "exporting": _l("Export started (not finished)")}
IMPORT_COUNTS = {
    "buildings_created": _l("Buildings added"), "buildings_updated": _l("Buildings updated"),
    "households_created": _l("Households added"), "residents_created": _l("Residents added"),
    "residents_updated": _l("Residents updated"), "residents_unchanged": _l("Residents unchanged"),
}
WORDS = {"categories": CATEGORY_NAMES, "risk": RISK_NAMES, "status": STATUS_NAMES, "sex": SEX_NAMES,
         "relation": RELATION_NAMES, "events": EVENT_NAMES, "job": JOB_NOTES, "batch": BATCH_STATUSES,
         "counts": IMPORT_COUNTS}


def word(table: str, code: str | None) -> str:
    """The word for a code in the user's language (the code itself if the table lacks it)."""
    if code is None:
        return ""
    v = WORDS[table].get(code)
    return str(v) if v is not None else code


FIELDS = {  # history entries: field -> (label, value table or None)
    "name": (_l("Name"), None), "id_number": (_l("ID number"), "mask_id"), "phone": (_l("Phone"), "mask_phone"),
    "birth_date": (_l("Date of birth"), None), "sex": (_l("Sex"), "sex"),
    "relation": (_l("Relation to the head"), "relation"), "status": (_l("Status"), "status"),
    "grid_code": (_l("Grid"), None), "address": (_l("Address"), None), "door_no": (_l("Door number"), None),
    "category": (_l("Flag category"), "categories"), "risk_level": (_l("Risk level"), "risk"),
    "reason": (_l("Reason"), None), "destination": (_l("Moved to"), None), "came_from": (_l("Came from"), None),
    "active": (_l("Active"), "bool"), "household_id": (_l("Household"), "household"),
}


def history_fields(e) -> list[tuple[str, str, str]]:
    """(label, before, after) for the fields an event changed, in words; numbers stay masked."""
    out = []
    for k, v in (e.after or {}).items():
        spec = FIELDS.get(k)
        if spec is None:
            continue
        label, table = spec
        out.append((str(label), _value(table, e.before.get(k)) if k in (e.before or {}) else "", _value(table, v)))
    return out


def page_formats() -> dict[str, str]:
    """Translated patterns for the bits the grid page repeats per household and member, looked up
    once per page (a gettext call per member costs ~15 ms on a grid of 500 households). Fill them
    with Jinja's `format` filter: `f.age|format(age=m.age)`."""
    return {"age": _("age %(age)s"), "people": _("%(n)s resident(s)"), "head": _("Head of household"),
            "none": _("(none)")}


def _value(table: str | None, v) -> str:
    if v is None or v == "":
        return "—"
    if table == "mask_id":
        return registry.mask_id(v)
    if table == "mask_phone":
        return registry.mask_phone(v)
    if table == "bool":
        return _("Yes") if v else _("No")
    if table == "household":
        return f"#{v}"
    return word(table, v) if table else str(v)


def _svc():
    return current_app.extensions["gridflow"]


def _me() -> str:
    try:
        from flask_login import current_user
    except ImportError:  # pragma: no cover
        abort(401)
    if not getattr(current_app, "login_manager", None) or not current_user.is_authenticated:
        abort(401)
    return current_user.id


@bp.app_template_filter("registry_dt")
def _dt(v) -> str:
    d = clock.local(v)
    return d.strftime("%Y-%m-%d %H:%M") if d else ""


@bp.app_template_filter("registry_date")
def _d(v) -> str:
    if v is None:
        return ""
    if isinstance(v, date) and not hasattr(v, "hour"):
        return v.isoformat()
    d = clock.local(v)
    return d.strftime("%Y-%m-%d") if d else ""


@bp.context_processor
def _ctx():
    return {"word": word, "history_fields": history_fields, "page_formats": page_formats,
            "CATEGORIES": list(CATEGORIES), "RISKS": list(RISK_LEVELS), "RELATIONS": list(RELATIONS),
            "now": clock.now(), "layout": _layout()}


def _layout() -> str:
    """`base.html` of the staff UI, or a bare page while it is not there."""
    try:
        current_app.jinja_env.get_template("base.html")
        return "base.html"
    except Exception:  # noqa: BLE001
        return "registry/_bare.html"


def _back(default: str):
    target = request.form.get("next") or ""
    if target.startswith("/registry/") and "//" not in target and "\\" not in target:
        return redirect(target)
    return redirect(default)


def _errors(e: EngineError) -> str:
    if isinstance(e, InvalidData) and e.errors:
        return "; ".join(f"{x.get('path')}: {x.get('message')}" for x in e.errors)
    return str(e)


# ---- pages --------------------------------------------------------------------------------------
@bp.get("/")
def index():
    svc, me = _svc(), _me()
    grids = registry.my_grids(svc, me)
    q = (request.args.get("q") or "").strip()
    found = registry.search(svc, me, q) if q else []
    if len(grids) == 1 and not q:
        return redirect(url_for("registry.grid", code=grids[0][0]))
    return render_template("registry/index.html", grids=grids, q=q, found=found)


@bp.get("/grid/<code>")
def grid(code: str):
    svc, me = _svc(), _me()
    view = registry.grid_overview(svc, me, code, include_gone=request.args.get("all") == "1")
    return render_template("registry/grid.html", v=view, show_all=request.args.get("all") == "1")


@bp.post("/grid/<code>/building")
def add_building(code: str):
    svc, me = _svc(), _me()
    try:
        lat = float(request.form["lat"]) if request.form.get("lat") else None
        lng = float(request.form["lng"]) if request.form.get("lng") else None
        registry.add_building(svc, me, code, request.form.get("address", ""), lat, lng)
        flash(_("Building registered."), "success")
    except ValueError:
        flash(_("Latitude and longitude must be numbers."), "error")
    except (InvalidData, Conflict) as e:
        flash(_errors(e), "error")
    return redirect(url_for("registry.grid", code=code))


@bp.post("/building/<int:building_id>/household")
def add_household(building_id: int):
    svc, me = _svc(), _me()
    try:
        hid = registry.add_household(svc, me, building_id, request.form.get("door_no", ""))
    except (InvalidData, Conflict) as e:
        flash(_errors(e), "error")
        return _back(url_for("registry.index"))
    flash(_("Household registered."), "success")
    return redirect(url_for("registry.household", household_id=hid))


@bp.get("/household/<int:household_id>")
def household(household_id: int):
    svc, me = _svc(), _me()
    page = _household_page(svc, me, household_id)
    return render_template("registry/household.html", **page)


def _household_page(svc, me: str, household_id: int) -> dict:
    return registry.household_page(svc, me, household_id)


@bp.post("/household/<int:household_id>/birth")
def birth(household_id: int):
    svc, me = _svc(), _me()
    f = request.form
    try:
        rid = registry.register_birth(svc, me, household_id, name=f.get("name", ""), birth_date=f.get("birth_date", ""),
                                      sex=f.get("sex", ""), id_number=f.get("id_number") or None,
                                      relation=f.get("relation") or "child", note=f.get("note") or None)
    except (InvalidData, Conflict) as e:
        flash(_errors(e), "error")
        return redirect(url_for("registry.household", household_id=household_id))
    flash(_("Birth registered."), "success")
    return redirect(url_for("registry.resident", resident_id=rid))


@bp.post("/household/<int:household_id>/move-in")
def move_in(household_id: int):
    svc, me = _svc(), _me()
    f = request.form
    try:
        rid = registry.move_in(svc, me, household_id, name=f.get("name", ""), id_number=f.get("id_number", ""),
                               relation=f.get("relation", ""), phone=f.get("phone") or None,
                               moved_on=f.get("moved_on") or None, came_from=f.get("came_from") or None,
                               note=f.get("note") or None)
    except (InvalidData, Conflict) as e:
        flash(_errors(e), "error")
        return redirect(url_for("registry.household", household_id=household_id))
    flash(_("Move-in registered."), "success")
    return redirect(url_for("registry.resident", resident_id=rid))


@bp.get("/resident/<int:resident_id>")
def resident(resident_id: int):
    svc, me = _svc(), _me()
    return _resident_page(svc, me, resident_id)


def _resident_page(svc, me: str, resident_id: int, revealed: dict | None = None, status: int = 200):
    page = registry.resident_page(svc, me, resident_id)
    log = registry.reveals(svc, me, resident_id, limit=10) if page["can_edit"] else []
    return render_template("registry/resident.html", p=page, r=page["resident"], revealed=revealed or {},
                           reveal_log=log), status


@bp.post("/resident/<int:resident_id>/reveal")
def reveal(resident_id: int):
    svc, me = _svc(), _me()
    field_name = request.form.get("field", "")
    if field_name not in registry.REVEAL_FIELDS:
        abort(400)
    value = registry.reveal(svc, me, resident_id, field_name, request.form.get("reason") or None)
    return _resident_page(svc, me, resident_id, revealed={field_name: value})


def _resident_action(resident_id: int, fn, done):
    """Run `fn(svc, me)`; flash `done` (a lazy message) or the error, back to the resident page."""
    svc, me = _svc(), _me()
    try:
        fn(svc, me)
        flash(str(done), "success")
    except (InvalidData, Conflict) as e:
        flash(_errors(e), "error")
    return redirect(url_for("registry.resident", resident_id=resident_id))


@bp.post("/resident/<int:resident_id>/death")
def death(resident_id: int):
    f = request.form
    return _resident_action(resident_id, lambda svc, me: registry.register_death(
        svc, me, resident_id, died_on=f.get("date") or None, note=f.get("note") or None), _l("Death recorded."))


@bp.post("/resident/<int:resident_id>/move-out")
def move_out(resident_id: int):
    f = request.form
    return _resident_action(resident_id, lambda svc, me: registry.move_out(
        svc, me, resident_id, moved_on=f.get("date") or None, destination=f.get("destination") or None,
        note=f.get("note") or None), _l("Move-out recorded."))


@bp.post("/resident/<int:resident_id>/update")
def update(resident_id: int):
    f = request.form
    changes = {k: f.get(k) for k in ("name", "phone", "relation") if f.get(k)}
    return _resident_action(resident_id, lambda svc, me: registry.update_resident(
        svc, me, resident_id, changes, note=f.get("note") or None), _l("Details corrected."))


@bp.post("/resident/<int:resident_id>/flag")
def flag(resident_id: int):
    f = request.form
    return _resident_action(resident_id, lambda svc, me: registry.flag(
        svc, me, resident_id, f.get("category", ""), f.get("risk_level", ""), note=f.get("note") or None),
        _l("Flagged; the visit schedule has started."))


def _flag_resident(flag_id: int) -> int:
    return registry.flag_resident(_svc(), _me(), flag_id)


@bp.post("/flag/<int:flag_id>/unflag")
def unflag(flag_id: int):
    rid = _flag_resident(flag_id)
    return _resident_action(rid, lambda svc, me: registry.unflag(svc, me, flag_id, request.form.get("reason", "")),
                            _l("Flag ended; the visit schedule has stopped."))


@bp.post("/flag/<int:flag_id>/risk")
def risk(flag_id: int):
    rid = _flag_resident(flag_id)
    return _resident_action(rid, lambda svc, me: registry.change_risk(svc, me, flag_id,
                                                                      request.form.get("risk_level", "")),
                            _l("Risk level changed."))


@bp.get("/api/residents")
def api_residents():
    """Masked search results for picking case parties: [{resident_id, name, sex, age, phone (masked),
    id_number (masked), address, grid_name}]; add {"name", "resident_id"} to the report's parties."""
    svc, me = _svc(), _me()
    found = registry.search(svc, me, request.args.get("q", ""), grid_code=request.args.get("grid") or None,
                            limit=request.args.get("limit", 20, type=int) or 20)
    return jsonify(found)


# ---- import and export --------------------------------------------------------------------------
@dataclass
class Job:
    id: str
    staff_id: str
    filename: str
    done: int = 0
    total: int = 0
    note: str = "queued"
    result: registry_import.ImportResult | None = None
    failed: str | None = None
    thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.result is not None or self.failed is not None

    @property
    def percent(self) -> int:
        return 100 if self.finished else int(100 * self.done / self.total) if self.total else 0


_jobs: dict[str, Job] = {}
_jobs_lock = threading.Lock()
MAX_JOBS = 50


def _run(app: Flask, job: Job, path: str, grid_code: str | None, dry_run: bool) -> None:
    svc = app.extensions["gridflow"]

    def progress(done: int, total: int, note: str = "") -> None:
        job.done, job.total, job.note = done, total, note

    try:
        job.result = registry_import.import_file(svc, path, staff_id=job.staff_id, grid_code=grid_code,
                                                 filename=job.filename, progress=progress, dry_run=dry_run)
    except (EngineError, ValueError) as e:
        job.failed = str(e)
    except Exception as e:  # noqa: BLE001 - shown on the page, logged
        app.logger.exception("registry import failed")
        job.failed = f"{type(e).__name__}: {e}"
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


@bp.get("/import")
def import_page():
    svc, me = _svc(), _me()
    job = _jobs.get(request.args.get("job", ""))
    if job is not None and job.staff_id != me:
        job = None
    grids = registry.my_grids(svc, me)
    recent = registry_import.batches(svc, limit=10, actor=me)
    return render_template("registry/import.html", job=job, grids=grids, recent=recent,
                           columns=registry_import.COLUMNS)


@bp.post("/import")
def import_upload():
    svc, me = _svc(), _me()
    up = request.files.get("file")
    grid_code = request.form.get("grid") or None
    if up is None or not up.filename:
        flash(_("Choose a file to import (CSV or XLSX)."), "error")
        return redirect(url_for("registry.import_page")), 303
    name = os.path.basename(up.filename.replace("\\", "/"))
    ext = os.path.splitext(name)[1].lower()
    if ext not in (".csv", ".xlsx"):
        flash(_("Only CSV and XLSX files can be imported."), "error")
        return redirect(url_for("registry.import_page")), 303
    if grid_code is not None:
        registry.check_grid(svc, me, grid_code, edit=True)
    fd, path = tempfile.mkstemp(suffix=ext, prefix="gridflow-import-")
    with os.fdopen(fd, "wb") as f:
        up.save(f)
    job = Job(uuid.uuid4().hex, me, name)
    with _jobs_lock:
        for old in [k for k, j in _jobs.items() if j.finished][: max(0, len(_jobs) - MAX_JOBS)]:
            _jobs.pop(old, None)
        _jobs[job.id] = job
    job.thread = threading.Thread(target=_run, name=f"registry-import-{job.id[:8]}", daemon=True,
                                  args=(current_app._get_current_object(), job, path, grid_code,
                                        request.form.get("dry_run") == "1"))
    job.thread.start()
    return redirect(url_for("registry.import_page", job=job.id)), 303


@bp.get("/import/<job_id>.json")
def import_status(job_id: str):
    me = _me()
    job = _jobs.get(job_id)
    if job is None or job.staff_id != me:
        abort(404)
    out = {"done": job.done, "total": job.total, "note": job.note, "percent": job.percent, "finished": job.finished,
           "failed": job.failed}
    if job.result is not None:
        out.update(ok=job.result.ok, summary=job.result.summary(), counts=job.result.counts,
                   errors=[{"line": e.line, "column": e.column, "reason": e.reason} for e in job.result.errors[:200]],
                   error_count=job.result.error_count)
    return jsonify(out)


@bp.get("/export")
def export():
    svc, me = _svc(), _me()
    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        abort(400)
    grid_code = request.args.get("grid") or None
    if grid_code is not None:
        registry.check_grid(svc, me, grid_code)
    stamp = clock.local(clock.now()).strftime("%Y%m%d")
    name = f"registry-{grid_code or 'mine'}-{stamp}.{fmt}"
    if fmt == "xlsx":
        import io

        buf = io.BytesIO()
        registry_import.export_file(svc, buf, "xlsx", staff_id=me, grid_code=grid_code, actor=me)
        return Response(buf.getvalue(), mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    rows = registry_import.export_rows(svc, me, grid_code)
    first = next(rows)  # raises Forbidden here, before the response starts
    audit_id = registry.audit_export(svc, me, grid_code)  # recorded before any data leaves

    def generate():
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf)
        buf.write("\ufeff")
        w.writerow(first)
        n = 0
        for row in rows:
            w.writerow(row)
            n += 1
            if buf.tell() > 1 << 16:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()
        registry.audit_export_done(svc, audit_id, n)

    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def register(app: Flask) -> None:
    """Register the blueprint and the registry's engine hooks on the app's Services."""
    app.register_blueprint(bp)
    svc = app.extensions.get("gridflow")
    if svc is not None:
        registry.install(svc)
    if "csrf" not in app.extensions:  # the staff UI protects every POST; without it, do it here
        from flask_wtf.csrf import CSRFProtect

        CSRFProtect(app)
