"""Service functions the staff web app needs beyond `grid.cases`: accounts, page assemblies,
form validation with structured errors, labels from the deployed forms, and the case diagram.

Everything here checks jurisdiction (directly or through `grid.cases`) before returning data.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from engine import clock, xmlsafe
from engine.errors import InvalidData, NotFound
from engine.models import Instance, ProcessDefinition, ProcessVersion, WorkItem
from grid.cases import attachments
from grid.cases import service as cases
from grid.cases.models import CaseRecord, DisputeCase
from grid.errors import Forbidden
from grid.org import service as org
from grid.org.models import OrgUnit, Staff, StaffRole

LOCALES = ("zh_CN", "en")
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"


# ---- accounts --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RoleView:
    unit_code: str
    unit_name: str
    level: str
    role: str
    title: str | None


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    name: str
    locale: str
    roles: tuple[RoleView, ...]

    def has_role(self, *roles: str) -> bool:
        return any(r.role in roles for r in self.roles)

    @property
    def grids(self) -> list[RoleView]:
        return [r for r in self.roles if r.role == "grid_worker"]


def account(svc, staff_id: str) -> Account | None:
    """The signed-in person with their active roles, or None if the account is gone or disabled."""
    with svc.db.read() as s:
        st = s.get(Staff, staff_id)
        if st is None or not st.active:
            return None
        rows = s.execute(select(StaffRole.unit_code, OrgUnit.name, OrgUnit.level, StaffRole.role, StaffRole.title)
                         .join(OrgUnit, OrgUnit.code == StaffRole.unit_code)
                         .where(StaffRole.staff_id == staff_id, StaffRole.active.is_(True))
                         .order_by(StaffRole.id)).all()
    return Account(st.id, st.username, st.name, st.locale if st.locale in LOCALES else "zh_CN",
                   tuple(RoleView(*r) for r in rows))


def sign_in(svc, username: str, password: str) -> str | None:
    """Check a login (with the lockout of `org.authenticate`); the staff id, or None."""
    with svc.db.write() as s:
        st = org.authenticate(s, username or "", password or "", clock.now())
        return st.id if st is not None else None


def set_locale(svc, staff_id: str, locale: str) -> None:
    if locale not in LOCALES:
        raise InvalidData("unknown language", [{"path": "locale", "message": "unknown language", "validator": "enum"}])
    with svc.db.write() as s:
        st = s.get(Staff, staff_id)
        if st is None:
            raise NotFound("no such account")
        st.locale = locale


# ---- labels from the deployed forms ----------------------------------------------------------
@dataclass
class Labels:
    """Titles process designers gave in the forms: categories (from report.json) and forms."""

    categories: list[tuple[str, dict[str, str]]]
    forms: dict[str, dict[str, str]]

    def category(self, value: str | None, locale: str) -> str:
        for v, titles in self.categories:
            if v == value:
                return titles.get(_lang(locale)) or titles.get("zh") or v
        return value or ""

    def form(self, name: str | None, locale: str, fallback: str | None = None) -> str:
        titles = self.forms.get(name or "")
        if not titles:
            return fallback or name or ""
        return titles.get(_lang(locale)) or titles.get("zh") or fallback or ""


def _lang(locale: str) -> str:
    return "zh" if str(locale).startswith("zh") else str(locale).split("_")[0]


def titles_of(node: dict) -> dict[str, str]:
    """{'zh': title, 'en': x-title.en, ...} of a schema node."""
    out = {"zh": node.get("title", "")}
    out.update(node.get("x-title") or {})
    return out


def enum_titles(node: dict, lang: str) -> list[str]:
    values = node.get("enum") or []
    titles = (node.get("x-enum-titles") or {}).get(lang) or (node.get("x-enum-titles") or {}).get("zh")
    if not titles or len(titles) != len(values):
        return [str(v) for v in values]
    return list(titles)


_labels_cache: dict[tuple, Labels] = {}
_labels_lock = threading.Lock()


def labels(svc) -> Labels:
    """Labels from the deployed versions (cached until a new version is deployed or activated)."""
    with svc.db.read() as s:
        key = (id(svc.db), s.scalar(select(func.max(ProcessVersion.id))),
               s.scalar(select(ProcessDefinition.active_version_id)
                        .where(ProcessDefinition.process_id == cases.PROCESS_ID)))
        cached = _labels_cache.get(key)
        if cached is not None:
            return cached
        forms: dict[str, dict[str, str]] = {}
        for vforms in s.scalars(select(ProcessVersion.forms).order_by(ProcessVersion.id)):
            for name, schema in (vforms or {}).items():
                forms[name] = titles_of(schema)
        categories: list[tuple[str, dict[str, str]]] = []
        if key[2] is not None:
            report = (s.get(ProcessVersion, key[2]).forms or {}).get(cases.REPORT_FORM) or {}
            node = (report.get("properties") or {}).get("category") or {}
            values = node.get("enum") or []
            per_lang = {lang: enum_titles(node, lang) for lang in ("zh", *(node.get("x-enum-titles") or {}))}
            categories = [(v, {lang: t[i] for lang, t in per_lang.items()}) for i, v in enumerate(values)]
    result = Labels(categories, forms)
    with _labels_lock:
        if len(_labels_cache) > 32:
            _labels_cache.clear()
        _labels_cache[key] = result
    return result


# ---- form validation -------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldError:
    """One validation problem on a field: `path` is the list of keys/indices to the field."""

    path: tuple
    validator: str
    value: Any = None  # the keyword's value (e.g. 5 for minLength)
    message: str = ""


def validate(schema: dict, data: dict) -> list[FieldError]:
    """Every error of `data` against the form schema, each pointed at the field it concerns
    (a missing required property points at that property, not at its parent)."""
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    out: list[FieldError] = []
    for e in validator.iter_errors(data):
        path = tuple(e.absolute_path)
        if e.validator == "required":
            missing = [p for p in e.validator_value if not isinstance(e.instance, dict) or p not in e.instance]
            out.extend(FieldError(path + (p,), "required", None, e.message) for p in missing)
        elif e.validator == "dependentRequired":
            out.append(FieldError(path, "required", None, e.message))
        else:
            out.append(FieldError(path, str(e.validator), e.validator_value, e.message))
    seen: set = set()
    unique = []
    for fe in sorted(out, key=lambda x: [str(p) for p in x.path]):
        if (fe.path, fe.validator) not in seen:
            seen.add((fe.path, fe.validator))
            unique.append(fe)
    return unique


def errors_from(exc: InvalidData) -> list[FieldError]:
    """Field errors from an InvalidData raised by the engine or the service layer."""
    import re

    out = []
    for e in exc.errors or []:
        path = tuple(int(p) if p.isdigit() else p for p in str(e.get("path") or "").split("/") if p)
        validator = e.get("validator") or "invalid"
        if validator == "required":
            m = re.match(r"'(.+?)' is a required property", e.get("message", ""))
            if m:
                path = path + (m.group(1),)
        out.append(FieldError(path, validator, e.get("code"), e.get("message", "")))
    return out


# ---- reporting -------------------------------------------------------------------------------
@dataclass
class ReportForm:
    grids: list[tuple[str, str]]  # (code, name)
    version_id: int
    schema: dict


def report_form(svc, staff_id: str, grid_code: str | None = None) -> ReportForm:
    """The report form of the version a new case in this grid would use. Grid workers only."""
    with svc.db.read() as s:
        grids = [(r.unit_code, name) for r, name in s.execute(
            select(StaffRole, OrgUnit.name).join(OrgUnit, OrgUnit.code == StaffRole.unit_code)
            .where(StaffRole.staff_id == staff_id, StaffRole.active.is_(True), StaffRole.role == "grid_worker")
            .order_by(StaffRole.id)).all()]
        if not grids:
            raise Forbidden("only grid workers report disputes")
        code = grid_code if grid_code in dict(grids) else grids[0][0]
        unit = s.get(OrgUnit, code)
        vid = svc.runtime.resolve_version(s, cases.PROCESS_ID, scopes=cases.scopes_for(unit.path))
    return ReportForm(grids, vid, svc.runtime.form_schema(vid, cases.REPORT_FORM) or {})


# ---- tasks -----------------------------------------------------------------------------------
@dataclass
class TaskPage:
    item: WorkItem
    case: DisputeCase | None
    lock_version: int
    version_id: int
    schema: dict | None
    can_act: bool
    staff_options: dict[str, list[tuple[str, str]]]  # field -> [(staff id, label)]
    assigned_to: str  # who the task is for, in words (person name or role@unit)
    unit_name: str
    closed_by: str | None


def task_page(svc, staff_id: str, task_guid: str) -> TaskPage:
    """Everything the task page shows; NotFound unless the task is theirs or in their jurisdiction."""
    wi = cases.work_item(svc, staff_id, task_guid)
    with svc.db.read() as s:
        inst = s.get(Instance, wi.instance_id)
        c = s.scalar(select(DisputeCase).where(DisputeCase.instance_id == wi.instance_id))
        can = wi.state == "open" and cases.can_act(s, staff_id, wi)
        unit_name = s.scalar(select(OrgUnit.name).where(OrgUnit.code == wi.unit_id)) or (wi.unit_id or "")
        ids = [i for i in (wi.user_id, wi.closed_by) if i]
        names = dict(s.execute(select(Staff.id, Staff.name).where(Staff.id.in_(ids))).all()) if ids else {}
    schema = svc.runtime.form_schema(inst.version_id, wi.form)
    options: dict[str, list[tuple[str, str]]] = {}
    if can and schema:
        for name, prop in (schema.get("properties") or {}).items():
            if prop.get("x-widget") == "staff":
                with svc.db.read() as s:
                    people = org.staff_for(s, wi.unit_id, prop.get("x-staff-role") or "mediator")
                    titles = dict(s.execute(select(StaffRole.staff_id, StaffRole.title).where(
                        StaffRole.unit_code == wi.unit_id, StaffRole.active.is_(True),
                        StaffRole.staff_id.in_([p.id for p in people]))).all()) if people else {}
                options[name] = [(p.id, p.name + (f"（{titles[p.id]}）" if titles.get(p.id) else "")) for p in people]
    assigned = names.get(wi.user_id, wi.user_id) if wi.user_id else f"{wi.role}@{unit_name}"
    return TaskPage(wi, c, inst.lock_version, inst.version_id, schema, can, options, assigned, unit_name,
                    names.get(wi.closed_by, wi.closed_by) if wi.closed_by else None)


def check_stale(svc, task_guid: str) -> bool:
    """After a Conflict: True if the task is still open (the case merely moved on), False if it is done."""
    with svc.db.read() as s:
        state = s.scalar(select(WorkItem.state).where(WorkItem.task_guid == task_guid))
    return state == "open"


# ---- case page -------------------------------------------------------------------------------
@dataclass
class TimelineEntry:
    at: datetime
    actor: str | None  # staff id, "timer" or None
    kind: str
    task: str | None
    form: str | None
    data: dict = field(default_factory=dict)


@dataclass
class CasePage:
    case: DisputeCase
    tasks: list[WorkItem]
    records: list[CaseRecord]
    timeline: list[TimelineEntry]
    names: dict[str, str]
    units: dict[str, str]
    instance: Instance | None
    files: list[attachments.StoredFile]
    phones_visible: bool
    version_id: int | None
    reporter: str


def case_page(svc, staff_id: str, case_id: int) -> CasePage:
    """The case with its open tasks, records, timeline (audit log), attachments and the names
    and unit names the page needs. NotFound outside the person's jurisdiction."""
    d = cases.case_detail(svc, staff_id, case_id)
    c: DisputeCase = d["case"]
    open_items = d["tasks"]
    events = [e for e in d["timeline"] if e.kind not in ("timer_fired", "event_thrown")]  # engine detail
    # an urge recorded without a supervision task to complete has no audit event of its own
    urges = [r for r in d["records"] if r.kind == "urge" and "level" not in (r.data or {})]
    payloads = [e.data or {} for e in events]
    people = {x for p in payloads for x in (p.get("assignees") or []) + ((p.get("data") or {}).get("assignees") or [])
              if isinstance(x, str)} | {r.actor for r in urges if r.actor}
    people -= set(d["names"])
    unit_codes = {x for p in payloads for x in (p.get("unit"), p.get("from_unit"), p.get("to_unit"))
                  if isinstance(x, str)} - set(d["units"])
    names, units = dict(d["names"]), dict(d["units"])
    with svc.db.read() as s:
        forms = dict(s.execute(select(WorkItem.task_guid, WorkItem.form)
                               .where(WorkItem.instance_id == c.instance_id)).all()) if c.instance_id else {}
        phones = c.reporter_id == staff_id or any(cases.can_act(s, staff_id, w) for w in open_items)
        if people:
            names.update(dict(s.execute(select(Staff.id, Staff.name).where(Staff.id.in_(people))).all()))
        if unit_codes:
            units.update(dict(s.execute(select(OrgUnit.code, OrgUnit.name).where(OrgUnit.code.in_(unit_codes))).all()))
    timeline = [TimelineEntry(e.at, e.actor, e.kind, e.task, forms.get(p.get("guid")), p)
                for e, p in zip(events, payloads, strict=True)]
    timeline += [TimelineEntry(r.at, r.actor, "urge_recorded", None, None, r.data or {}) for r in urges]
    timeline.sort(key=lambda t: t.at)
    inst = d["instance"]
    return CasePage(c, open_items, d["records"], timeline, names, units, inst, attachments.for_case(svc, c.id), phones,
                    inst.version_id if inst else None, names.get(c.reporter_id, c.reporter_id))


def mask_phone(phone: str | None) -> str:
    """13800000001 -> 138****0001; short numbers keep only their last two digits."""
    if not phone:
        return ""
    digits = str(phone).strip()
    if len(digits) >= 8:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return "*" * max(len(digits) - 2, 1) + digits[-2:]


# ---- diagram ---------------------------------------------------------------------------------
_diagram_cache: dict[int, list[dict]] = {}


def _version_diagrams(svc, version_id: int) -> list[dict]:
    """[{process_id, name, xml, ids}] for the version's process and the processes it calls."""
    cached = _diagram_cache.get(version_id)
    if cached is not None:
        return cached
    with svc.db.read() as s:
        v = s.get(ProcessVersion, version_id)
        if v is None:
            raise NotFound("no such version")
        files = dict(v.files or {})
        main = v.process_id
    procs: dict[str, dict] = {}
    for fname, text in files.items():
        if not fname.endswith(".bpmn"):
            continue
        root = xmlsafe.parse(text, fname)
        for p in root.iter(f"{{{BPMN_NS}}}process"):
            ids = {el.get("id") for el in p.iter() if el.get("id")}
            called = [el.get("calledElement") for el in p.iter(f"{{{BPMN_NS}}}callActivity")]
            procs[p.get("id")] = {"process_id": p.get("id"), "name": p.get("name") or p.get("id"), "xml": text,
                                  "file": fname, "ids": ids, "called": [c for c in called if c]}
    order, todo = [], [main]
    while todo:
        pid = todo.pop(0)
        if pid in procs and pid not in [o["process_id"] for o in order]:
            order.append(procs[pid])
            todo.extend(procs[pid]["called"])
    _diagram_cache[version_id] = order
    return order


def diagrams(svc, staff_id: str, case_id: int) -> list[dict]:
    """The case's own version's diagrams (main process first, then called ones) with each
    element's latest state: for highlighting the current task and marking the completed path."""
    with svc.db.read() as s:
        c = s.get(DisputeCase, case_id)
        if c is None or c.instance_id is None or not attachments.may_see_case(s, staff_id, c):
            raise NotFound("no such case")
        version_id = s.scalar(select(Instance.version_id).where(Instance.id == c.instance_id))
    states = svc.runtime.task_states(c.instance_id)
    return [{"process_id": d["process_id"], "name": d["name"], "xml": d["xml"],
             "states": {k: v for k, v in states.items() if k in d["ids"]}}
            for d in _version_diagrams(svc, version_id)]


# ---- lists -----------------------------------------------------------------------------------
def unit_names(svc, codes) -> dict[str, str]:
    codes = [c for c in set(codes) if c]
    return cases.unit_names(svc, codes) if codes else {}


def staff_names(svc, ids) -> dict[str, str]:
    ids = [i for i in set(ids) if i]
    if not ids:
        return {}
    with svc.db.read() as s:
        return dict(s.execute(select(Staff.id, Staff.name).where(Staff.id.in_(ids))).all())


def archive_units(svc, staff_id: str) -> list[tuple[str, str, int]]:
    """Units to filter the archive by: the person's own units and the ones directly below them."""
    with svc.db.read() as s:
        mine = list(s.scalars(select(OrgUnit).join(StaffRole, StaffRole.unit_code == OrgUnit.code)
                              .where(StaffRole.staff_id == staff_id, StaffRole.active.is_(True))
                              .order_by(OrgUnit.path)))
        out: dict[str, tuple[str, str, int]] = {}
        for u in mine:
            out.setdefault(u.code, (u.code, u.name, 0))
            for ch in org.children(s, u.code):
                out.setdefault(ch.code, (ch.code, ch.name, 1))
    return list(out.values())


def case_of_instance(svc, staff_id: str, instance_id: int) -> DisputeCase:
    with svc.db.read() as s:
        c = s.scalar(select(DisputeCase).where(DisputeCase.instance_id == instance_id))
        if c is None or not attachments.may_see_case(s, staff_id, c):
            raise NotFound("no such case")
        return c
