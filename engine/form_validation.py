"""Form validation against a task's JSON Schema with errors pointed at fields.

Generic: the web layer turns these into messages beside each field; the engine's own check
(`Runtime.validate_task_data`) raises `InvalidData`, which `errors_from` maps to the same shape.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from engine.errors import InvalidData


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
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
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
