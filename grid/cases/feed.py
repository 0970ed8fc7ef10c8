"""The case event feed: every case event becomes a CloudEvent in the outbox, in the step's own
transaction (so the feed never shows an event that was rolled back, nor misses one committed).

The public payload carries codes, levels, units, counts and times only; the personal variant
(for webhooks registered as personal, or pull clients with personal:read) adds the event's own
data (notes, comments, parties) and the case description and location.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from engine import outbox
from engine.runtime import Step
from grid.cases.models import DisputeCase, case_by_no

SOURCE = "/gridflow/cases"
TYPE_PREFIX = "cn.gridflow.case."
KINDS = {"level_entered": "level_entered", "dispatched": "dispatched", "escalated": "escalated",
         "warning": "warning", "supervision_opened": "supervision", "accountability": "accountability",
         "resolved": "resolved", "verified": "verified", "archived": "archived", "rework": "rework",
         "final_disposition": "final_disposition", "urged": "urge", "returned": "returned",
         "extension_requested": "extension_requested", "extension_decided": "extension_decided",
         "held": "held", "hold_reviewed": "hold_reviewed", "hold_released": "hold_released",
         "verify_overdue": "verify_overdue"}
PUBLIC_KEYS = ("level", "unit", "from_level", "from_unit", "to_level", "to_unit", "level_idx", "count", "result",
               "disposition", "duplicate_of", "outcome", "action", "due_at", "warn_at")


def _public(c: DisputeCase, data: dict) -> dict:
    out = {k: data[k] for k in PUBLIC_KEYS if k in data and isinstance(data[k], (str, int, float, bool, type(None)))}
    return {"case_no": c.case_no, "category": c.category, "grid": c.grid_code, "status": c.status,
            "current_level": c.current_level, "current_unit": c.current_unit, **out}


def _personal(c: DisputeCase, data: dict) -> dict:
    return {**_public(c, data), "event": data, "description": c.description,
            "location": {"text": c.location_text, "lat": c.lat, "lng": c.lng}, "parties": c.parties}


def _emit(s: Session, c: DisputeCase, kind: str, data: dict, step: Step) -> None:
    from engine import clock

    ev = outbox.cloud_event(TYPE_PREFIX + kind, SOURCE, c.case_no, _public(c, data), time=clock.now())
    ev["gridflowunitpath"] = c.unit_path  # extension attribute: jurisdiction filter for pull clients
    personal = {**ev, "data": _personal(c, data)}
    outbox.add(s, kind, ev, personal)


def on_step(s: Session, step: Step) -> None:
    """Listener (after the case listener): one feed event per case event of this step."""
    if not step.business_key or step.process_id != "dispute_case":
        return
    c = case_by_no(s, step.business_key)
    if c is None:
        return
    if any(e.get("kind") == "started" for e in step.events):
        _emit(s, c, "reported", {"level": None, "unit": c.grid_code}, step)
    for ev in step.emitted:
        kind = KINDS.get(ev["kind"], ev["kind"])
        _emit(s, c, kind, ev.get("data") or {}, step)


def install(svc) -> None:
    """Register the feed listener after the case listener (it reads the updated case row)."""
    if on_step not in svc.runtime.listeners:
        svc.runtime.listeners.append(on_step)
