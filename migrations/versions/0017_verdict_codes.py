"""Engine messages stored as codes with arguments, not English sentences.

Migration verdicts and notes (`migration_record.reasons/notes`, the notes of `version_changed`
instance events) and a deploy's validation checks (`version_event.data.checks`) were stored as
English text, which the pages read back with patterns. They are now stored as
{"code", "args"} (engine.migration.labels.MESSAGES, engine.versions.CHECKS) and each page words
them in its own language. This revision converts the rows written before; a text no template
made is kept as a `text` message. The schema does not change. The downgrade writes the English
text back.
"""
from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0017_verdict_codes"
down_revision = "0001_baseline"

CHUNK = 2000
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_record = sa.table("migration_record", sa.column("id", sa.Integer), sa.column("reasons", _JSON),
                   sa.column("notes", _JSON))
_event = sa.table("instance_event", sa.column("id", sa.Integer), sa.column("kind", sa.String),
                  sa.column("data", _JSON))
_version_event = sa.table("version_event", sa.column("id", sa.Integer), sa.column("action", sa.String),
                          sa.column("data", _JSON))


# what the engine put in these arguments (labels.label, state_name, `v<n>`): the rest is any text
_ARGS = {"element": r"[^()]*? \([^()\s]+\)|[^()\s]+", "new": r"[^()]*? \([^()\s]+\)|[^()\s]+",
         "state": r"[A-Za-z_]+", "before": r"[A-Za-z_]+", "version": r"(?:[\w.-]+ )?v\d+"}


def _pattern(template: str) -> re.Pattern:
    """A regular expression reading a str.format template's text back into its arguments."""
    out, pos = [], 0
    for m in re.finditer(r"\{(\w+)\}", template):
        out += [re.escape(template[pos:m.start()]), f"(?P<{m.group(1)}>{_ARGS.get(m.group(1), '.+?')})"]
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("^" + "".join(out) + "$", re.S)


def _reader(templates: dict[str, str]):
    """text -> {"code", "args"}; the most literal template first, so "…; it would skip X" is not
    read as a shorter template's argument (a template with no literal text matches nothing)."""
    pats = sorted(((code, _pattern(t)) for code, t in templates.items() if re.sub(r"\{\w+\}", "", t).strip()),
                  key=lambda cp: -len(re.sub(r"\{\w+\}", "", templates[cp[0]])))

    def read(text):
        if not isinstance(text, str):
            return text
        for code, pat in pats:
            m = pat.match(text)
            if m:
                return {"code": code, "args": m.groupdict()}
        return {"code": "text", "args": {"text": text}}
    return read


def _writer(templates: dict[str, str]):
    def write(m):
        if not isinstance(m, dict):
            return m
        try:
            return templates[m["code"]].format(**(m.get("args") or {}))
        except (KeyError, IndexError):
            return f"{m.get('code')} {m.get('args')}"
    return write


def _rows(conn, table, where):
    last = 0
    while True:
        rows = conn.execute(sa.select(table).where(table.c.id > last, where).order_by(table.c.id)
                            .limit(CHUNK)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


def _convert(fn_verdict, fn_check) -> None:
    conn = op.get_bind()
    for rid, reasons, notes in _rows(conn, _record, sa.true()):
        new_reasons, new_notes = [fn_verdict(x) for x in reasons or []], [fn_verdict(x) for x in notes or []]
        if (new_reasons, new_notes) != (reasons or [], notes or []):
            conn.execute(_record.update().where(_record.c.id == rid).values(reasons=new_reasons, notes=new_notes))
    for eid, _kind, data in _rows(conn, _event, _event.c.kind == "version_changed"):
        if data and data.get("notes"):
            conn.execute(_event.update().where(_event.c.id == eid).values(
                data={**data, "notes": [fn_verdict(x) for x in data["notes"]]}))
    for eid, _action, data in _rows(conn, _version_event, _version_event.c.action == "deploy"):
        if data and "checks" in data:
            conn.execute(_version_event.update().where(_version_event.c.id == eid).values(data=fn_check(data)))


def upgrade() -> None:
    from engine.migration.labels import MESSAGES
    from engine.versions import CHECKS

    verdict, check = _reader(MESSAGES), _reader(CHECKS)

    def checks(data: dict) -> dict:
        codes = data.pop("check_codes", None)  # deploys since checks had codes kept both
        data["checks"] = codes or [check(c) for c in data["checks"]]
        return data

    _convert(verdict, checks)


def downgrade() -> None:
    from engine.migration.labels import MESSAGES
    from engine.versions import CHECKS

    verdict, check = _writer(MESSAGES), _writer(CHECKS)

    def checks(data: dict) -> dict:
        data["check_codes"] = [c for c in data["checks"] if isinstance(c, dict)]
        data["checks"] = [check(c) for c in data["checks"]]
        return data

    _convert(verdict, checks)
