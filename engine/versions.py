"""Process versions for administrators: list, deploy (validated, not yet active), activate and roll
back, pin a version for a scope (a pilot), retire, and the audit trail of all of it.

Every change writes a `version_event` row (who, when, what) in the same transaction.
"""
from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable
from pathlib import PurePosixPath

from sqlalchemy import case, delete, func, select

from . import clock
from .db import Database
from .deploy import Bundle, DeployReport, deploy, parse_bundle
from .errors import Conflict, DeployError, NotFound, Problem
from .models import Instance, ProcessDefinition, ProcessVersion, VersionPin
from .version_models import MigrationRecord, MigrationRun, VersionEvent  # noqa: F401 - registers the tables

OPEN = ("running", "failed")
CLOSED = ("completed", "cancelled")
MAX_UPLOAD_FILES = 200
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def _audit(s, action: str, actor: str | None, process_id: str | None = None, version_id: int | None = None,
           scope: str | None = None, **data) -> None:
    s.add(VersionEvent(at=clock.now(), actor=actor, action=action, process_id=process_id, version_id=version_id,
                       scope=scope, data=data))


def _get(s, process_id: str, number: int) -> ProcessVersion:
    v = s.scalar(select(ProcessVersion).where(ProcessVersion.process_id == process_id,
                                              ProcessVersion.number == number))
    if v is None:
        raise NotFound(f"{process_id} has no version {number}")
    return v


# ---- reading ----------------------------------------------------------------------------------
def list_versions(db: Database, process_id: str | None = None, include_retired: bool = True) -> list[dict]:
    """Every version with number, tag, hash, who/when, state, whether active, pins and instance counts."""
    with db.read() as s:
        counts = dict()
        q = select(Instance.version_id,
                   func.sum(case((Instance.status.in_(OPEN), 1), else_=0)),
                   func.sum(case((Instance.status.in_(CLOSED), 1), else_=0))
                   ).group_by(Instance.version_id)
        for vid, open_, closed in s.execute(q):
            counts[vid] = (int(open_ or 0), int(closed or 0))
        active = dict(s.execute(select(ProcessDefinition.process_id, ProcessDefinition.active_version_id)).all())
        pins: dict[int, list[str]] = {}
        for p in s.scalars(select(VersionPin)):
            pins.setdefault(p.version_id, []).append(p.scope)
        vq = select(ProcessVersion).order_by(ProcessVersion.process_id, ProcessVersion.number)
        if process_id:
            vq = vq.where(ProcessVersion.process_id == process_id)
        if not include_retired:
            vq = vq.where(ProcessVersion.state != "retired")
        out = []
        for v in s.scalars(vq):
            o, c = counts.get(v.id, (0, 0))
            out.append({"id": v.id, "process_id": v.process_id, "number": v.number, "tag": v.tag, "name": v.name,
                        "sha256": v.sha256, "deployed_by": v.deployed_by, "deployed_at": v.deployed_at,
                        "state": v.state, "active": active.get(v.process_id) == v.id, "open": o, "closed": c,
                        "pins": sorted(pins.get(v.id, []))})
        return out


def processes(db: Database) -> list[dict]:
    """Process definitions with their active version number and versions (newest first)."""
    rows = list_versions(db)
    out: dict[str, dict] = {}
    with db.read() as s:
        for d in s.scalars(select(ProcessDefinition).order_by(ProcessDefinition.process_id)):
            out[d.process_id] = {"process_id": d.process_id, "name": d.name, "active": None, "versions": []}
    for r in rows:
        p = out.setdefault(r["process_id"], {"process_id": r["process_id"], "name": r["name"], "active": None,
                                             "versions": []})
        p["versions"].insert(0, r)
        if r["active"]:
            p["active"] = r["number"]
    return list(out.values())


def choices(db: Database, process_id: str) -> list[dict]:
    """Versions an administrator may activate, pin or migrate to (retired ones are gone)."""
    return [r for r in list_versions(db, process_id) if r["state"] != "retired"]


def pins(db: Database, process_id: str | None = None) -> list[dict]:
    with db.read() as s:
        q = select(VersionPin, ProcessVersion.number).join(ProcessVersion, ProcessVersion.id == VersionPin.version_id)
        if process_id:
            q = q.where(VersionPin.process_id == process_id)
        return [{"process_id": p.process_id, "scope": p.scope, "version_id": p.version_id, "number": n}
                for p, n in s.execute(q.order_by(VersionPin.process_id, VersionPin.scope))]


def audit(db: Database, process_id: str | None = None, limit: int = 200) -> list[dict]:
    """The version audit trail, newest first."""
    with db.read() as s:
        q = (select(VersionEvent, ProcessVersion.number).outerjoin(ProcessVersion,
                                                                   ProcessVersion.id == VersionEvent.version_id)
             .order_by(VersionEvent.id.desc()).limit(limit))
        if process_id:
            q = q.where(VersionEvent.process_id == process_id)
        return [{"id": e.id, "at": e.at, "actor": e.actor, "action": e.action, "process_id": e.process_id,
                 "number": n, "scope": e.scope, "data": e.data or {}} for e, n in s.execute(q)]


def deploy_event(db: Database, process_id: str, number: int) -> dict | None:
    """The audit row of a version's deployment (holds the validation report), if it was deployed here."""
    with db.read() as s:
        v = _get(s, process_id, number)
        e = s.scalar(select(VersionEvent).where(VersionEvent.action == "deploy", VersionEvent.version_id == v.id)
                     .order_by(VersionEvent.id.desc()).limit(1))
        return None if e is None else {"at": e.at, "actor": e.actor, "data": e.data or {}}


def version_files(db: Database, process_id: str, number: int) -> dict:
    with db.read() as s:
        v = _get(s, process_id, number)
        return {"files": dict(v.files or {}), "forms": dict(v.forms or {})}


# ---- new versions -----------------------------------------------------------------------------
def bundle_from_upload(files: Iterable[tuple[str, bytes]]) -> Bundle:
    """A bundle from uploaded files: .bpmn, .dmn and form .json files, or .zip archives of them.

    Raises DeployError (nothing stored) for an unreadable archive, too many or too large files,
    or a bundle without BPMN."""
    bundle = Bundle()
    problems: list[Problem] = []
    total = 0
    count = 0

    def add(name: str, content: bytes) -> None:
        nonlocal total, count
        count += 1
        total += len(content)
        base = PurePosixPath(name.replace("\\", "/")).name
        if not base or base.startswith("."):
            return
        if base.endswith(".bpmn"):
            bundle.bpmn[base] = content
        elif base.endswith(".dmn"):
            bundle.dmn[base] = content
        elif base.endswith(".json"):
            bundle.forms[base] = content
        elif base == "calendar.yaml":  # the work calendar, deployed with the version
            bundle.calendar = content
        elif not base.endswith((".md", ".yaml", ".yml", ".txt")):
            problems.append(Problem(name, "not a BPMN, DMN or form (.json) file"))

    for name, content in files:
        if name.lower().endswith(".zip"):
            try:
                with zipfile.ZipFile(io.BytesIO(content)) as z:
                    infos = [i for i in z.infolist() if not i.is_dir()]
                    if len(infos) > MAX_UPLOAD_FILES or sum(i.file_size for i in infos) > MAX_UPLOAD_BYTES:
                        raise DeployError([Problem(name, "the archive is too large "
                                                         f"(at most {MAX_UPLOAD_FILES} files, "
                                                         f"{MAX_UPLOAD_BYTES // 2**20} MB unpacked)")])
                    for i in infos:
                        if "__MACOSX" in i.filename:
                            continue
                        add(i.filename, z.read(i))
            except zipfile.BadZipFile:
                problems.append(Problem(name, "not a readable zip archive"))
        else:
            add(name, content)
        if count > MAX_UPLOAD_FILES or total > MAX_UPLOAD_BYTES:
            raise DeployError([Problem("(upload)", "the upload is too large")])
    if problems:
        raise DeployError(problems)
    return bundle


CHECKS = {
    "xml_schema": "XML Schema (BPMN 2.0 + SpiffWorkflow extensions): {bpmn} BPMN file(s) valid",
    "parse": "SpiffWorkflow parse: processes {processes}; {dmn} DMN decision file(s)",
    "forms": "forms: {forms} file(s) are valid JSON Schema; every user task's form is present",
    "sandbox": "{elements} elements checked: scripts, conditions, assignment expressions and timer expressions "
               "compile in the sandbox",
    "domain": "domain checks passed (e.g. time limits cover every level and category)",
}


class Check(str):
    """A validation check that passed: its English text (CLI, logs), with `code` and `args` for
    pages that show it in the user's language (see CHECKS)."""

    code: str
    args: dict

    def __new__(cls, code: str, **args) -> Check:
        self = super().__new__(cls, CHECKS[code].format(**args))
        self.code, self.args = code, args
        return self

    def as_dict(self) -> dict:
        return {"code": self.code, "args": self.args}


def validate(bundle: Bundle) -> list[Check]:
    """Validate a bundle (raises DeployError listing every problem); returns the checks that passed."""
    parsed = parse_bundle(bundle)
    tasks = sum(1 for spec, subs in parsed.specs.values() for p in [spec, *subs.values()]
                for ts in p.task_specs.values() if getattr(ts, "bpmn_id", None))
    return [
        Check("xml_schema", bpmn=len(bundle.bpmn)),
        Check("parse", processes=", ".join(parsed.process_ids), dmn=len(bundle.dmn)),
        Check("forms", forms=len(bundle.forms)),
        Check("sandbox", elements=tasks),
        Check("domain"),
    ]


def deploy_bundle(db: Database, bundle: Bundle, actor: str | None, tag: str | None = None,
                  activate: bool = False, source: str | None = None,
                  progress: Callable[[int, int, str], None] | None = None) -> tuple[DeployReport, list[str]]:
    """Validate and store new versions (not active unless asked); audit each created version.

    Raises DeployError with every problem found; then nothing is stored."""
    checks = validate(bundle)
    with db.write() as s:
        report = deploy(s, bundle, actor=actor, tag=tag, activate=activate, progress=progress)
        for v in report.created:
            _audit(s, "deploy", actor, v.process_id, v.id, number=v.number, tag=tag, sha256=v.sha256,
                   checks=[c.as_dict() for c in checks],
                   files=sorted(bundle.paths()), source=source, activated=v in report.activated,
                   bundle=[{"process_id": x.process_id, "number": x.number} for x in report.created])
        for v in report.activated:
            _audit(s, "activate", actor, v.process_id, v.id, number=v.number, on_deploy=True)
        s.flush()
        for v in report.created + report.unchanged:
            s.expunge(v)
    return report, checks


# ---- changes ----------------------------------------------------------------------------------
def activate(db: Database, process_id: str, number: int, actor: str | None = None) -> None:
    """Make a version the one new instances use; activating an older one is a rollback."""
    with db.write() as s:
        _activate_in(s, process_id, number, actor)


def _activate_in(s, process_id: str, number: int, actor: str | None, **audit_extra) -> None:
    """In session `s`: make v`number` the active version (audited; nothing if it already is)."""
    v = _get(s, process_id, number)
    if v.state == "retired":
        raise Conflict(f"{process_id} v{number} is retired and cannot be activated")
    d = s.get(ProcessDefinition, process_id)
    if d is None:
        raise NotFound(f"process {process_id} does not exist")
    previous = s.get(ProcessVersion, d.active_version_id) if d.active_version_id else None
    if previous is not None and previous.id == v.id:
        return
    d.active_version_id = v.id
    _audit(s, "activate", actor, process_id, v.id, number=number, previous=previous.number if previous else None,
           rollback=previous is not None and previous.number > v.number, **audit_extra)


def pin(db: Database, process_id: str, scope: str, number: int, actor: str | None = None,
        label: str | None = None) -> None:
    """New instances started in `scope` (e.g. a jurisdiction path) use this version (a pilot)."""
    if not scope:
        raise Conflict("a pin needs a scope")
    with db.write() as s:
        v = _get(s, process_id, number)
        if v.state == "retired":
            raise Conflict(f"{process_id} v{number} is retired and cannot be pinned")
        p = s.get(VersionPin, (process_id, scope))
        previous = None
        if p is None:
            s.add(VersionPin(process_id=process_id, scope=scope, version_id=v.id))
        else:
            previous = s.get(ProcessVersion, p.version_id).number
            p.version_id = v.id
        _audit(s, "pin", actor, process_id, v.id, scope=scope, number=number, previous=previous, label=label)


def unpin(db: Database, process_id: str, scope: str, actor: str | None = None) -> None:
    with db.write() as s:
        p = s.get(VersionPin, (process_id, scope))
        if p is None:
            raise NotFound(f"{process_id} has no pin for {scope}")
        number = s.get(ProcessVersion, p.version_id).number
        vid = p.version_id
        s.execute(delete(VersionPin).where(VersionPin.process_id == process_id, VersionPin.scope == scope))
        _audit(s, "unpin", actor, process_id, vid, scope=scope, number=number)


def retire(db: Database, process_id: str, number: int, actor: str | None = None) -> None:
    """Retire a version nobody uses: no open instances, not active, not pinned. It then leaves the choices."""
    with db.write() as s:
        v = _get(s, process_id, number)
        if v.state == "retired":
            return
        open_ = s.scalar(select(func.count()).select_from(Instance).where(Instance.version_id == v.id,
                                                                          Instance.status.in_(OPEN)))
        if open_:
            raise Conflict(f"{process_id} v{number} still has {open_} open instance(s); finish or migrate them first")
        d = s.get(ProcessDefinition, process_id)
        if d is not None and d.active_version_id == v.id:
            raise Conflict(f"{process_id} v{number} is the active version; activate another one first")
        scopes = list(s.scalars(select(VersionPin.scope).where(VersionPin.version_id == v.id)))
        if scopes:
            raise Conflict(f"{process_id} v{number} is pinned for {', '.join(scopes)}; unpin it first")
        v.state = "retired"
        _audit(s, "retire", actor, process_id, v.id, number=number)


def find_instance(db: Database, ref: str) -> int | None:
    """An instance by id ("42") or business key (e.g. a case number)."""
    from .models import Instance

    with db.read() as s:
        if ref.isdigit() and s.get(Instance, int(ref)) is not None:
            return int(ref)
        return s.scalar(select(Instance.id).where(Instance.business_key == ref))


# ---- bundles: processes deployed together move together -------------------------------------------
AUDIT_ACTIONS = ("deploy", "activate", "pin", "unpin", "retire")  # the codes `version_event.action` holds


def bundle_of(db: Database, process_id: str, number: int) -> list[dict]:
    """The versions deployed together with this one (a main process and the processes it calls,
    from one upload), this one first: [{process_id, number, name, active_number}]. They are
    activated, pinned and rolled back together."""
    with db.read() as s:
        v = _get(s, process_id, number)
        same = [o for o in s.scalars(select(ProcessVersion).where(ProcessVersion.process_id != process_id,
                                                                  ProcessVersion.state != "retired")
                                     .order_by(ProcessVersion.number.desc()))
                if (o.files or {}) == (v.files or {})]
        members, seen = [v], {v.process_id}
        for o in same:  # the newest version of each other process with the very same files
            if o.process_id not in seen:
                seen.add(o.process_id)
                members.append(o)
        active = dict(s.execute(select(ProcessDefinition.process_id, ProcessVersion.number)
                                .join(ProcessVersion, ProcessVersion.id == ProcessDefinition.active_version_id)).all())
        return [{"process_id": m.process_id, "number": m.number, "name": m.name or m.process_id,
                 "active_number": active.get(m.process_id)} for m in members]


def activation_impact(db: Database, process_id: str, number: int) -> dict:
    """What activating this version changes, for the confirmation: each member of its bundle
    (from which active version to which), the pilot pins that keep their own version (so their
    units are not switched), and how many open instances stay where they are."""
    members = bundle_of(db, process_id, number)
    ids = [m["process_id"] for m in members]
    with db.read() as s:
        pinned = [{"process_id": p.process_id, "scope": p.scope, "number": n}
                  for p, n in s.execute(select(VersionPin, ProcessVersion.number)
                                        .join(ProcessVersion, ProcessVersion.id == VersionPin.version_id)
                                        .where(VersionPin.process_id.in_(ids))
                                        .order_by(VersionPin.process_id, VersionPin.scope))]
        open_ = s.scalar(select(func.count()).select_from(Instance).where(Instance.process_id.in_(ids),
                                                                          Instance.status.in_(OPEN))) or 0
    changes = [m for m in members if m["active_number"] != m["number"]]
    rollback = any(m["active_number"] is not None and m["active_number"] > m["number"] for m in changes)
    return {"members": members, "changes": changes, "pins": pinned, "open": int(open_), "rollback": rollback}


def activate_bundle(db: Database, process_id: str, number: int, actor: str | None = None) -> list[dict]:
    """Activate a version and the versions deployed with it, in one transaction (a rollback when
    they are older than the active ones). Returns the bundle."""
    members = bundle_of(db, process_id, number)
    bundle = [{"process_id": x["process_id"], "number": x["number"]} for x in members]
    with db.write() as s:
        for m in members:
            _activate_in(s, m["process_id"], m["number"], actor, bundle=bundle)
    return members


def pin_bundle(db: Database, process_id: str, scope: str, number: int, actor: str | None = None,
               label: str | None = None) -> list[dict]:
    """Pin a version and the versions deployed with it for a scope (a pilot of the whole bundle)."""
    members = bundle_of(db, process_id, number)
    for m in members:
        pin(db, m["process_id"], scope, m["number"], actor=actor, label=label)
    return members


# ---- the administrator's landing page ---------------------------------------------------------------
def health(db: Database, limit: int = 20) -> dict:
    """Incidents (failed instances, newest first) and the scheduler's health. There is no record
    of the last sweep, so the timer side is: how many instances have a timer due now (a sweep
    that runs clears them within seconds) and when a timer last fired."""
    from .models import InstanceEvent

    now = clock.now()
    with db.read() as s:
        failed = [{"id": i.id, "process_id": i.process_id, "business_key": i.business_key, "at": i.updated_at,
                   "task": i.error_task, "error": (i.error_message or "")[:300]}
                  for i in s.scalars(select(Instance).where(Instance.status == "failed")
                                     .order_by(Instance.updated_at.desc()).limit(limit))]
        n_failed = s.scalar(select(func.count()).select_from(Instance).where(Instance.status == "failed")) or 0
        due = s.scalar(select(func.count()).select_from(Instance).where(
            Instance.status == "running", Instance.next_timer_at.is_not(None), Instance.next_timer_at <= now)) or 0
        oldest_due = s.scalar(select(func.min(Instance.next_timer_at)).where(
            Instance.status == "running", Instance.next_timer_at.is_not(None), Instance.next_timer_at <= now))
        last_fired = s.scalar(select(func.max(InstanceEvent.at)).where(InstanceEvent.kind == "timer_fired"))
    return {"failed": failed, "failed_total": int(n_failed), "due_timers": int(due), "oldest_due": oldest_due,
            "last_timer_fired": last_fired, "now": now}
