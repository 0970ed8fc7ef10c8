"""How verdicts, notes and reports name elements, tasks and versions."""
from __future__ import annotations

import re

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
# Every reason and note the rule gives has a code and arguments; the English text (for the CLI,
# logs and the stored run) is rendered from the template below, and `decode` reads a stored text
# back into (code, args), so the web layer can show it in the user's language.
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
    "error": "cannot be migrated: {error}",
}


class Msg(str):
    """A verdict or note: its English text, with the `code` and `args` it was made from."""

    code: str
    args: dict

    def __new__(cls, code: str, **args: str) -> Msg:
        self = super().__new__(cls, MESSAGES[code].format(**args))
        self.code, self.args = code, dict(args)
        return self


def msg(code: str, **args) -> Msg:
    """The message `code` with its arguments (all shown as text)."""
    return Msg(code, **{k: str(v) for k, v in args.items()})


def template_pattern(template: str) -> re.Pattern:
    """A regular expression reading a str.format template's text back into its arguments."""
    out, pos = [], 0
    for m in re.finditer(r"\{(\w+)\}", template):
        out.append(re.escape(template[pos:m.start()]))
        out.append(f"(?P<{m.group(1)}>.+?)")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("^" + "".join(out) + "$", re.S)


# most literal text first, so "…; it would skip X" is not read as a shorter template's argument
_PATTERNS = sorted(((code, template_pattern(t)) for code, t in MESSAGES.items()),
                   key=lambda cp: -len(re.sub(r"\{\w+\}", "", MESSAGES[cp[0]])))


def decode(text) -> tuple[str, dict] | None:
    """(code, args) of a stored verdict text (a Msg gives its own); None for a text no template made."""
    if isinstance(text, Msg):
        return text.code, text.args
    if isinstance(text, dict) and "code" in text:
        return text["code"], dict(text.get("args") or {})
    for code, pat in _PATTERNS:
        m = pat.match(str(text))
        if m:
            return code, m.groupdict()
    return None
