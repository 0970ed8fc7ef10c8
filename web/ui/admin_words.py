"""The administration pages' words: engine codes (validation checks, migration verdicts, audit
actions, dry-run outcomes, comparison details) shown in the user's language.

The engine keeps English text for the CLI and gives and stores each message as a code with
arguments (engine.versions.CHECKS, engine.migration.labels.MESSAGES); here every code has its
own msgid, so both catalogs cover them, and no English sentence is read back. Identifiers that remain (element ids, file names) are wrapped in
<code>, processes are shown by their BPMN name.
"""
from __future__ import annotations

import re

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

# audit actions: the English words are the codes themselves (the CLI and English pages show them)
ACTIONS = {"deploy": _l("deploy"), "activate": _l("activate"), "pin": _l("pin"), "unpin": _l("unpin"),
           "retire": _l("retire"), "migrate": _l("migrate"), "revert": _l("revert"), "dry_run": _l("Dry run")}
OUTCOMES = {"can_move": _l("Can move"), "blocked": _l("Cannot move"), "migrated": _l("Moved"),
            "skipped": _l("Skipped (worked on meanwhile)"), "failed": _l("Failed"), "reverted": _l("Reverted"),
            "pending": _l("Waiting")}
STATUSES = {"changed": _l("changed"), "added": _l("added"), "removed": _l("removed"), "same": _l("unchanged")}
RUN_STATUS = {"done": _l("done"), "running": _l("in progress"), "pending": _l("waiting"), "failed": _l("failed")}
TASK_STATES = {"ready": _l("open"), "waiting": _l("waiting"), "started": _l("in progress"),
               "completed": _l("completed"), "cancelled": _l("cancelled"), "error": _l("failed"),
               "future": _l("not reached yet"), "likely": _l("not reached yet"), "maybe": _l("not reached yet")}
INSTANCE_STATUS = {"running": _l("running"), "completed": _l("completed"), "cancelled": _l("cancelled"),
                   "failed": _l("failed")}
# what a task spec change touches (engine.migration.diff attribute names)
ATTRS = {"script": _l("script"), "prescript": _l("pre-script"), "postscript": _l("post-script"),
         "outputs": _l("next steps"), "inputs": _l("previous steps"), "cond_task_specs": _l("conditions"),
         "default_task_spec": _l("default route"), "typename": _l("element kind"),
         "extensions": _l("form and assignment"), "decision_table": _l("decision table"),
         "decision outputs": _l("decision outputs"), "bpmn_name": _l("name"), "name": _l("name"),
         "event_definition": _l("event"), "timer": _l("timer"), "documentation": _l("documentation"),
         "lane": _l("lane"), "data_input_associations": _l("inputs"), "data_output_associations": _l("outputs"),
         "loop_characteristics": _l("repetition"), "cardinality": _l("repetition"), "collection": _l("repetition"),
         "io_specification": _l("inputs and outputs"), "properties": _l("properties"),
         "conditions": _l("conditions"), "event definition": _l("event")}
# decision outputs the shipped decision tables use
OUTPUTS = {"warn_days": _l("working days to the warning"), "overdue_days": _l("working days to overdue"),
           "interval_days": _l("visit interval (days)"), "lead_days": _l("reminder lead (days)")}

CHECK_TEXTS = {
    "xml_schema": _l("XML Schema (BPMN 2.0 and SpiffWorkflow extensions): %(bpmn)s BPMN file(s) valid"),
    "parse": _l("Process parsing: processes %(processes)s; %(dmn)s DMN decision file(s)"),
    "forms": _l("Forms: %(forms)s file(s) are valid JSON Schema; every user task's form is present"),
    "sandbox": _l("%(elements)s elements checked: scripts, conditions, assignments and timer expressions "
                  "compile in the sandbox"),
    "domain": _l("Domain checks passed (time limits cover every level and category)"),
}

VERDICT_TEXTS = {
    "other_process": _l("the case runs %(process)s, not %(target)s"),
    "already_on": _l("already on %(version)s"),
    "failed_step": _l("the case has a failed step; retry or fix it first"),
    "status": _l("the case is %(status)s"),
    "no_subprocess_finished": _l("%(version)s no longer has the sub-process %(name)s, which the case already ran"),
    "no_subprocess_running": _l("%(version)s no longer has the sub-process %(name)s, which the case is running"),
    "removed_finished": _l("%(element)s (done, in a finished part) no longer exists in %(version)s; "
                           "its history could not be kept"),
    "removed_done": _l("%(element)s was already %(state)s and no longer exists in %(version)s; "
                       "its history could not be kept"),
    "removed_ahead": _l("the case is about to reach %(element)s, which %(version)s removes"),
    "removed_here": _l("the case is at %(element)s (%(state)s), which %(version)s removes"),
    "renamed": _l("%(element)s is %(new)s in %(version)s"),
    "in_progress_skip": _l("%(element)s is in progress and %(version)s changes it (%(attrs)s); it would skip "
                           "%(skipped)s when it finishes; move the case after it finishes"),
    "in_progress": _l("%(element)s is in progress and %(version)s changes it (%(attrs)s); "
                      "move the case after it finishes"),
    "decision_kept": _l("%(element)s already ran: the values it set (%(outputs)s) stay for the current step; "
                        "the rules of %(version)s apply the next time it runs"),
    "computed_changed": _l("%(element)s already ran and %(version)s changes what it computes (%(attrs)s); "
                           "later steps may rely on values it never set"),
    "route_changed_skip": _l("the case already left %(element)s by a route %(version)s changes (%(attrs)s); "
                             "it would skip %(skipped)s"),
    "route_changed": _l("the case already left %(element)s by a route %(version)s changes (%(attrs)s)"),
    "kind_changed": _l("the case waits at %(element)s, which %(version)s turns into another kind of element"),
    "timer_kept": _l("timer %(element)s changes in %(version)s (%(attrs)s) but keeps its armed due time"),
    "form_adopted": _l("the open task %(element)s takes the form and assignment settings of %(version)s"),
    "follows": _l("%(element)s (%(state)s) follows %(version)s from here (%(attrs)s)"),
    "task_failed": _l("%(element)s has failed; retry or fix it before moving the case"),
    "would_discard": _l("moving would discard %(element)s (%(state)s)"),
    "would_drop": _l("moving would drop a task that is %(state)s"),
    "would_turn": _l("%(element)s would become %(state)s instead of staying %(before)s"),
    "no_counterpart": _l("%(element)s has no counterpart in %(version)s"),
    "left_alone": _l("%(element)s would be left to run on its own"),
    "worked_meanwhile": _l("someone worked on the case while it was being moved; it was left as it was "
                           "(run the migration again to move it)"),
    "settled_elsewhere": _l("another migration worker settled this case first"),
    "error": _l("cannot be migrated: %(error)s"),
    "save_failed": _l("saving failed: %(error)s"),
    "text": "%(text)s",  # a text stored without a code: shown as it is
}

_ELEMENT = re.compile(r"^(?P<name>.*?) \((?P<id>[^()]+)\)$")
_VERSION = re.compile(r"^(?:(?P<pid>[\w.-]+) )?v(?P<n>\d+)$")


def code(text: str) -> Markup:
    return Markup("<code>%s</code>") % text


def word(table: dict, key: str | None) -> str:
    """The word for a code, or the code itself (visibly marked) if the table lacks it."""
    if key is None:
        return ""
    v = table.get(key) if isinstance(key, str) else None
    if v is None:
        v = table.get(str(key).lower())
    return str(v) if v is not None else str(key)


def version_label(number, process_id: str | None = None, names: dict | None = None) -> str:
    """'矛盾纠纷处理 第 2 版' (or '第 2 版' without a process)."""
    v = _("version %(n)s", n=number)
    if process_id:
        return f"{(names or {}).get(process_id) or process_id} {v}"
    return v


def version_text(text: str, names: dict | None = None) -> str:
    """'dispute_case v2' (how the engine labels a version) in words."""
    m = _VERSION.match(str(text))
    return version_label(m.group("n"), m.group("pid"), names) if m else str(text)


def _element(text: str) -> Markup:
    """'调解 (mediate)' → 调解 <code>mediate</code>; a bare id stays code."""
    m = _ELEMENT.match(text)
    if m and m.group("name"):
        return Markup("%s %s") % (m.group("name"), code(m.group("id")))
    return code(text)


def _list(text: str, table: dict | None = None, element: bool = False) -> Markup:
    parts = [p.strip() for p in str(text).split(", ") if p.strip()]
    out = []
    for p in parts:
        if element:
            out.append(_element(p))
        elif table is not None and (p in table or p.lower() in table):
            out.append(escape(word(table, p)))
        else:
            out.append(code(p))
    return Markup("、").join(out)


def _arg(key: str, value: str, names: dict | None) -> Markup:
    if key in ("element", "new"):
        return _element(value)
    if key == "skipped":
        return _list(value, element=True)
    if key == "version":
        m = _VERSION.match(value)
        return escape(version_label(m.group("n"), m.group("pid"), names)) if m else code(value)
    if key in ("process", "target"):
        return escape((names or {}).get(value) or value) if (names or {}).get(value) else code(value)
    if key in ("state", "before"):
        return escape(word(TASK_STATES, value))
    if key == "status":
        return escape(word(INSTANCE_STATUS, value))
    if key == "attrs":
        return _list(value, ATTRS)
    if key == "outputs":
        return _list(value, OUTPUTS)
    if key == "name":
        return escape((names or {}).get(value)) if (names or {}).get(value) else code(value)
    return code(value)


def verdict(m, names: dict | None = None) -> Markup:
    """A migration reason or note (a labels.Msg, or its stored {code, args}) in the user's
    language; anything else is shown as it is."""
    key, args = getattr(m, "code", None), getattr(m, "args", None)
    if key is None and isinstance(m, dict):
        key, args = m.get("code"), m.get("args") or {}
    if key not in VERDICT_TEXTS:
        return escape(str(m))
    return Markup(str(VERDICT_TEXTS[key])) % {k: _arg(k, str(v), names) for k, v in (args or {}).items()}


def check(c, names: dict | None = None) -> str | Markup:
    """A validation check that passed (a Check, or its stored {code, args}); processes are named
    by their BPMN names."""
    key, args = getattr(c, "code", None), getattr(c, "args", None)
    if key is None and isinstance(c, dict):
        key, args = c.get("code"), c.get("args") or {}
    if key not in CHECK_TEXTS:
        return str(c)
    args = dict(args or {})
    if "processes" in args:
        args["processes"] = "、".join((names or {}).get(p.strip()) or p.strip()
                                     for p in str(args["processes"]).split(","))
    return str(CHECK_TEXTS[key]) % args


_DETAILS = [
    (re.compile(r"^field added: (.+)$"), _l("field added: %(x)s")),
    (re.compile(r"^field removed: (.+)$"), _l("field removed: %(x)s")),
    (re.compile(r"^field changed: (.+)$"), _l("field changed: %(x)s")),
    (re.compile(r"^now required: (.+)$"), _l("now required: %(x)s")),
    (re.compile(r"^no longer required: (.+)$"), _l("no longer required: %(x)s")),
    (re.compile(r"^title: (.+)$"), _l("title: %(x)s")),
    (re.compile(r"^name: (.+)$"), _l("name: %(x)s")),
    (re.compile(r"^timer: (.+)$"), _l("timer: %(x)s")),
    (re.compile(r"^next: (.+)$"), _l("next steps: %(x)s")),
    (re.compile(r"^comes from: (.+)$"), _l("previous steps: %(x)s")),
]
_ATTR_CHANGED = re.compile(r"^(\w[\w ]*) changed$")


def detail(text: str, fields: dict | None = None) -> Markup:
    """One line of a comparison ('field changed: notes', 'script changed', 'changed') in words;
    a form field is named by its title when the form gives one."""
    if text == "changed":
        return escape(_("changed"))
    if text == "decision table rules changed (see time limits)":
        return escape(_("decision table rules changed (see the time limits below)"))
    if text.startswith("properties "):
        rest = text[len("properties "):]
        return Markup(str(_l("properties: %(x)s"))) % {"x": escape(_("changed")) if rest == "changed" else code(rest)}
    m = _ATTR_CHANGED.match(text)
    if m:
        return escape(_("%(what)s changed", what=word(ATTRS, m.group(1)) if m.group(1) in ATTRS
                        else word(OUTPUTS, m.group(1))))
    for pat, msg in _DETAILS:
        m = pat.match(text)
        if m:
            x = m.group(1)
            shown = Markup("%s %s") % (fields[x], code(x)) if fields and fields.get(x) else (
                escape(str(OUTPUTS[x])) if x in OUTPUTS else code(x))
            return Markup(str(msg)) % {"x": shown}
    out = text
    for k, v in OUTPUTS.items():
        out = out.replace(k, str(v))
    return escape(out)
