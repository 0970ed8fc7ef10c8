"""Form validation against a task's JSON Schema with errors pointed at fields.

Generic: the web layer turns these into messages beside each field; the engine's own check
(`Runtime.validate_task_data`) raises `InvalidData`, which `errors_from` maps to the same shape.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import re2
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from engine.errors import InvalidData

# ---- patterns run on RE2 (linear time): a form's `pattern` can never hang a request ----------
_RE2 = re2.Options()
_RE2.log_errors = False
_compiled: dict[str, Any] = {}


def compile_pattern(pattern: str):
    """The RE2 form of a schema pattern (cached); raises ValueError if RE2 cannot express it
    (backreferences, lookaround: the constructs that backtrack)."""
    rx = _compiled.get(pattern)
    if rx is None:
        try:
            rx = re2.compile(pattern, options=_RE2)
        except re2.error as e:
            msg = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
            raise ValueError(msg) from None
        if len(_compiled) < 4096:
            _compiled[pattern] = rx
    return rx


def _pattern(validator, patrn, instance, schema):
    if validator.is_type(instance, "string") and not compile_pattern(patrn).search(instance):
        yield ValidationError(f"{instance!r} does not match {patrn!r}")


def _pattern_properties(validator, pattern_properties, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for patrn, subschema in pattern_properties.items():
        rx = compile_pattern(patrn)
        for k, v in instance.items():
            if rx.search(k):
                yield from validator.descend(v, subschema, path=k, schema_path=patrn)


FormValidator = validators.extend(Draft202012Validator, {"pattern": _pattern,
                                                         "patternProperties": _pattern_properties})
"""Draft 2020-12 with `pattern` and `patternProperties` matched by RE2; every form check uses it."""


def form_validator(schema: dict) -> Any:
    """A validator for a form schema, with format checks and RE2 patterns."""
    return FormValidator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def unsafe_parts(schema: Any) -> list[str]:
    """What deploy refuses in a form schema: a `$ref`/`$dynamicRef` that leaves the document
    (remote or file: it would be fetched while validating), and patterns RE2 cannot run."""
    out: list[str] = []
    stack = [(schema, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, list):
            stack.extend((v, f"{path}/{i}") for i, v in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        for key in ("$ref", "$dynamicRef"):
            ref = node.get(key)
            if isinstance(ref, str) and not ref.startswith("#"):
                out.append(f"{path or '/'}: {key} {ref!r} points outside the form; only local references (#/...) "
                           "are allowed")
        pats = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        if isinstance(node.get("patternProperties"), dict):
            pats += list(node["patternProperties"])
        for p in pats:
            try:
                compile_pattern(p)
            except ValueError as e:
                out.append(f"{path or '/'}: pattern {p!r} cannot be run in linear time (RE2: {e}); "
                           "rewrite it without backreferences or lookaround")
        for k, v in node.items():
            if k not in ("const", "enum", "default", "examples"):
                stack.append((v, f"{path}/{k}"))
    return sorted(out)


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
    validator = form_validator(schema)
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
