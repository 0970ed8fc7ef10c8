"""Words for the registry's codes in the user's language (Flask-Babel; English msgids translated in
web/translations): categories, risk levels, statuses, sexes, relations, life events, import
progress and counts. `grid.registry.models` carries Chinese data labels only, so English users
see English through these tables; also the history entries of the resident page, in words.
"""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from grid import masking
from grid.registry import rules

# Words for the codes of grid.registry.models (whose own labels are Chinese data labels).
CATEGORY_NAMES = {
    "community_correction": _l("People under community correction"),
    "released": _l("Released prisoners"),
    "mental_disorder": _l("People with severe mental disorders"),
    "drug_user": _l("Drug users"),
    "key_youth": _l("Youth at risk"),
    "elderly_alone": _l("Elderly living alone"),
    "left_behind_child": _l("Left-behind children"),
    "disabled": _l("People with disabilities"),
}
RISK_NAMES = {"high": _l("High risk"), "medium": _l("Medium risk"), "low": _l("Low risk")}
STATUS_NAMES = {"living": _l("Living here"), "moved_out": _l("Moved out"), "deceased": _l("Deceased")}
SEX_NAMES = {"M": _l("Male"), "F": _l("Female")}
RELATION_NAMES = {
    "head": _l("Head of household"), "spouse": _l("Spouse"), "child": _l("Child"), "parent": _l("Parent"),
    "grandchild": _l("Grandchild"), "grandparent": _l("Grandparent"), "sibling": _l("Sibling"),
    "child_in_law": _l("Child-in-law"), "other": _l("Other"),
}
EVENT_NAMES = {
    "birth": _l("Birth"), "death": _l("Death"), "move_in": _l("Moved in"), "move_out": _l("Moved out"),
    "transfer": _l("Moved to another household"), "update": _l("Details corrected"),
    "head": _l("Head of household changed"), "flag": _l("Flagged"), "unflag": _l("Flag ended"),
    "risk": _l("Risk level changed"), "visit": _l("Visit"), "import": _l("Imported"),
}
JOB_NOTES = {  # the progress notes of grid.registry.writer and .export
    "queued": _l("Queued"), "validating": _l("Validating"), "writing": _l("Writing"), "checked": _l("Checked"),
    "exporting": _l("Exporting"), "done": _l("Done"),
}
BATCH_STATUSES = {"running": _l("Running"), "done": _l("Done"), "rejected": _l("Rejected"),
                  "exported": _l("Exported"), "exporting": _l("Export started (not finished)")}
IMPORT_COUNTS = {
    "buildings_created": _l("Buildings added"), "buildings_updated": _l("Buildings updated"),
    "households_created": _l("Households added"), "residents_created": _l("Residents added"),
    "residents_updated": _l("Residents updated"), "residents_unchanged": _l("Residents unchanged"),
}
WORDS = {"categories": CATEGORY_NAMES, "risk": RISK_NAMES, "status": STATUS_NAMES, "sex": SEX_NAMES,
         "relation": RELATION_NAMES, "events": EVENT_NAMES, "job": JOB_NOTES, "batch": BATCH_STATUSES,
         "counts": IMPORT_COUNTS}


def word(table: str, code: str | None) -> str:
    """The word for a code in the user's language (the code itself if the table lacks it)."""
    if code is None:
        return ""
    v = WORDS[table].get(code)
    return str(v) if v is not None else code


FIELDS = {  # history entries: field -> (label, value table or None)
    "name": (_l("Name"), None), "id_number": (_l("ID number"), "mask_id"), "phone": (_l("Phone"), "mask_phone"),
    "birth_date": (_l("Date of birth"), "mask_birth"), "sex": (_l("Sex"), "sex"),
    "relation": (_l("Relation to the head"), "relation"), "status": (_l("Status"), "status"),
    "grid_code": (_l("Grid"), None), "address": (_l("Address"), None), "door_no": (_l("Door number"), None),
    "category": (_l("Flag category"), "categories"), "risk_level": (_l("Risk level"), "risk"),
    "reason": (_l("Reason"), None), "destination": (_l("Moved to"), None), "came_from": (_l("Came from"), None),
    "active": (_l("Active"), "bool"), "household_id": (_l("Household"), "household"),
}


def history_fields(e) -> list[tuple[str, str, str]]:
    """(label, before, after) for the fields an event changed, in words; numbers stay masked (and
    birth dates show their year only)."""
    out = []
    for k, v in (e.after or {}).items():
        spec = FIELDS.get(k)
        if spec is None:
            continue
        label, table = spec
        out.append((str(label), _value(table, e.before.get(k)) if k in (e.before or {}) else "", _value(table, v)))
    return out


def page_formats() -> dict[str, str]:
    """Translated patterns for the bits the grid page repeats per household and member, looked up
    once per page (a gettext call per member costs ~15 ms on a grid of 500 households). Fill them
    with Jinja's `format` filter: `f.age|format(age=m.age)`."""
    return {"age": _("age %(age)s"), "people": _("%(n)s resident(s)"), "head": _("Head of household"),
            "none": _("(none)")}


def _value(table: str | None, v) -> str:
    if v is None or v == "":
        return "—"
    if table == "mask_id":
        return masking.mask_id(rules.event_value("id_number", v))
    if table == "mask_phone":
        return masking.mask_phone(rules.event_value("phone", v))
    if table == "mask_birth":  # the full date beside the masked ID would give the ID away
        return masking.mask_birth(v)
    if table == "bool":
        return _("Yes") if v else _("No")
    if table == "household":
        return f"#{v}"
    return word(table, v) if table else str(v)
