"""Task forms from JSON Schema: fields to render, reading a submission back into JSON, and errors.

Widgets (`x-widget`, or inferred from the type): text, textarea, number, select, radio,
checkboxes, switch, datetime, date, photo, file, audio, video, media (uploads, by kind:
grid/cases/media.py WIDGET_KINDS), staff (+ `x-staff-role`), geo ({text, lat,
lng}), rows (an array of objects), parties (rows of [{name, phone, resident_id}] with the
registry picker) and signature (a typed name plus a handwritten pad; the drawing is stored as a
PNG attachment whose id goes into the property named by `x-image`, which is not a field of its
own). Field order follows
`x-order`. A field required only under an if/then carries the condition, so the page can mark
it required when the condition holds; the server validates the whole schema either way.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from engine import clock
from engine.errors import InvalidData
from grid.cases import attachments, media, signatures
from grid.cases import labels as case_labels
from web.ui.form_messages import error_map, merge, message, signature_message, upload_message  # noqa: F401

FILE_WIDGETS = ("photo", "file", "audio", "video", "media")  # kinds per widget: grid.cases.media.WIDGET_KINDS
ROW_WIDGETS = ("rows", "parties")  # parties: rows picked from the registry (widgets/parties.html)
WIDGETS = {"text", "textarea", "number", "select", "radio", "checkboxes", "switch", "datetime", "date", "photo", "file",
           "audio", "video", "media", "staff", "geo", "rows", "group", "parties", "signature"}
ALIASES: dict[str, str] = {}
# Control characters (C0 but tab, LF and CR; DEL; C1): no one types them, PostgreSQL refuses NUL
# in text, and they garble exports and logs. Refused, never silently stripped.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # for single-line values such as a redirect target


@dataclass
class Field:
    name: str  # the input name: 'description', 'location.text', 'parties.0.phone'
    key: str
    schema: dict
    widget: str
    label: str
    help: str | None = None
    required: bool = False
    required_when: dict[str, str] = field(default_factory=dict)
    options: list[tuple[str, str]] = field(default_factory=list)
    children: list[Field] = field(default_factory=list)

    @property
    def required_when_json(self) -> str:
        return json.dumps(self.required_when, ensure_ascii=False) if self.required_when else ""

    @property
    def shown_when_json(self) -> str:
        """The condition under which the field is shown at all: a field an if/then asks for only
        when a switch is on (report: 现场化解情况 when settled on the spot) stays hidden while it
        is off. Fields required under other conditions are useful either way and always shown."""
        if self.required or not self.required_when or set(self.required_when.values()) != {"true"}:
            return ""
        return self.required_when_json

    @property
    def value_type(self) -> str:
        return self.schema.get("type") or "string"


def _key(v: Any) -> str:
    """How a value appears in an HTML form: booleans as true/false."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


def _conditions(schema: dict) -> dict[str, dict[str, str]]:
    """{field: {other_field: value}} for fields an if/then makes required when other_field == value."""
    out: dict[str, dict[str, str]] = {}
    blocks = [schema] + [b for b in schema.get("allOf") or [] if isinstance(b, dict)]
    for b in blocks:
        cond, then = b.get("if") or {}, b.get("then") or {}
        props = cond.get("properties") or {}
        if len(props) != 1:
            continue
        (other, c), = props.items()
        if "const" not in c:
            continue
        for req in then.get("required") or []:
            out.setdefault(req, {})[other] = _key(c["const"])
    return out


def _widget(node: dict) -> str:
    w = ALIASES.get(node.get("x-widget"), node.get("x-widget"))
    t = node.get("type")
    if w in WIDGETS:
        if w == "datetime" and node.get("format") == "date":
            return "date"
        return w
    if t == "boolean":
        return "radio" if node.get("enum") else "switch"
    if "enum" in node:
        return "radio" if len(node["enum"]) <= 3 else "select"
    if t in ("number", "integer"):
        return "number"
    if t == "array":
        items = node.get("items") or {}
        if items.get("enum"):
            return "checkboxes"
        if items.get("type") == "object":
            return "rows"
        return "textarea"
    if t == "object":
        return "group"
    if node.get("format") == "date-time":
        return "datetime"
    if node.get("format") == "date":
        return "date"
    return "text"


def _title(node: dict, key: str, lang: str) -> str:
    return case_labels.titles_of(node).get(lang) or node.get("title") or key


def _help(node: dict, lang: str) -> str | None:
    if lang == "zh":
        return node.get("description")
    return (node.get("x-description") or {}).get(lang)


def build(schema: dict, lang: str, staff_options: dict[str, list[tuple[str, str]]] | None = None,
          prefix: str = "", parent: str = "") -> list[Field]:
    """The fields of an object schema, in `x-order` (then the remaining properties). Options for
    a staff picker come under its key; for a unit picked in a row (`x-unit-level`, such as the
    departments of 部门协同) under "<rows field>.<key>", and the cell becomes a select."""
    props = schema.get("properties") or {}
    order = [k for k in schema.get("x-order") or [] if k in props] + [k for k in props if k not in
                                                                       (schema.get("x-order") or [])]
    required = set(schema.get("required") or [])
    conds = _conditions(schema)
    images = {n.get("x-image") for n in props.values() if isinstance(n, dict) and n.get("x-widget") == "signature"}
    out = []
    for key in order:
        if key in images:
            continue  # a signature's drawing is part of its signature field
        node = props[key]
        name = f"{prefix}{key}"
        w = _widget(node)
        f = Field(name=name, key=key, schema=node, widget=w, label=_title(node, key, lang), help=_help(node, lang),
                  required=key in required, required_when=conds.get(key, {}))
        if w in ("select", "radio"):
            values = node.get("enum") or ([True, False] if node.get("type") == "boolean" else [])
            f.options = list(zip([_key(v) for v in values], _enum_titles(node, values, lang), strict=True))
        elif w == "checkboxes":
            items = node.get("items") or {}
            f.options = list(zip([_key(v) for v in items.get("enum") or []],
                                 _enum_titles(items, items.get("enum") or [], lang), strict=True))
        elif w == "staff":
            f.options = list((staff_options or {}).get(key, []))
        elif node.get("x-unit-level") and (staff_options or {}).get(f"{parent}.{key}"):
            f.widget = "select"
            f.options = [("", "—"), *staff_options[f"{parent}.{key}"]]
        elif w in ("geo", "group"):
            f.children = build(node, lang, None, prefix=f"{name}.")
        elif w in ROW_WIDGETS:
            f.children = build(node.get("items") or {}, lang, staff_options, prefix="", parent=key)
        out.append(f)
    return out


def _enum_titles(node: dict, values: list, lang: str) -> list[str]:
    if not node.get("x-enum-titles") and values and all(isinstance(v, bool) for v in values):
        return [_("Yes") if v else _("No") for v in values]
    return case_labels.enum_titles({**node, "enum": values}, lang)


# ---- reading a submission --------------------------------------------------------------------
def has_control(text: str | None, single_line: bool = False) -> bool:
    """Whether a submitted text holds a control character other than tab, LF or CR (or any
    control character at all, with `single_line`)."""
    return bool(text) and (ANY_CONTROL if single_line else CONTROL).search(text) is not None


def control_errors(fields: list[Field], form: MultiDict) -> dict[str, list[str]]:
    """{input name: [message]} for every posted value holding a control character; values that
    belong to no field (hidden inputs, unknown names) are reported under '' for the page top."""
    names = _input_names(fields)
    out: dict[str, list[str]] = {}
    for key, value in form.items(multi=True):
        if has_control(value) or has_control(key):
            name = key if (key in names or key.split(".", 1)[0] in names) and not has_control(key) else ""
            msgs = out.setdefault(name, [])
            if not msgs:
                msgs.append(_("The format is not valid."))
    return out


def _input_names(fields: list[Field]) -> set[str]:
    out = set()
    for f in fields:
        out.add(f.name)
        if f.widget in ("geo", "group"):
            out |= _input_names(f.children)
    return out


def image_key(f: Field) -> str | None:
    """The property a signature field's drawing (attachment id) goes into, if any."""
    return f.schema.get("x-image") if f.widget == "signature" else None


def _coerce(node: dict, raw: str) -> Any:
    """A typed value from one text input; '' means absent. Unparseable numbers stay strings so
    that validation reports them."""
    t = node.get("type")
    raw = raw.replace("\r\n", "\n")
    if node.get("x-widget") != "textarea":
        raw = raw.strip()
    if raw.strip() == "":
        return None
    if t == "boolean":
        return {"true": True, "false": False, "on": True}.get(raw.lower(), raw)
    if t in ("number", "integer"):
        try:
            n = float(raw)
        except ValueError:
            return raw
        if not math.isfinite(n):  # 'nan', 'inf': no bound compares false against them
            return raw
        if t == "integer" and n.is_integer():
            return int(n)
        return n
    if node.get("format") == "date-time" or node.get("x-widget") == "datetime":
        try:
            d = datetime.fromisoformat(raw)
        except ValueError:
            return raw
        if d.tzinfo is None:
            d = d.replace(tzinfo=clock.SHANGHAI)
        return d.isoformat()
    return raw


def collect(fields: list[Field], form: MultiDict) -> tuple[dict, dict]:
    """(data for the schema, raw values to show again). File fields are left to `read`."""
    data: dict = {}
    raw: dict = {}
    for f in fields:
        w = f.widget
        if w in FILE_WIDGETS:
            continue
        if w == "switch":
            on = form.get(f.name, "") in ("on", "true", "1")
            raw[f.name] = on
            data[f.key] = on
        elif w in ("checkboxes", "staff"):
            vals = [v for v in form.getlist(f.name) if v]
            raw[f.name] = vals
            item = f.schema.get("items") or {}
            coerced = [_coerce(item, v) for v in vals]
            if coerced:
                data[f.key] = coerced
        elif w in ("geo", "group"):
            sub, sub_raw = collect(f.children, form)
            raw.update(sub_raw)
            sub = {k: v for k, v in sub.items() if not (isinstance(v, bool) and not v)}
            if any(v not in (None, "", [], {}) for v in sub.values()):
                data[f.key] = sub
        elif w in ROW_WIDGETS:
            rows, raw_rows = _rows(f, form)
            raw[f.name] = raw_rows
            if rows:
                data[f.key] = rows
        else:
            value = form.get(f.name, "")
            raw[f.name] = value
            v = _coerce(f.schema, value)
            if v is not None:
                data[f.key] = v
    return data, raw


def _rows(f: Field, form: MultiDict) -> tuple[list[dict], list[dict]]:
    indices = sorted({int(k.split(".")[1]) for k in form.keys()
                      if k.startswith(f.name + ".") and k.split(".")[1].isdigit()})
    rows, raw_rows = [], []
    for i in indices[:200]:
        rraw = {c.key: form.get(f"{f.name}.{i}.{c.key}", "") for c in f.children}
        if not any(v.strip() for v in rraw.values()):
            continue
        raw_rows.append(rraw)
        row = {}
        for c in f.children:
            v = _coerce(c.schema, rraw[c.key])
            if v is not None:
                row[c.key] = v
        rows.append(row)
    return rows, raw_rows


@dataclass
class Submission:
    data: dict
    raw: dict
    files: dict[str, list[attachments.StoredFile]]
    errors: dict[str, list[str]]
    new_uploads: list[str]
    checked: list[attachments.Checked] = field(default_factory=list)  # uploads not stored yet

    @property
    def upload_ids(self) -> list[str]:
        return [a.id for fs in self.files.values() for a in fs] + [c.id for c in self.checked]


def read(svc, staff_id: str, fields: list[Field], form: MultiDict, files: MultiDict,
         case_id: int | None = None) -> Submission:
    """Read a posted form: typed data, raw values, uploads checked but not stored (the caller
    stores them with `save_uploads` once the whole form is valid, so a refused form leaves
    nothing; their names come back in raw `<name>.unsaved`), and upload errors per field. Text with control
    characters is an error of its field (so the caller answers 422 and stores nothing)."""
    data, raw = collect(fields, form)
    stored: dict[str, list[attachments.StoredFile]] = {}
    errors: dict[str, list[str]] = control_errors(fields, form)
    new: list[str] = []
    checked: list[attachments.Checked] = []
    for f in fields:
        if image_key(f):
            _signature(svc, f, form, data, raw, checked, errors)
            continue
        if f.widget not in FILE_WIDGETS:
            continue
        keep = [i for i in form.getlist(f.name + ".keep") if i][:50]
        try:
            kept = attachments.usable(svc, staff_id, keep, case_id)
        except InvalidData:
            kept = []
            errors.setdefault(f.name, []).append(_("An attached file is not available any more."))
        ids: list[str] = []
        for up in files.getlist(f.name):
            if not up or not up.filename:
                continue
            try:
                c = attachments.check(svc, up.filename, up.stream, kinds=media.WIDGET_KINDS[f.widget], field=f.name)
            except attachments.UploadRefused as e:
                errors.setdefault(f.name, []).append(upload_message(e.code, up.filename, e.limit_mb))
                continue
            checked.append(c)
            raw.setdefault(f.name + ".unsaved", []).append(c.filename)
            ids.append(c.id)
        stored[f.name] = kept
        ids = [a.id for a in kept] + ids
        if ids:
            data[f.key] = ids
    return Submission(data, raw, stored, errors, new, checked)


def save_uploads(svc, staff_id: str, sub: Submission) -> None:
    """Store the uploads `read` checked, now that the form is valid: pending until the route
    links them to the case (or keeps them), discarded if the step fails."""
    sub.new_uploads.extend(a.id for a in attachments.save(svc, staff_id, sub.checked))


def _signature(svc, f: Field, form: MultiDict, data: dict, raw: dict, checked: list, errors: dict) -> None:
    """A signature field's drawing from the pad (`<name>.png`, a data URL): checked and cleaned
    (grid.cases.signatures), then saved with the form's other uploads once the form is valid; its
    attachment id goes into the `x-image` property. On a refused form the clean drawing comes
    back in raw `<name>.png`, so the pad shows it again and nothing was stored."""
    drawn = (form.get(f.name + ".png") or "").strip()
    if not drawn:
        return
    try:
        c, png = signatures.check(svc, drawn, field=f.name)
    except InvalidData as e:  # SignatureRefused, or the attachment checks' own refusal
        errors.setdefault(f.name, []).append(signature_message(getattr(e, "code", "")))
        return
    checked.append(c)
    raw[f.name + ".png"] = signatures.data_url(png)
    data[image_key(f)] = c.id


@dataclass
class FormState:
    """What the form macros need: raw values (or defaults), stored files and errors."""

    raw: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    submitted: bool = False

    def value(self, f: Field) -> Any:
        if f.name in self.raw:
            return self.raw[f.name]
        if self.submitted:
            return "" if f.widget not in ("checkboxes", "staff", "rows", "parties", "switch") else (
                False if f.widget == "switch" else [])
        default = f.schema.get("default")
        if f.widget == "switch":
            return bool(default)
        if f.widget in ("checkboxes", "staff"):
            return [_key(x) for x in default or []]
        if f.widget in ROW_WIDGETS:
            return []
        return _key(default)

    def errors_for(self, name: str) -> list[str]:
        return self.errors.get(name, [])

    def has_errors_under(self, name: str) -> bool:
        return any(k == name or k.startswith(name + ".") for k in self.errors)

    def files_for(self, name: str) -> list:
        return self.files.get(name, [])

    @property
    def general_errors(self) -> list[str]:
        return self.errors.get("", [])


def describe(schema: dict | None, data: dict, lang: str, names: dict[str, str], mask) -> list[tuple[str, str]]:
    """(label, shown value) pairs of submitted form data, for the timeline; phones masked with
    `mask` (None to show them), photos and files left out (the page lists attachments). `names`
    gives staff names by id and unit names by code."""
    if not schema or not isinstance(data, dict):
        return []
    out = []
    for f in build(schema, lang):
        if f.key not in data or f.widget in FILE_WIDGETS:
            continue
        v = data[f.key]
        if f.widget in ("select", "radio"):
            shown = dict(f.options).get(_key(v), _key(v))
        elif f.widget == "switch":
            shown = _("Yes") if v else _("No")
        elif f.widget == "staff":
            shown = "、".join(names.get(x, x) for x in v or [])
        elif f.widget == "checkboxes":
            opts = dict(f.options)
            shown = "、".join(opts.get(_key(x), _key(x)) for x in v or [])
        elif f.widget in ("geo", "group") and isinstance(v, dict):
            shown = str(v.get("text") or "")
        elif f.widget in ROW_WIDGETS and isinstance(v, list):
            unit_keys = {c.key for c in f.children if c.schema.get("x-unit-level")}  # a department: its name
            order = [c.key for c in f.children]  # the cells in the form's order, then any others
            shown = "；".join(" ".join(str(mask(row[k])) if (k == "phone" and mask) else
                                      str(names.get(row[k], row[k])) if k in unit_keys and isinstance(row[k], str)
                                      else str(row[k])
                                      for k in [*[k for k in order if k in row], *[k for k in row if k not in order]])
                               for row in v if isinstance(row, dict))
        else:
            shown = _key(v)
        if shown != "":
            out.append((f.label, shown))
    return out
