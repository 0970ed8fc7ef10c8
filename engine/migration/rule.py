"""The verdict rule: whether a running instance can move to another version, and what moving means.

The rule (stricter where it matters, looser where spiff-arena is needlessly strict):

* Only the parts of an instance that can still run count. A sub-process or call activity that
  has finished is history: its tasks never run again, so a change to them is harmless (but a
  task whose spec the new version removed cannot be kept, so that blocks).
* In a live part, a task the new version changes or removes blocks the move when:
  - it is in progress (STARTED: a running multi-instance, sub-process or call activity) and the
    change is more than a label; it already follows the old version's wiring (for example it
    would skip a step the new version adds after it);
  - it already ran (COMPLETED) and the change is in what it computed for later steps (a script,
    pre/post-script, or a decision whose output variables differ), or in its outgoing route
    while the instance still stands on that route;
  - it is removed and the instance stands on it, has done it, or is about to reach it.
* Everything else moves, and the dry run says what it means: an open task adopts the new
  form and assignment; a waiting timer keeps its armed due time; a decision that already ran
  keeps the values it computed for the current step (new rules apply next time).
"""
from __future__ import annotations

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.util.task import TaskState

from .diff import PairDiff
from .labels import label, msg, state_name

DATA_EFFECT = {"script", "prescript", "postscript"}
ROUTING = {"outputs", "cond_task_specs", "default_task_spec", "typename"}
RESET = TaskState.READY | TaskState.WAITING  # what migrate_workflow resets (and the move puts back)


def _decision_outputs(conv: dict) -> list[str]:
    return sorted(o.get("name") or o.get("id") for o in (conv.get("decision_table") or {}).get("outputs") or [])


def is_timer(spec) -> bool:
    """Whether a task spec is a timer event (a waiting one keeps its armed due time when moved)."""
    return isinstance(getattr(spec, "event_definition", None), TimerEventDefinition)


def check(wf, pair: PairDiff, to_label: str) -> tuple[list[str], list[str]]:
    """Reasons the instance cannot move (empty: it can) and notes on what moving means: each a
    labels.Msg (English text with its code and arguments, see labels.MESSAGES)."""
    reasons: list[str] = []
    notes: list[str] = []
    parts = [(wf, False)]
    for sp_id, sp in wf.subprocesses.items():
        owner = wf.get_task_from_id(sp_id)
        finished = bool(getattr(sp, "completed", False)) or owner is None or \
            owner.has_state(TaskState.FINISHED_MASK)
        parts.append((sp, finished))
    for part, finished in parts:
        name = part.spec.name
        sd = pair.for_spec(name)
        new_process = pair.new_spec(name)
        if sd is None or new_process is None:
            reasons.append(msg("no_subprocess_finished" if finished else "no_subprocess_running",
                               version=to_label, name=name))
            continue
        for task in list(part.tasks.values()):
            if task.has_state(TaskState.PREDICTED_MASK):
                continue
            spec = task.task_spec
            new = pair.aligned(sd, spec, new_process)
            if new is None:
                if finished:
                    reasons.append(msg("removed_finished", element=label(spec), version=to_label))
                elif task.has_state(TaskState.COMPLETED | TaskState.CANCELLED):
                    reasons.append(msg("removed_done", element=label(spec), state=state_name(task).lower(),
                                       version=to_label))
                elif task.has_state(TaskState.FUTURE):
                    if not _repredicted(task):
                        reasons.append(msg("removed_ahead", element=label(spec), version=to_label))
                else:
                    reasons.append(msg("removed_here", element=label(spec), state=state_name(task), version=to_label))
                continue
            if finished:
                continue
            attrs = pair.changes(sd, spec)
            if new.name != spec.name and not attrs:
                notes.append(msg("renamed", element=label(spec), new=label(new), version=to_label))
            if not attrs:
                continue
            _check_changed(task, spec, new, attrs, pair, sd, to_label, reasons, notes)
    return list(dict.fromkeys(reasons)), list(dict.fromkeys(notes))


def _check_changed(task, spec, new, attrs, pair, sd, to_label, reasons, notes) -> None:
    """The part of the rule for a task the new version changes (see the module docstring)."""
    what = ", ".join(attrs)
    if task.has_state(TaskState.STARTED):
        added = _new_successors(spec, new, sd) if "outputs" in attrs else []
        if added:
            reasons.append(msg("in_progress_skip", element=label(spec), version=to_label, attrs=what,
                               skipped=", ".join(added)))
        else:
            reasons.append(msg("in_progress", element=label(spec), version=to_label, attrs=what))
    elif task.has_state(TaskState.COMPLETED):
        effect = [a for a in attrs if a in DATA_EFFECT]
        if "decision_table" in attrs:
            if _decision_outputs(pair.conv(spec)) != _decision_outputs(pair.conv(new)):
                effect.append("decision outputs")
            else:
                outs = ", ".join(_decision_outputs(pair.conv(spec)))
                notes.append(msg("decision_kept", element=label(spec), outputs=outs, version=to_label))
        if effect:
            reasons.append(msg("computed_changed", element=label(spec), version=to_label, attrs=", ".join(effect)))
        routing = [a for a in attrs if a in ROUTING]
        if routing:
            # (a pending successor the new version removes is reported as such, not twice)
            pending = [c for c in task.children if c.has_state(TaskState.DEFINITE_MASK)
                       and pair.aligned(sd, c.task_spec, pair.new_spec(task.workflow.spec.name)) is not None]
            if pending:
                added = _new_successors(spec, new, sd)
                if added:
                    reasons.append(msg("route_changed_skip", element=label(spec), version=to_label,
                                       attrs=", ".join(routing), skipped=", ".join(added)))
                else:
                    reasons.append(msg("route_changed", element=label(spec), version=to_label,
                                       attrs=", ".join(routing)))
    elif task.has_state(RESET):
        if "typename" in attrs:
            reasons.append(msg("kind_changed", element=label(spec), version=to_label))
        elif task.has_state(TaskState.WAITING) and is_timer(spec):
            notes.append(msg("timer_kept", element=label(spec), version=to_label, attrs=what))
        elif task.has_state(TaskState.READY) and "extensions" in attrs:
            notes.append(msg("form_adopted", element=label(spec), version=to_label))
        else:
            notes.append(msg("follows", element=label(spec), state=state_name(task), version=to_label, attrs=what))
    elif task.has_state(TaskState.ERROR):
        reasons.append(msg("task_failed", element=label(spec)))


def _repredicted(task) -> bool:
    """Whether a FUTURE task hangs below a READY/WAITING one, which migration resets and re-predicts."""
    a = task.parent
    while a is not None and a.has_state(TaskState.FUTURE | TaskState.PREDICTED_MASK):
        a = a.parent
    return a is not None and a.has_state(RESET)


def _new_successors(spec, new, sd) -> list[str]:
    """Steps the new version adds right after `spec` (through added gateways), user tasks first."""
    old = {sd.alignment.get(o).name if sd.alignment.get(o) is not None else None for o in spec.outputs}
    added = {a.name for a in sd.added}
    found, seen = [], set()
    todo = [o for o in new.outputs if o.name not in old]
    while todo:
        ts = todo.pop(0)
        if ts.name in seen:
            continue
        seen.add(ts.name)
        found.append(ts)
        todo += [o for o in ts.outputs if o.name in added]
    manual = [ts for ts in found if ts.manual]
    return [label(ts) for ts in (manual or found)]
