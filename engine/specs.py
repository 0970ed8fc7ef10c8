"""Process versions as the runtime uses them: parsed specs cached per version, which version a
new instance runs, and checking submitted data against a version's forms.

A mixin of `Runtime` (not a separate object) so the per-step spec lookup stays one method call.
"""
from __future__ import annotations

import threading

from jsonschema import Draft202012Validator
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from .db import Database
from .errors import Conflict, InvalidData, NotFound
from .form_validation import form_validator
from .models import ProcessDefinition, ProcessVersion, VersionPin
from .serializer import load_specs

_SEL_ACTIVE = select(ProcessDefinition.__table__.c.active_version_id).where(
    ProcessDefinition.__table__.c.process_id == bindparam("p_pid"))


class SpecCache:
    """Spec, form and validator caches of a runtime (set up by `Runtime.__init__`)."""

    db: Database
    validate_forms: bool
    _specs: dict[int, tuple]
    _validators: dict[tuple[int, str], Draft202012Validator]
    _lock: threading.Lock

    def _version(self, s: Session, version_id: int) -> tuple:
        cached = self._specs.get(version_id)
        if cached is None:
            v = s.get(ProcessVersion, version_id)
            if v is None:
                raise NotFound(f"process version {version_id} does not exist")
            spec, subs = load_specs(v.spec_json)
            cached = (spec, subs, v.forms or {}, v.process_id)
            with self._lock:
                self._specs[version_id] = cached
        return cached

    def specs(self, s: Session, version_id: int) -> tuple:
        """(spec, subprocess specs, forms, process id) of a version, parsed once and cached."""
        return self._version(s, version_id)

    def resolve_version(self, s: Session, process_id: str, version_id: int | None = None,
                        scopes: list[str] | None = None) -> int:
        """Which version a new instance uses: the named one, a pin for its scope, or the active one."""
        if version_id is not None:
            v = s.get(ProcessVersion, version_id)
            if v is None or v.process_id != process_id:
                raise NotFound(f"version {version_id} of {process_id} does not exist")
            if v.state == "retired":
                raise Conflict(f"{process_id} v{v.number} is retired")
            return v.id
        if scopes:
            pins = s.execute(select(VersionPin.scope, VersionPin.version_id).where(
                VersionPin.process_id == process_id, VersionPin.scope.in_(scopes))).all()
            if pins:
                return max(pins, key=lambda p: len(p[0]))[1]
        active = s.connection().execute(_SEL_ACTIVE, {"p_pid": process_id}).scalar()
        if active is None:
            raise NotFound(f"process {process_id} has no active version; deploy it first")
        return active

    def form_schema(self, version_id: int, form: str | None, session: Session | None = None) -> dict | None:
        """The JSON Schema of one of a version's forms (None if no form is named)."""
        if not form:
            return None
        if session is not None:
            return self._version(session, version_id)[2].get(form)
        with self.db.read() as s:
            return self._version(s, version_id)[2].get(form)

    def validate_task_data(self, version_id: int, form: str | None, data: dict, session: Session | None = None) -> None:
        """Raise InvalidData listing every error (path and message) if data does not fit the form."""
        if not form or not self.validate_forms:
            return
        key = (version_id, form)
        validator = self._validators.get(key)
        if validator is None:
            schema = self.form_schema(version_id, form, session)
            if schema is None:
                raise InvalidData(f"form {form} is missing from this process version")
            validator = form_validator(schema)
            self._validators[key] = validator
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        if errors:
            raise InvalidData(
                "the form has errors",
                [{"path": "/".join(str(p) for p in e.absolute_path), "message": e.message,
                  "validator": e.validator} for e in errors],
            )
