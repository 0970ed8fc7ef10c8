"""The case's process diagrams (its own version's BPMN) with each element's latest state."""
from __future__ import annotations

from sqlalchemy import select

from engine import xmlsafe
from engine.errors import NotFound
from engine.models import Instance, ProcessVersion
from grid.cases import attachments
from grid.cases.models import DisputeCase

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
LEVEL_PROCESS = "handle_level"  # called once per level; the case page shows the current level's run
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
            starts = {el.get("id") for el in p.iter(f"{{{BPMN_NS}}}startEvent")}
            procs[p.get("id")] = {"process_id": p.get("id"), "name": p.get("name") or p.get("id"), "xml": text,
                                  "file": fname, "ids": ids, "called": [c for c in called if c], "starts": starts}
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
    run = _current_run(svc, c.instance_id)
    out = []
    for d in _version_diagrams(svc, version_id):
        mine = {k: v for k, v in states.items() if k in d["ids"]}
        if d["process_id"] == LEVEL_PROCESS and run is not None:
            mine = _only_run(mine, run, d["starts"])
        out.append({"process_id": d["process_id"], "name": d["name"], "xml": d["xml"], "states": mine,
                    "level": run["level"] if run and d["process_id"] == LEVEL_PROCESS else None})
    return out


def _current_run(svc, instance_id: int) -> dict | None:
    """The latest run of the level process (the level the case is at now): when it began and
    which of its elements finished since. None while the case was only ever at one level, when
    every state the engine reports belongs to that one run."""
    events = svc.runtime.history(instance_id)
    entered = [e for e in events if e.kind == "level_entered"]
    if len(entered) < 2:
        return None
    last = entered[-1]
    done = {e.task for e in events if e.at >= last.at and e.seq >= last.seq and e.task
            and e.kind in ("task_completed", "level_entered")}
    return {"since": last.at, "done": done, "level": (last.data or {}).get("level")}


def _only_run(states: dict[str, str], run: dict, starts: set[str]) -> dict[str, str]:
    """The element states of the current run only: what is open or waiting now, and what
    completed since the run began (earlier levels' runs completed the same elements)."""
    out = {}
    for bid, state in states.items():
        if state != "COMPLETED":
            out[bid] = state
        elif bid in run["done"] or bid in starts:
            out[bid] = state
    return out
