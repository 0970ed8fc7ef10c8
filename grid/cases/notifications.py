"""Notifications: who is told what when a case step happens, in the step's own transaction.

The listener (installed after the case listener, so it reads the updated case row) turns a
step into notifications:

- a new task: its assignee, or everyone holding the task's role at its unit;
- urged (督办/催办): the holders of the open tasks at the urged level;
- warning / overdue: the level's handlers (open tasks, or the ones the overdue just closed) and
  its supervisors;
- returned / transferred / extension_decided (from the return, transfer and extension paths):
  the people the event names (`users`, `user`, `requested_by`), else the handlers at its unit.

One person gets at most one notification per step and case (the most pressing kind). Each
notification is an in-app row, plus an outbox message per channel the person wants that kind
by (`grid.cases.notification_prefs`); the scheduler's outbox job sends those with retries, never
the step. Reading: unread count, a page of one's own notifications, mark read, and the open
urges of a set of tasks (shown on the handler's task card until the task is done).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from engine import clock, outbox
from engine.models import WorkItem
from engine.runtime import Step
from grid.cases import badges
from grid.cases import notification_prefs as prefs
from grid.cases.models import CaseRecord, DisputeCase, case_by_no
from grid.cases.notification_models import Notification
from grid.org import service as org
from grid.org.models import OrgUnit, Staff

PROCESS_ID = "dispute_case"
# emitted event kind -> notification kind
EVENT_KINDS = {"urged": "urged", "warning": "warning", "accountability": "overdue", "returned": "returned",
               "transferred": "transferred", "extension_decided": "extension_decided",
               "reassigned": "transferred"}  # 改派: the new holder is told
PRIORITY = ("overdue", "urged", "warning", "returned", "transferred", "extension_decided", "new_task")
SUPERVISOR = "supervisor"

# outbound texts (in-app texts are rendered by the web layer from `args`, in the reader's language)
TEXTS = {
    "zh_CN": {
        "new_task": ("新任务", "您有新任务：{task}（案件 {case_no}）"),
        "urged": ("督办催办", "案件 {case_no} 被督办催办：{comment}"),
        "warning": ("办理预警", "案件 {case_no} 已到预警时间，请抓紧办理"),
        "overdue": ("办理超期", "案件 {case_no} 已超期，已记录问责"),
        "returned": ("案件退回", "案件 {case_no} 被退回：{comment}"),
        "transferred": ("案件改派", "案件 {case_no} 已改派/转办给您"),
        "extension_decided": ("延期审批", "案件 {case_no} 的延期申请已有结果：{result}"),
    },
    "en": {
        "new_task": ("New task", "New task: {task} (case {case_no})"),
        "urged": ("Urged", "Case {case_no} was urged: {comment}"),
        "warning": ("Warning", "Case {case_no} reached its warning time"),
        "overdue": ("Overdue", "Case {case_no} is overdue; accountability was recorded"),
        "returned": ("Returned", "Case {case_no} was returned: {comment}"),
        "transferred": ("Transferred", "Case {case_no} was transferred to you"),
        "extension_decided": ("Extension decided", "The extension for case {case_no} was decided: {result}"),
    },
}


class _Args(dict):
    def __missing__(self, key: str) -> str:
        return ""


def message_text(kind: str, args: dict, locale: str = "zh_CN") -> tuple[str, str]:
    """(subject, text) of an outbound message, in the recipient's language."""
    table = TEXTS.get(locale) or TEXTS["zh_CN"]
    subject, text = table.get(kind, (kind, "{case_no}"))
    return "【网格通】" + subject if locale == "zh_CN" else "[Gridflow] " + subject, text.format_map(_Args(args))


# ---- recipients ------------------------------------------------------------------------------
def _holders(s: Session, items: list[WorkItem], skip_roles: tuple[str, ...] = (SUPERVISOR,)) -> dict[str, str]:
    """staff id -> task guid for the people who hold these work items."""
    out: dict[str, str] = {}
    for wi in items:
        if wi.role in skip_roles:
            continue
        if wi.user_id:
            out.setdefault(wi.user_id, wi.task_guid)
        elif wi.unit_id and wi.role:
            for p in org.staff_for(s, wi.unit_id, wi.role):
                out.setdefault(p.id, wi.task_guid)
    return out


def _level_items(s: Session, instance_id: int, unit: str | None, also: list[str]) -> list[WorkItem]:
    """The instance's open work items at `unit`, and those of `also` (guids the step closed)."""
    if not unit:
        return []
    cond = WorkItem.state == "open"
    if also:
        cond = or_(cond, WorkItem.task_guid.in_(also))
    return list(s.scalars(select(WorkItem).where(WorkItem.instance_id == instance_id, WorkItem.unit_id == unit, cond)
                          .order_by(WorkItem.id)))


def _supervisors(s: Session, unit: str | None) -> dict[str, str | None]:
    return {p.id: None for p in org.staff_for(s, unit, SUPERVISOR)} if unit else {}


def _named(data: dict) -> list[str]:
    named: list[str] = []
    for key in ("users", "assignees", "user", "to_user", "requested_by"):
        v = data.get(key)
        named.extend(str(x) for x in (v if isinstance(v, list) else [v]) if x)
    return named


def _event_recipients(s: Session, step: Step, kind: str, data: dict) -> dict[str, str | None]:
    unit = data.get("to_unit") or data.get("unit")
    if kind == "urged":
        return dict(_holders(s, _level_items(s, step.instance_id, unit, [])))
    if kind in ("warning", "overdue"):
        also = step.closed if kind == "overdue" else []
        return {**_holders(s, _level_items(s, step.instance_id, unit, also)), **_supervisors(s, unit)}
    named = _named(data)
    if named:
        return dict.fromkeys(named)
    return dict(_holders(s, _level_items(s, step.instance_id, unit, [])))


# ---- writing ---------------------------------------------------------------------------------
def _unit_name(s: Session, code: str | None) -> str | None:
    return s.scalar(select(OrgUnit.name).where(OrgUnit.code == code)) if code else None


def notify(s: Session, staff_id: str, kind: str, c: DisputeCase | None, task_guid: str | None, args: dict) -> None:
    """One notification: the in-app row and the outbound messages the person wants, queued."""
    now = clock.now()
    s.add(Notification(staff_id=staff_id, kind=kind, case_id=c.id if c else None, task_guid=task_guid,
                       created_at=now, read_at=None, args=args))
    targets = prefs.outbound(s, staff_id, kind)
    if not targets:
        return
    locale = s.scalar(select(Staff.locale).where(Staff.id == staff_id)) or "zh_CN"
    subject, text = message_text(kind, args, locale)
    for channel, address, quiet in targets:
        msg = {"id": str(uuid.uuid4()), "to": address, "subject": subject, "text": text, "kind": kind}
        outbox.add_message(s, channel, staff_id, msg, quiet=quiet, kind=f"notify.{kind}")


def on_step(s: Session, step: Step) -> None:
    """Listener (after the case listener): the notifications of this step, same transaction."""
    if not step.business_key or step.process_id != PROCESS_ID:
        return
    c = case_by_no(s, step.business_key)
    if c is None:
        return
    names: dict[str | None, str | None] = {}

    def unit_name(code: str | None) -> str | None:  # once per unit and step
        if code not in names:
            names[code] = _unit_name(s, code)
        return names[code]

    base = {"case_no": c.case_no, "category": c.category}
    if step.actor:
        base["by"] = s.scalar(select(Staff.name).where(Staff.id == step.actor)) or step.actor
    chosen: dict[str, tuple[str, str | None, dict]] = {}  # staff -> (kind, task guid, args)

    def offer(staff_id: str, kind: str, guid: str | None, args: dict) -> None:
        if staff_id == step.actor:
            return  # one is not told of what one just did
        have = chosen.get(staff_id)
        if have is None or PRIORITY.index(kind) < PRIORITY.index(have[0]):
            chosen[staff_id] = (kind, guid or (have[1] if have else None), args)
        elif have[1] is None and guid:
            chosen[staff_id] = (have[0], guid, have[2])

    for ev in step.emitted:
        kind = EVENT_KINDS.get(ev["kind"])
        if kind is None:
            continue
        d = ev.get("data") or {}
        unit = d.get("to_unit") or d.get("unit") or c.current_unit
        args = {**base, "level": d.get("to_level") or d.get("level"), "unit": unit, "unit_name": unit_name(unit)}
        for key in ("comment", "reason", "result", "approved", "new_due", "due_at"):
            if isinstance(d.get(key), (str, int, float, bool)):
                args[key] = d[key]
        for staff_id, guid in _event_recipients(s, step, kind, d).items():
            offer(staff_id, kind, guid, args)
    for item in step.opened:
        args = {**base, "task": item.get("name"), "task_spec": item.get("task_spec"), "unit": item.get("unit_id"),
                "unit_name": unit_name(item.get("unit_id"))}
        if item.get("due_at"):
            args["due_at"] = item["due_at"].isoformat() if isinstance(item["due_at"], datetime) else item["due_at"]
        wi = WorkItem(user_id=item.get("user_id"), unit_id=item.get("unit_id"), role=item.get("role"),
                      task_guid=item["task_guid"])
        for staff_id, guid in _holders(s, [wi], skip_roles=()).items():
            offer(staff_id, "new_task", guid, args)
    for staff_id, (kind, guid, args) in chosen.items():
        notify(s, staff_id, kind, c, guid, args)


def notify_urge(s: Session, c: DisputeCase, actor: str, comment: str) -> None:
    """An urge recorded outside a step (the 督办 task was already done): tell the level's
    handlers in the caller's transaction, as the listener does for a step's urge."""
    args = {"case_no": c.case_no, "category": c.category, "level": c.current_level, "unit": c.current_unit,
            "unit_name": _unit_name(s, c.current_unit), "comment": comment,
            "by": s.scalar(select(Staff.name).where(Staff.id == actor)) or actor}
    for staff_id, guid in _holders(s, _level_items(s, c.instance_id, c.current_unit, [])).items():
        if staff_id != actor:
            notify(s, staff_id, "urged", c, guid, args)


def install(svc) -> None:
    """Register the notification listener after the case listener (it reads the updated case row)."""
    if on_step not in svc.runtime.listeners:
        svc.runtime.listeners.append(on_step)


# ---- reading ---------------------------------------------------------------------------------
def unread_count(svc, staff_id: str) -> int:
    """How many of one's notifications are unread (the navigation badge)."""
    with svc.db.read() as s:
        return s.scalar(select(func.count()).select_from(Notification)
                        .where(Notification.staff_id == staff_id, Notification.read_at.is_(None))) or 0


@dataclass
class Item:
    id: int
    kind: str
    case_id: int | None
    task_guid: str | None
    created_at: datetime
    read_at: datetime | None
    args: dict
    case_visible: bool  # the case is still in the reader's jurisdiction (link it)
    task_open: bool  # the task is still open (link the task, not only the case)


def page(svc, staff_id: str, page_no: int = 1, per_page: int = 20, unread_only: bool = False) -> dict:
    """One's own notifications, newest first; `has_next` from reading one row past the page."""
    page_no, per_page = max(1, page_no), max(1, min(100, per_page))
    with svc.db.read() as s:
        q = select(Notification).where(Notification.staff_id == staff_id)
        if unread_only:
            q = q.where(Notification.read_at.is_(None))
        rows = list(s.scalars(q.order_by(Notification.id.desc()).limit(per_page + 1)
                              .offset((page_no - 1) * per_page)))
        has_next, rows = len(rows) > per_page, rows[:per_page]
        paths = org.jurisdiction_paths(s, staff_id)
        case_ids = {r.case_id for r in rows if r.case_id}
        case_paths = dict(s.execute(select(DisputeCase.id, DisputeCase.unit_path)
                                    .where(DisputeCase.id.in_(case_ids))).all()) if case_ids else {}
        guids = {r.task_guid for r in rows if r.task_guid}
        open_guids = set(s.scalars(select(WorkItem.task_guid).where(WorkItem.task_guid.in_(guids),
                                                                    WorkItem.state == "open"))) if guids else set()
        items = [Item(r.id, r.kind, r.case_id, r.task_guid, r.created_at, r.read_at, dict(r.args or {}),
                      bool(r.case_id and any(case_paths.get(r.case_id, "\x00").startswith(p) for p in paths)),
                      r.task_guid in open_guids) for r in rows]
    return {"items": items, "page": page_no, "has_next": has_next, "unread": unread_count(svc, staff_id)}


def mark_read(svc, staff_id: str, ids: list[int] | None = None) -> int:
    """Mark some (or, with None, all) of one's own notifications read; others' ids change nothing."""
    with svc.db.write() as s:
        q = update(Notification).where(Notification.staff_id == staff_id, Notification.read_at.is_(None))
        if ids is not None:
            if not ids:
                return 0
            q = q.where(Notification.id.in_(ids))
        return s.execute(q.values(read_at=clock.now())).rowcount or 0


@dataclass
class Urge:
    comment: str
    actor: str | None
    actor_name: str | None
    at: datetime


def open_urges(svc, staff_id: str, task_guids: list[str]) -> dict[str, list[Urge]]:
    """For each of these open tasks the person may see, the urges (督办/催办) made at its level
    since it opened, oldest first: shown on the task card until the task is done."""
    if not task_guids:
        return {}
    with svc.db.read() as s:
        rows = s.execute(select(WorkItem, DisputeCase).join(DisputeCase, DisputeCase.instance_id == WorkItem.instance_id)
                         .where(WorkItem.task_guid.in_(list(task_guids)[:500]), WorkItem.state == "open")).all()
        return _urges_in(s, staff_id, rows)


# what a task card's marks read of its work item and case (`task_marks`, `_urges_in`, `urges_of`)
_CARD_ITEM = (WorkItem.task_guid, WorkItem.task_spec, WorkItem.unit_id, WorkItem.role, WorkItem.user_id,
              WorkItem.state, WorkItem.created_at)
_CARD_CASE = (DisputeCase.id.label("id"), DisputeCase.current_unit, DisputeCase.unit_path, DisputeCase.status)


def task_marks(svc, staff_id: str, task_guids: list[str]) -> tuple[set[str], dict[str, list[Urge]]]:
    """A page's task cards in one read: the supervised ones (`badges.supervised(task_guids=...)`'s
    tasks) and the open urges of each (`open_urges`), from one read of their work items and cases."""
    if not task_guids:
        return set(), {}
    with svc.db.read() as s:
        return task_marks_in(s, staff_id, task_guids)


def task_marks_in(s: Session, staff_id: str, task_guids: list[str]) -> tuple[set[str], dict[str, list[Urge]]]:
    """`task_marks` in the caller's session (the inbox reads its cards' marks with its rows)."""
    if not task_guids:
        return set(), {}
    # plain rows, no ORM objects: one row serves as both the work item and the case (the
    # names do not clash: the work item's columns but its id, the case's id as `id`)
    rows = [(r, r) for r in s.execute(select(*_CARD_ITEM, *_CARD_CASE)
                                      .join(DisputeCase, DisputeCase.instance_id == WorkItem.instance_id)
                                      .where(WorkItem.task_guid.in_(list(task_guids))))]
    sup = badges.supervised_cases(s, list({c.id for _, c in rows}),
                                  {c.id: c.current_unit for _, c in rows if c.status == "open"})
    supervised = {wi.task_guid for wi, c in rows if wi.task_spec == badges.SUPERVISE_TASK
                  or (c.id in sup and wi.unit_id == c.current_unit)}
    first = set(list(task_guids)[:500])
    return supervised, _urges_in(s, staff_id, [(wi, c) for wi, c in rows
                                               if wi.state == "open" and wi.task_guid in first])


def _urges_in(s: Session, staff_id: str, rows: list) -> dict[str, list[Urge]]:
    out: dict[str, list[Urge]] = {}
    if not rows:
        return out
    paths = org.jurisdiction_paths(s, staff_id)
    roles = {(r.unit_code, r.role) for r in org.roles_of(s, staff_id)}
    seen = [(wi, c) for wi, c in rows
            if (wi.user_id == staff_id if wi.user_id else (wi.unit_id, wi.role) in roles)
            or any(c.unit_path.startswith(p) for p in paths)]
    if not seen:
        return out
    recs = list(s.scalars(select(CaseRecord).where(  # one read for every card, not one per card
        CaseRecord.case_id.in_({c.id for _, c in seen}), CaseRecord.kind == "urge",
        CaseRecord.at >= min(wi.created_at for wi, _ in seen)).order_by(CaseRecord.id)))
    actors = {r.actor for r in recs if r.actor}
    names = dict(s.execute(select(Staff.id, Staff.name).where(Staff.id.in_(actors))).all()) if actors else {}
    for wi, c in seen:
        mine = urges_of(wi, [r for r in recs if r.case_id == c.id], names)
        if mine:
            out[wi.task_guid] = mine
    return out


def urges_of(wi: WorkItem, records: list[CaseRecord], names: dict[str, str]) -> list[Urge]:
    """The urges among the records of the task's case (in id order) made at the task's level since
    it opened: what `open_urges` gives for one task, from records the caller already read."""
    return [Urge(str((r.data or {}).get("comment") or ""), r.actor, names.get(r.actor), r.at)
            for r in records if r.kind == "urge" and r.unit_code == wi.unit_id and r.at >= wi.created_at]
