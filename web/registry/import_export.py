"""The registry's import page (upload, then a progress page until the job is done) and the export.

Imports run in a background thread of this process; the import page refreshes itself (no script:
the app's content security policy allows none inline) until the job is done. Large files belong
on the command line (`gridflow registry import`). An export is recorded before its first byte
leaves.
"""
from __future__ import annotations

import csv
import io
import os
import tempfile
import threading
import uuid
from dataclasses import dataclass, field

from flask import (
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

from engine import clock
from engine.errors import EngineError
from grid.registry import export as registry_export
from grid.registry import pages as registry_pages
from grid.registry import reader, writer

from .blueprint import bp, current_staff_id, services


@dataclass
class Job:
    """An import running in a background thread, and its progress (for the page that polls it)."""

    id: str
    staff_id: str
    filename: str
    done: int = 0
    total: int = 0
    note: str = "queued"
    result: writer.ImportResult | None = None
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
    """The thread of an import job: import the uploaded file, then delete it."""
    svc = app.extensions["gridflow"]

    def progress(done: int, total: int, note: str = "") -> None:
        job.done, job.total, job.note = done, total, note

    try:
        job.result = writer.import_file(svc, path, staff_id=job.staff_id, grid_code=grid_code,
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
    svc, me = services(), current_staff_id()
    job = _jobs.get(request.args.get("job", ""))
    if job is not None and job.staff_id != me:
        job = None
    grids = registry_pages.my_grids(svc, me, browse=False)  # only the grids one may import into or export
    recent = writer.batches(svc, limit=10, actor=me)
    return render_template("registry/import.html", job=job, grids=grids, recent=recent,
                           columns=reader.COLUMNS)


@bp.post("/import")
def import_upload():
    svc, me = services(), current_staff_id()
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
        registry_pages.check_grid(svc, me, grid_code, edit=True)
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
    me = current_staff_id()
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
    svc, me = services(), current_staff_id()
    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        abort(400)
    grid_code = request.args.get("grid") or None
    if grid_code is not None:
        registry_pages.check_grid(svc, me, grid_code)
    stamp = clock.local(clock.now()).strftime("%Y%m%d")
    name = f"registry-{grid_code or 'mine'}-{stamp}.{fmt}"
    if fmt == "xlsx":
        buf = io.BytesIO()
        registry_export.export_file(svc, buf, "xlsx", staff_id=me, grid_code=grid_code, actor=me)
        return Response(buf.getvalue(), mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    rows = registry_export.export_rows(svc, me, grid_code)
    first = next(rows)  # raises Forbidden here, before the response starts
    audit_id = registry_export.audit_export(svc, me, grid_code)  # recorded before any data leaves

    def generate():
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
        registry_export.audit_export_done(svc, audit_id, n)

    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
