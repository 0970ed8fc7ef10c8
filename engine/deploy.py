"""Deploying process bundles: validate (XSD, SpiffWorkflow, forms, expressions), then store
an immutable version per process id. Nothing is stored unless the whole bundle is valid.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import clock, form_validation, limits, modeler_compat, sandbox, xmlsafe
from . import problems as texts
from .calendar import CALENDAR_FILE, problems_in
from .errors import DeployError, Problem, ScriptError
from .models import ProcessDefinition, ProcessVersion
from .serializer import SERIALIZER

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
ISO_LIKE = re.compile(r"^(R\d*/)?P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$|^\d{4}-\d{2}-\d{2}T")


@dataclass
class Bundle:
    """Files to deploy: BPMN and DMN by file name, forms by form name, and the work calendar
    (`calendar.yaml`, stored with each version so running instances keep theirs)."""

    bpmn: dict[str, bytes] = field(default_factory=dict)
    dmn: dict[str, bytes] = field(default_factory=dict)
    forms: dict[str, bytes] = field(default_factory=dict)
    calendar: bytes | None = None

    @classmethod
    def from_dirs(cls, workflows: str | Path, forms: str | Path | None = None) -> Bundle:
        workflows = Path(workflows)
        b = cls()
        files = [workflows] if workflows.is_file() else sorted(workflows.glob("*"))
        for p in files:
            if p.suffix == ".bpmn":
                b.bpmn[p.name] = p.read_bytes()
            elif p.suffix == ".dmn":
                b.dmn[p.name] = p.read_bytes()
        cal = (workflows if workflows.is_dir() else workflows.parent) / CALENDAR_FILE
        if cal.is_file():
            b.calendar = cal.read_bytes()
        fdir = Path(forms) if forms else (workflows if workflows.is_dir() else workflows.parent).parent / "forms"
        if fdir.is_dir():
            for p in sorted(fdir.glob("*.json")):
                b.forms[p.name] = p.read_bytes()
        return b

    def paths(self) -> list[str]:
        cal = [CALENDAR_FILE] if self.calendar is not None else []
        return list(self.bpmn) + list(self.dmn) + cal + [f"forms/{n}" for n in self.forms]


@dataclass
class ParsedBundle:
    parser: SpiffBpmnParser
    process_ids: list[str]
    specs: dict[str, tuple]  # process_id -> (spec, subprocess_specs)
    forms: dict[str, dict]
    locations: dict[str, tuple[str, int]]  # element id -> (file, line)
    names: dict[str, str]  # process id -> name
    element_names: dict[str, str] = field(default_factory=dict)  # element id -> name on the diagram


@dataclass
class DeployReport:
    created: list[ProcessVersion] = field(default_factory=list)
    unchanged: list[ProcessVersion] = field(default_factory=list)
    activated: list[ProcessVersion] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"new     {v.process_id} v{v.number} ({v.sha256[:12]})" for v in self.created]
        out += [f"same    {v.process_id} v{v.number} ({v.sha256[:12]}), no new version" for v in self.unchanged]
        return out


# Extra checks a domain package can add (e.g. "the DMN covers every level x category").
Validator = Callable[[Bundle, ParsedBundle], Iterable[Problem]]
_validators: list[Validator] = []


def register_validator(fn: Validator) -> None:
    _validators.append(fn)


def _element_lines(root: etree._Element, filename: str, out: dict, tags: dict | None = None) -> None:
    for el in root.iter():
        if isinstance(el.tag, str) and el.get("id"):
            out.setdefault(el.get("id"), (filename, el.sourceline))
            if tags is not None:
                tags.setdefault(el.get("id"), etree.QName(el).localname)


def parse_bundle(bundle: Bundle, extra: bool = True) -> ParsedBundle:
    """Validate everything in the bundle; raise DeployError with every problem found."""
    problems: list[Problem] = []
    roots: dict[str, etree._Element] = {}
    locations: dict[str, tuple[str, int]] = {}
    tags: dict[str, str] = {}
    enames: dict[str, str] = {}
    for name, content in list(bundle.bpmn.items()) + list(bundle.dmn.items()):
        try:
            roots[name] = xmlsafe.parse(content, name)
        except xmlsafe.XmlRefused as e:
            problems += e.problems
            continue
        _element_lines(roots[name], name, locations, tags)
        enames.update({k: v for k, v in modeler_compat.names_of(roots[name]).items() if k not in enames})
        if name in bundle.bpmn:
            # 0. what other modelers write (camunda: properties), and what Spiff would only KeyError on
            problems += modeler_compat.normalise(roots[name], name, set(bundle.forms))
            problems += modeler_compat.check_structure(roots[name], name)
            problems += _check_size(roots[name], name)
    if not bundle.bpmn:
        problems.append(Problem("(bundle)", "no BPMN files found"))
    if bundle.calendar is not None:
        try:
            problems += [Problem(CALENDAR_FILE, m, 1) for m in problems_in(bundle.calendar.decode("utf-8"))]
        except UnicodeDecodeError:
            problems.append(Problem(CALENDAR_FILE, "not UTF-8 text", 1))
    # 1. XML Schema (the BPMN XSDs SpiffWorkflow ships, plus its extension schema)
    schema = VALIDATOR.validator
    for name in bundle.bpmn:
        root = roots.get(name)
        if root is None:
            continue
        if not schema.validate(root):
            for err in schema.error_log:
                el = texts.element_at(root, err.line)
                problems.append(texts.from_xsd(name, err.message, err.line, el, enames.get(el)))
    if problems:
        raise DeployError(texts.coded_all(problems, enames))
    ctx = (locations, tags, enames, roots)
    # 2. SpiffWorkflow parsing (it recurses along the flows: a long chain needs a deeper stack)
    parser = SpiffBpmnParser(validator=VALIDATOR)
    for name in bundle.bpmn:
        try:
            with limits.deep_recursion():
                parser.add_bpmn_xml(roots[name], filename=name)
        except ValidationException as e:
            problems.append(_from_validation(e, name, ctx))
        except Exception as e:  # noqa: BLE001 - report anything the parser chokes on
            problems.append(_first_process(name, roots[name], texts.make("parser", name, detail=f"cannot parse: {e}")))
    for name in bundle.dmn:
        try:
            parser.add_dmn_xml(roots[name], filename=name)
        except ValidationException as e:
            problems.append(_from_validation(e, name, ctx))
        except Exception as e:  # noqa: BLE001
            problems.append(texts.make("parser", name, 1, detail=f"cannot parse DMN: {e}"))
    for name in bundle.dmn:
        problems += _check_dmn(roots[name], name)
    if problems:
        raise DeployError(texts.coded_all(problems, enames))
    forms: dict[str, dict] = {}
    for fname, content in bundle.forms.items():
        try:
            schema_doc = json.loads(content)
            Draft202012Validator.check_schema(schema_doc)
            unsafe = form_validation.unsafe_parts(schema_doc)
            problems += [Problem(f"forms/{fname}", msg) for msg in unsafe]
            if not unsafe:
                forms[fname] = schema_doc
        except json.JSONDecodeError as e:
            problems.append(Problem(f"forms/{fname}", f"invalid JSON: {e.msg}", e.lineno))
        except RecursionError:
            problems.append(Problem(f"forms/{fname}", "the schema is nested too deeply"))
        except SchemaError as e:
            problems.append(Problem(f"forms/{fname}", f"invalid JSON Schema: {e.message}"))
    specs: dict[str, tuple] = {}
    names: dict[str, str] = {}
    process_ids = parser.get_process_ids()
    for pid in process_ids:
        try:
            with limits.deep_recursion():
                spec = parser.get_spec(pid)
                subs = parser.get_subprocess_specs(pid)
            specs[pid] = (spec, subs)
            names[pid] = spec.description or pid
        except SpiffWorkflowException as e:
            if "was not found" in str(e):
                problems.append(_missing_call(str(e), roots, pid, locations, enames))
            elif isinstance(e, ValidationException):
                problems.append(_from_validation(e, locations.get(pid, ("?", 0))[0], ctx))
            else:
                file, line = locations.get(pid, ("?", None))
                problems.append(texts.make("parser", file, line, pid, enames.get(pid), detail=str(e)))
    seen: set[tuple[str, str]] = set()
    for spec, subs in specs.values():
        for pspec in [spec, *subs.values()]:
            for ts in pspec.task_specs.values():
                key = (pspec.name, ts.name)
                if key in seen:
                    continue
                seen.add(key)
                problems += _check_task_spec(ts, bundle, forms, locations, enames)
    parsed = ParsedBundle(parser, process_ids, specs, forms, locations, names, enames)
    if extra and not problems:
        for v in _validators:
            problems += list(v(bundle, parsed))
    if problems:
        raise DeployError(texts.coded_all(problems, enames))
    return parsed


def _missing_call(message: str, roots: dict, pid: str, locations: dict, enames: dict) -> Problem:
    """Locate the call activity whose calledElement does not resolve."""
    m = re.search(r"process '([^']+)' was not found", message)
    if m:
        for name, root in roots.items():
            for el in root.iter(f"{{{BPMN_NS}}}callActivity"):
                if el.get("calledElement") == m.group(1):
                    return texts.make("call_missing", name, el.sourceline, el.get("id"), el.get("name"),
                                      called=m.group(1))
    file, line = locations.get(pid, ("?", None))
    return texts.make("parser", file, line, pid, enames.get(pid), detail=message)


def _first_process(name: str, root: etree._Element, p: Problem) -> Problem:
    """Place a file-level problem on the file's first process, so it always names an element."""
    proc = root.find(f"{{{BPMN_NS}}}process")
    el = proc if proc is not None else root
    p.line, p.element, p.name = p.line or el.sourceline, p.element or el.get("id"), p.name or el.get("name")
    return p


def _from_validation(e: ValidationException, default_file: str, ctx: tuple) -> Problem:
    locations, tags, enames, roots = ctx
    element = getattr(e, "id", None) or None
    file = getattr(e, "file_name", None) or default_file
    line = getattr(e, "line_number", None) or None
    msg = str(e).split("\n")[0]
    store = re.search(r"Data Store with name (.*) has no implementation", msg)
    if store and not element and file in roots:
        element = _data_store_ref(roots[file], store.group(1))
    if element and not line and element in locations:
        file, line = locations[element]
    p = texts.from_spiff(msg, file, line if isinstance(line, int) else None, element,
                         enames.get(element), tags.get(element))
    return _first_process(file, roots[file], p) if file in roots and not (p.line and p.element) else p


def _data_store_ref(root: etree._Element, name: str) -> str | None:
    """The data store reference (else the data store) SpiffWorkflow names only by the store's name."""
    for store in root.iter(f"{{{BPMN_NS}}}dataStore"):
        if store.get("name") == name:
            for ref in root.iter(f"{{{BPMN_NS}}}dataStoreReference"):
                if ref.get("dataStoreRef") == store.get("id"):
                    return ref.get("id")
            return store.get("id")
    return None


def _where(ts, locations) -> tuple[str, int | None, str]:
    bid = ts.bpmn_id or ts.name
    file, line = locations.get(bid, ("?", None))
    return file, line, bid


def _check_task_spec(ts, bundle: Bundle, forms: dict, locations: dict, enames: dict) -> list[Problem]:
    out: list[Problem] = []
    props = (getattr(ts, "extensions", None) or {}).get("properties", {}) or {}
    form = props.get("form")
    if form and ts.bpmn_id and form not in bundle.forms:
        file, line, bid = _where(ts, locations)
        out.append(texts.make("form_missing", file, line, bid, enames.get(bid), form=form))
    if ts.manual and ts.bpmn_id:
        file, line, bid = _where(ts, locations)
        for key in ("unit", "user", "roleExpression"):
            if props.get(key):
                out += _check_expr(props[key], f"'{key}' property", file, line, bid)
    script = getattr(ts, "script", None)
    for label, src in (("script", script), ("preScript", getattr(ts, "prescript", None)),
                       ("postScript", getattr(ts, "postscript", None))):
        if src:
            file, line, bid = _where(ts, locations)
            try:
                sandbox._compile(src, "exec")
            except ScriptError as e:
                out.append(Problem(file, f"{label}: {e}", line, bid))
            except (RecursionError, MemoryError, SyntaxError, ValueError) as e:
                why = "it is nested too deeply" if isinstance(e, (RecursionError, MemoryError)) else str(e)
                out.append(Problem(file, f"{label}: {why}", line, bid))
    for cond in _conditions(ts):
        file, line, bid = _where(ts, locations)
        out += _check_expr(cond, "condition", file, line, bid)
    if isinstance(ts, CatchingEvent) and isinstance(getattr(ts, "event_definition", None), TimerEventDefinition):
        file, line, bid = _where(ts, locations)
        out += _check_timer(ts.event_definition.expression, file, line, bid)
    if isinstance(ts, MultiInstanceTask) and ts.bpmn_id:
        file, line, bid = _where(ts, locations)
        if ts.cardinality:
            out += _check_expr(ts.cardinality, "multi-instance cardinality", file, line, bid)
        why = limits.cardinality_problem(ts.cardinality)
        if why:
            out.append(Problem(file, f"multi-instance: {why} (GRIDFLOW_MAX_MI_CARDINALITY)", line, bid))
    return out


def _check_size(root: etree._Element, name: str) -> list[Problem]:
    """Refuse files with more flow elements than the parser's raised stack is sized for."""
    n = sum(1 for el in root.iter() if isinstance(el.tag, str) and el.get("id") and
            etree.QName(el).localname not in ("sequenceFlow", "BPMNShape", "BPMNEdge"))
    if n > limits.MAX_FLOW_NODES:
        return [Problem(name, f"the file has {n} elements, over the limit of {limits.MAX_FLOW_NODES} "
                              "(GRIDFLOW_MAX_FLOW_NODES): split it into called processes", 1)]
    return []


def _dmn_text(el: etree._Element) -> str:
    t = next((c for c in el.iter() if isinstance(c.tag, str) and etree.QName(c).localname == "text"), None)
    return (t.text or "").strip() if t is not None else ""


def _check_dmn(root: etree._Element, name: str) -> list[Problem]:
    """Compile every DMN expression the way SpiffWorkflow's DMN engine will evaluate it, so a
    broken cell is refused at deploy instead of failing the first instance that reaches it."""
    out: list[Problem] = []
    local = etree.QName
    for table in (e for e in root.iter() if isinstance(e.tag, str) and local(e).localname == "decisionTable"):
        inputs = []
        for inp in (e for e in table if isinstance(e.tag, str) and local(e).localname == "input"):
            expr = next((_dmn_text(c) for c in inp if isinstance(c.tag, str)
                         and local(c).localname == "inputExpression"), "")
            inputs.append(expr)
            if expr:
                out += _check_expr(expr, "DMN input expression", name, inp.sourceline, inp.get("id"))
        for rule in (e for e in table if isinstance(e.tag, str) and local(e).localname == "rule"):
            cells = [c for c in rule if isinstance(c.tag, str) and local(c).localname in ("inputEntry", "outputEntry")]
            n_in = 0
            for cell in cells:
                text = _dmn_text(cell)
                where = (name, cell.sourceline, cell.get("id") or rule.get("id"))
                if local(cell).localname == "outputEntry":
                    if text:
                        out += _check_expr(text, "DMN output entry", *where)
                    continue
                lhs = inputs[n_in] if n_in < len(inputs) else "None"
                n_in += 1
                if text in ("", "-"):
                    continue
                if re.search(r"(\?)(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)", text):
                    cands = [re.sub(r"(\?)(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)", "dmninputexpr", text)]
                else:
                    cands = [f"({lhs}) == ({text})", f"({lhs}) {text}"]
                errs = [p for c in cands for p in _check_expr(c, "DMN input entry", *where)]
                if len(errs) == len(cands):
                    out.append(Problem(name, f"DMN input entry {text!r} does not compile: {errs[0].message}",
                                       cell.sourceline, where[2]))
    return out


def _conditions(ts) -> list[str]:
    conds = []
    for c in getattr(ts, "cond_task_specs", None) or []:
        cond = c[0] if isinstance(c, tuple) else c.get("condition") if isinstance(c, dict) else None
        args = getattr(cond, "args", None)
        if args and isinstance(args[0], str):
            conds.append(args[0])
        elif isinstance(cond, str):
            conds.append(cond)
    return conds


def _check_expr(expr: str, label: str, file, line, bid) -> list[Problem]:
    try:
        sandbox._compile(expr, "eval")
    except ScriptError as e:
        return [Problem(file, f"{label} {_short(expr)}: {e}", line, bid)]
    except (RecursionError, MemoryError, SyntaxError, ValueError) as e:  # what compile() itself may raise
        why = "it is nested too deeply" if isinstance(e, (RecursionError, MemoryError)) else str(e)
        return [Problem(file, f"{label} {_short(expr)}: {why}", line, bid)]
    return []


def _short(expr: str) -> str:
    return repr(expr) if len(expr) <= 80 else repr(expr[:77] + "...")


def _check_timer(expr: str, file, line, bid) -> list[Problem]:
    """A timer expression is Python: literals must be quoted, helpers called with evaluable args."""
    expr = (expr or "").strip()
    if not expr:
        return [Problem(file, "timer has no expression", line, bid)]
    if ISO_LIKE.match(expr):
        return [Problem(file, f"timer expression {expr} is not quoted: write \"{expr}\" (it is evaluated as Python)", line, bid)]
    probs = _check_expr(expr, "timer expression", file, line, bid)
    if probs:
        return probs
    if expr[0] in "\"'":
        try:
            value = sandbox.evaluate(expr)
            TimerEventDefinition.parse_iso_recurring_interval(value) if str(value).startswith("R") else \
                TimerEventDefinition.parse_time_or_duration(value)
            why = limits.timer_problem(value)
        except Exception as e:  # noqa: BLE001
            return [Problem(file, f"timer expression {expr} does not evaluate to an ISO 8601 time: {e}", line, bid)]
        if why:
            return [Problem(file, f"timer expression {expr}: {why}", line, bid)]
    return []


def _sha(spec_json: str, forms: dict, calendar: str | None = None) -> str:
    h = hashlib.sha256()
    h.update(spec_json.encode())
    h.update(json.dumps(forms, sort_keys=True, ensure_ascii=False).encode())
    if calendar is not None:  # a new calendar is a new version (without one: the hash as before)
        h.update(b"\0calendar\0" + calendar.encode())
    return h.hexdigest()


def _forms_of(spec, subs) -> set[str]:
    names = set()
    for pspec in [spec, *subs.values()]:
        for ts in pspec.task_specs.values():
            form = ((getattr(ts, "extensions", None) or {}).get("properties") or {}).get("form")
            if form:
                names.add(form)
    return names


def deploy(s: Session, bundle: Bundle, actor: str | None = None, tag: str | None = None,
           activate: bool = True, progress: Callable[[int, int, str], None] | None = None) -> DeployReport:
    """Validate the bundle and store one version per process whose content changed."""
    parsed = parse_bundle(bundle)
    report = DeployReport()
    files = {n: c.decode("utf-8") for n, c in {**bundle.bpmn, **bundle.dmn}.items()}
    calendar = bundle.calendar.decode("utf-8") if bundle.calendar is not None else None
    if calendar is not None:
        files[CALENDAR_FILE] = calendar
    total = len(parsed.specs)
    for i, (pid, (spec, subs)) in enumerate(parsed.specs.items(), 1):
        spec_doc = {"spec": SERIALIZER.registry.convert(spec),
                    "subprocess_specs": {k: SERIALIZER.registry.convert(v) for k, v in subs.items()}}
        spec_json = json.dumps(spec_doc, sort_keys=True, ensure_ascii=False)
        forms = {n: parsed.forms[n] for n in sorted(_forms_of(spec, subs)) if n in parsed.forms}
        sha = _sha(spec_json, forms, calendar)
        definition = s.get(ProcessDefinition, pid)
        if definition is None:
            definition = ProcessDefinition(process_id=pid, name=parsed.names.get(pid))
            s.add(definition)
            s.flush()
        existing = s.scalars(
            select(ProcessVersion).where(ProcessVersion.process_id == pid, ProcessVersion.sha256 == sha)
            .order_by(ProcessVersion.number.desc())
        ).first()
        if existing is not None and existing.state != "retired":
            report.unchanged.append(existing)
            version = existing
        else:
            number = (s.scalar(select(func.max(ProcessVersion.number)).where(ProcessVersion.process_id == pid)) or 0) + 1
            version = ProcessVersion(
                process_id=pid, number=number, name=parsed.names.get(pid), tag=tag, sha256=sha,
                spec_json=spec_json, files=files, forms=forms, deployed_by=actor,
                deployed_at=clock.now(), state="deployed",
            )
            s.add(version)
            s.flush()
            report.created.append(version)
        if activate and (definition.active_version_id is None or version in report.created):
            definition.active_version_id = version.id
            report.activated.append(version)
        if progress:
            progress(i, total, pid)
    return report
