"""How verdicts, notes and reports name elements, tasks and versions."""
from __future__ import annotations

from SpiffWorkflow.util.task import TaskState

from ..models import ProcessVersion


def spec_name(spec) -> str | None:
    """The element's label; a multi-instance task carries it on its inner task spec."""
    name = getattr(spec, "bpmn_name", None)
    child = getattr(spec, "task_spec", None)
    if not name and isinstance(child, str):
        inner = getattr(spec, "_wf_spec", None)
        inner = inner.task_specs.get(child) if inner is not None else None
        name = getattr(inner, "bpmn_name", None)
    return name


def label(spec) -> str:
    """The element as `name (id)`, the way verdicts and notes show it."""
    name = spec_name(spec)
    bid = getattr(spec, "bpmn_id", None) or spec.name
    return f"{name} ({bid})" if name and name != bid else bid


def state_name(task) -> str:
    """The task's state as SpiffWorkflow names it (READY, WAITING, ...)."""
    return TaskState.get_name(task.state)


def vlabel(v: ProcessVersion) -> str:
    """`process v3`, for messages."""
    return f"{v.process_id} v{v.number}"


# ---- verdicts as codes with arguments ------------------------------------------------------------
# Every reason and note the engine gives has a code and arguments, and is stored that way
# ({"code", "args"}, see engine.version_models.Messages). The English text (the CLI, logs) is
# rendered from the template below; the web layer has its own text for each code, in the
# user's language (web/ui/admin_words.py), so nothing reads an English sentence back.
MESSAGES: dict[str, str] = {
    "other_process": "the instance runs {process}, not {target}",
    "already_on": "already on {version}",
    "failed_step": "the instance has a failed step; retry or fix it first",
    "status": "the instance is {status}",
    "no_subprocess_finished": "{version} no longer has sub-process {name}, and the instance has a finished one",
    "no_subprocess_running": "{version} no longer has sub-process {name}, and the instance has the running one",
    "removed_finished": "{element} (done, in a finished part) no longer exists in {version}; "
                        "its history could not be kept",
    "removed_done": "{element} was already {state} and no longer exists in {version}; its history could not be kept",
    "removed_ahead": "the instance is about to reach {element}, which {version} removes",
    "removed_here": "the instance is at {element} ({state}), which {version} removes",
    "renamed": "{element} is {new} in {version}",
    "in_progress_skip": "{element} is in progress and {version} changes it ({attrs}); it would skip {skipped} "
                        "when it finishes; move the instance after it finishes",
    "in_progress": "{element} is in progress and {version} changes it ({attrs}); move the instance after it finishes",
    "decision_kept": "{element} already ran: the values it set ({outputs}) stay for the current step; "
                     "{version}'s rules apply the next time it runs",
    "computed_changed": "{element} already ran and {version} changes what it computes ({attrs}); "
                        "later steps may rely on values it never set",
    "route_changed_skip": "the instance already left {element} by a route {version} changes ({attrs}); "
                          "it would skip {skipped}",
    "route_changed": "the instance already left {element} by a route {version} changes ({attrs})",
    "kind_changed": "the instance waits at {element}, which {version} turns into another kind of element",
    "timer_kept": "timer {element} changes in {version} ({attrs}) but keeps its armed due time",
    "form_adopted": "the open task {element} takes {version}'s form and assignment settings",
    "follows": "{element} ({state}) follows {version} from here ({attrs})",
    "task_failed": "{element} has failed; retry or fix it before moving the instance",
    # what the move in memory refuses (plan.apply), and what saving it meets (execute)
    "would_discard": "moving would discard {element} ({state})",
    "would_drop": "moving would drop a {state} task",
    "would_turn": "{element} would turn {state} instead of staying {before}",
    "no_counterpart": "{element} has no counterpart in {version}",
    "left_alone": "{element} would be left to run on its own",
    "worked_meanwhile": "someone worked on the instance while it was being migrated; it was left as it was "
                        "(run the migration again to move it)",
    "settled_elsewhere": "another migration worker settled this instance first",
    "error": "cannot be migrated: {error}",
    "save_failed": "{error}",  # saving the moved instance failed (its savepoint rolled back)
    "text": "{text}",  # a text that came with no code (kept as it is)
}


class Msg(str):
    """A verdict or note: its English text, with the `code` and `args` it was made from."""

    code: str
    args: dict

    def __new__(cls, code: str, **args: str) -> Msg:
        self = super().__new__(cls, MESSAGES[code].format(**args))
        self.code, self.args = code, dict(args)
        return self

    def as_dict(self) -> dict:
        """How it is stored: the code and its arguments, no sentence."""
        return {"code": self.code, "args": self.args}

    def __reduce__(self):
        return load, (self.as_dict(),)


def msg(code: str, **args) -> Msg:
    """The message `code` with its arguments (all shown as text)."""
    return Msg(code, **{k: str(v) for k, v in args.items()})


def load(stored) -> Msg:
    """A stored message ({"code", "args"}) back as a Msg; an uncoded text or an unknown code
    becomes a `text` message, so nothing stored is lost or turned into an exception."""
    if isinstance(stored, Msg):
        return stored
    if isinstance(stored, dict):
        code, args = stored.get("code"), stored.get("args") or {}
        try:
            return msg(code, **args) if code in MESSAGES else msg("text", text=f"{code} {args}")
        except (KeyError, IndexError):  # arguments the template does not know
            return msg("text", text=f"{code} {args}")
    return msg("text", text=stored)


def store(messages) -> list[dict]:
    """Messages as stored: each a {"code", "args"}."""
    return [load(m).as_dict() for m in messages or []]


def failure(e: Exception, code: str = "error") -> Msg:
    """An error as a verdict: the exception's own message if it carries one, else `code` with the
    exception's text as its argument (kept short)."""
    if e.args and isinstance(e.args[0], Msg):
        return e.args[0]
    return msg(code, error=f"{type(e).__name__}: {e}"[:500 - len(MESSAGES[code].format(error=""))])
