"""Comparing two versions for people: tasks, timers, time limits (decision rules), forms and
the diagrams with what changed marked, plus a plain-text rendering for the CLI."""
from __future__ import annotations

from SpiffWorkflow.bpmn.util.diff import SpecDiff
from sqlalchemy import select

from .. import xmlsafe
from ..errors import NotFound
from ..models import ProcessVersion
from ..runtime import Runtime
from ..serializer import SERIALIZER
from .labels import spec_name

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"


def _task_kind(conv: dict) -> str:
    return conv.get("typename", "")


def _visible(spec) -> bool:
    bid = getattr(spec, "bpmn_id", None)
    return bool(bid) and spec.name == bid


def _props(conv: dict) -> dict:
    return ((conv.get("extensions") or {}).get("properties") or {})


def _describe_change(attr: str, c1: dict, c2: dict) -> str:
    if attr == "outputs":
        return f"next: {', '.join(c1.get('outputs') or []) or '-'} → {', '.join(c2.get('outputs') or []) or '-'}"
    if attr == "inputs":
        return f"comes from: {', '.join(c1.get('inputs') or []) or '-'} → {', '.join(c2.get('inputs') or []) or '-'}"
    if attr == "extensions":
        p1, p2 = _props(c1), _props(c2)
        bits = [f"{k}: {p1.get(k, '-')} → {p2.get(k, '-')}" for k in sorted(set(p1) | set(p2)) if p1.get(k) != p2.get(k)]
        return "properties " + ("; ".join(bits) if bits else "changed")
    if attr == "event_definition":
        e1, e2 = c1.get("event_definition") or {}, c2.get("event_definition") or {}
        if e1.get("expression") != e2.get("expression"):
            return f"timer: {e1.get('expression')} → {e2.get('expression')}"
        return "event definition changed"
    if attr == "decision_table":
        return "decision table rules changed (see time limits)"
    if attr == "bpmn_name":
        return f"name: {c1.get('bpmn_name')} → {c2.get('bpmn_name')}"
    if attr in ("script", "prescript", "postscript"):
        return f"{attr} changed"
    if attr == "cond_task_specs":
        return "conditions changed"
    return f"{attr} changed"


def _timer_expr(conv: dict) -> str | None:
    ed = conv.get("event_definition") or {}
    if "Timer" in (ed.get("typename") or "") or ed.get("typename") in ("TimeDateEventDefinition",
                                                                        "DurationTimerEventDefinition",
                                                                        "CycleTimerEventDefinition"):
        return ed.get("expression")
    return None


def _rule_rows(dt: dict) -> dict[str, dict]:
    outs = {o["id"]: o.get("name") or o.get("label") or o["id"] for o in dt.get("outputs") or []}
    ins = {i["id"]: i.get("expression") or i.get("label") or i["id"] for i in dt.get("inputs") or []}
    rows = {}
    for r in dt.get("rules") or []:
        rows[r["id"]] = {
            "description": r.get("description") or "",
            "inputs": {ins.get(e["input_id"], e["input_id"]): " ".join(e.get("lhs") or []) for e in r.get("input_entries") or []},
            "outputs": {outs.get(e["output_id"], e["output_id"]): e.get("text") for e in r.get("output_entries") or []},
        }
    return rows


def _diff_decisions(task_id: str, c1: dict, c2: dict) -> list[dict]:
    r1, r2 = _rule_rows(c1.get("decision_table") or {}), _rule_rows(c2.get("decision_table") or {})
    out = []
    for rid in list(r1) + [r for r in r2 if r not in r1]:
        a, b = r1.get(rid), r2.get(rid)
        if a is None or b is None:
            row = a or b
            out.append({"task": task_id, "rule": rid, "description": row["description"], "inputs": row["inputs"],
                        "output": None, "before": None if a is None else "rule", "after": None if b is None else "rule",
                        "change": "added" if a is None else "removed"})
            continue
        if a["inputs"] != b["inputs"]:
            out.append({"task": task_id, "rule": rid, "description": b["description"], "inputs": b["inputs"],
                        "output": "(inputs)", "before": a["inputs"], "after": b["inputs"], "change": "changed"})
        for name in list(a["outputs"]) + [n for n in b["outputs"] if n not in a["outputs"]]:
            if a["outputs"].get(name) != b["outputs"].get(name):
                out.append({"task": task_id, "rule": rid, "description": b["description"], "inputs": b["inputs"],
                            "output": name, "before": a["outputs"].get(name), "after": b["outputs"].get(name),
                            "change": "changed"})
    return out


def _diff_forms(f1: dict, f2: dict) -> dict:
    out = {"added": sorted(set(f2) - set(f1)), "removed": sorted(set(f1) - set(f2)), "changed": []}
    for name in sorted(set(f1) & set(f2)):
        a, b = f1[name], f2[name]
        if a == b:
            continue
        details = []
        pa, pb = a.get("properties") or {}, b.get("properties") or {}
        details += [f"field added: {k}" for k in pb if k not in pa]
        details += [f"field removed: {k}" for k in pa if k not in pb]
        details += [f"field changed: {k}" for k in pa if k in pb and pa[k] != pb[k]]
        ra, rb = set(a.get("required") or []), set(b.get("required") or [])
        details += [f"now required: {k}" for k in sorted(rb - ra)]
        details += [f"no longer required: {k}" for k in sorted(ra - rb)]
        if a.get("title") != b.get("title"):
            details.append(f"title: {a.get('title')} → {b.get('title')}")
        rest = {k for k in set(a) | set(b) if k not in ("properties", "required", "title") and a.get(k) != b.get(k)}
        details += [f"{k} changed" for k in sorted(rest)]
        out["changed"].append({"name": name, "details": details or ["changed"]})
    return out


def _bpmn_files(v: ProcessVersion, names: set[str]) -> dict[str, tuple[str, set[str], dict]]:
    """BPMN files of a version that define one of `names`: file -> (xml, process ids, flows)."""
    out = {}
    for fname, text in (v.files or {}).items():
        if not fname.endswith(".bpmn"):
            continue
        try:
            root = xmlsafe.parse(text.encode("utf-8"), fname)
        except Exception:  # noqa: BLE001
            continue
        pids = {el.get("id") for el in root.iter(f"{{{BPMN_NS}}}process")}
        if not pids & names:
            continue
        flows = {}
        for el in root.iter(f"{{{BPMN_NS}}}sequenceFlow"):
            cond = el.find(f"{{{BPMN_NS}}}conditionExpression")
            flows[el.get("id")] = (el.get("sourceRef"), el.get("targetRef"),
                                   (cond.text or "").strip() if cond is not None else None)
        out[fname] = (text, pids, flows)
    return out


def compare(rt: Runtime, process_id: str, a_number: int, b_number: int) -> dict:
    """What changed from version a to version b: tasks, timers, time limits, forms and diagrams."""
    with rt.db.read() as s:
        va = s.scalar(select(ProcessVersion).where(ProcessVersion.process_id == process_id,
                                                   ProcessVersion.number == a_number))
        vb = s.scalar(select(ProcessVersion).where(ProcessVersion.process_id == process_id,
                                                   ProcessVersion.number == b_number))
        if va is None or vb is None:
            raise NotFound(f"{process_id} has no version {a_number if va is None else b_number}")
        spec1, deps1, forms1, _p = rt.specs(s, va.id)
        spec2, deps2, forms2, _p = rt.specs(s, vb.id)
    reg = SERIALIZER.registry
    processes, timers, limits = [], [], []
    markers_a: dict[str, str] = {}
    markers_b: dict[str, str] = {}
    names1 = {spec1.name: spec1, **deps1}
    names2 = {spec2.name: spec2, **deps2}
    for name in list(names1) + [n for n in names2 if n not in names1]:
        p1, p2 = names1.get(name), names2.get(name)
        entry = {"name": name, "status": "same", "added": [], "removed": [], "changed": []}
        if p1 is None or p2 is None:
            entry["status"] = "added" if p1 is None else "removed"
            for ts in (p2 or p1).task_specs.values():
                if _visible(ts):
                    item = {"id": ts.bpmn_id, "name": spec_name(ts), "type": _task_kind(reg.convert(ts))}
                    entry["added" if p1 is None else "removed"].append(item)
                    (markers_b if p1 is None else markers_a)[ts.bpmn_id] = entry["status"]
            processes.append(entry)
            continue
        sd = SpecDiff(reg, p1, p2)
        for change, specs, markers in (("added", sd.added, markers_b), ("removed", sd.removed, markers_a)):
            for ts in specs:
                if not _visible(ts):
                    continue
                conv = reg.convert(ts)
                entry[change].append({"id": ts.bpmn_id, "name": spec_name(ts), "type": _task_kind(conv)})
                markers[ts.bpmn_id] = change
                expr = _timer_expr(conv)
                if expr is not None:
                    before, after = (None, expr) if change == "added" else (expr, None)
                    timers.append({"process": name, "id": ts.bpmn_id, "name": ts.bpmn_name, "before": before,
                                   "after": after, "change": change})
        for ts, attrs in sd.changed.items():
            new = sd.alignment.get(ts)
            if not _visible(ts) or new is None:
                continue
            c1, c2 = reg.convert(ts), reg.convert(new)
            entry["changed"].append({"id": ts.bpmn_id, "name": spec_name(new) or spec_name(ts), "type": _task_kind(c2),
                                     "attrs": attrs, "details": [_describe_change(a, c1, c2) for a in attrs]})
            markers_a[ts.bpmn_id] = markers_a.get(ts.bpmn_id, "changed")
            markers_b[new.bpmn_id] = markers_b.get(new.bpmn_id, "changed")
            if "event_definition" in attrs and (_timer_expr(c1) is not None or _timer_expr(c2) is not None):
                timers.append({"process": name, "id": ts.bpmn_id, "name": new.bpmn_name, "before": _timer_expr(c1),
                               "after": _timer_expr(c2), "change": "changed"})
            if "decision_table" in attrs:
                for row in _diff_decisions(ts.bpmn_id, c1, c2):
                    row["process"] = name
                    limits.append(row)
        if entry["added"] or entry["removed"] or entry["changed"]:
            entry["status"] = "changed"
        processes.append(entry)
    # sub-process specs appear under every process that calls them: report each once
    seen: set[tuple] = set()
    uniq = []
    for row in limits:
        key = (row["task"], row["rule"], row["output"])
        if key not in seen:
            seen.add(key)
            uniq.append(row)
    files_a = _bpmn_files(va, set(names1) | set(names2))
    files_b = _bpmn_files(vb, set(names1) | set(names2))
    diagrams = []
    for fname in list(files_a) + [f for f in files_b if f not in files_a]:
        fa, fb = files_a.get(fname), files_b.get(fname)
        ma = dict(markers_a)
        mb = dict(markers_b)
        flows_a = fa[2] if fa else {}
        flows_b = fb[2] if fb else {}
        for fid in flows_a:
            if fid not in flows_b:
                ma[fid] = "removed"
            elif flows_a[fid] != flows_b[fid]:
                ma[fid] = mb[fid] = "changed"
        for fid in flows_b:
            if fid not in flows_a:
                mb[fid] = "added"
        diagrams.append({"file": fname, "a": fa[0] if fa else None, "b": fb[0] if fb else None,
                         "markers_a": ma, "markers_b": mb,
                         "same": bool(fa and fb and fa[0] == fb[0])})
    return {
        "process_id": process_id,
        "a": {"id": va.id, "number": va.number, "tag": va.tag, "sha256": va.sha256},
        "b": {"id": vb.id, "number": vb.number, "tag": vb.tag, "sha256": vb.sha256},
        "processes": processes,
        "timers": timers,
        "time_limits": uniq,
        "forms": _diff_forms(forms1 or {}, forms2 or {}),
        "diagrams": diagrams,
        "identical": va.sha256 == vb.sha256,
    }


def compare_lines(c: dict) -> list[str]:
    """A plain-text rendering of `compare` for the CLI."""
    out = [f"{c['process_id']}: v{c['a']['number']} → v{c['b']['number']}"]
    for p in c["processes"]:
        if p["status"] == "same":
            continue
        out.append(f"  process {p['name']}: {p['status']}")
        out += [f"    + {t['id']} {t['name'] or ''} ({t['type']})" for t in p["added"]]
        out += [f"    - {t['id']} {t['name'] or ''} ({t['type']})" for t in p["removed"]]
        for t in p["changed"]:
            out.append(f"    ~ {t['id']} {t['name'] or ''}: " + "; ".join(t["details"]))
    if c["timers"]:
        out.append("  timers:")
        out += [f"    {t['change']:<8} {t['id']} {t['name'] or ''}: {t['before']} → {t['after']}" for t in c["timers"]]
    if c["time_limits"]:
        out.append("  time limits:")
        for r in c["time_limits"]:
            out.append(f"    {r['task']} {r['rule']} {r['description']}: {r['output'] or ''} {r['before']} → {r['after']}")
    f = c["forms"]
    if f["added"] or f["removed"] or f["changed"]:
        out.append("  forms:")
        out += [f"    + {n}" for n in f["added"]] + [f"    - {n}" for n in f["removed"]]
        out += [f"    ~ {x['name']}: " + "; ".join(x["details"]) for x in f["changed"]]
    if len(out) == 1:
        out.append("  no differences" if c["identical"] else "  only labels or layout differ")
    return out
