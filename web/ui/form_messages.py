"""The words of a task form's errors: JSON-Schema validation errors, uploads and signatures, in
the reader's language (web.ui.forms builds and reads the forms; this says what went wrong)."""
from __future__ import annotations

from flask_babel import gettext as _

from engine import form_validation
from grid.cases import checks


def signature_message(code: str) -> str:
    return {
        "size": _("The signature is too large; clear it and sign again."),
        "dimensions": _("The signature has an unusual size; clear it and sign again."),
        "empty": _("The signature is empty; sign in the box or clear it."),
    }.get(code, _("The signature could not be read; clear it and sign again."))


def upload_message(code: str, filename: str | None = None, limit_mb: float | None = None) -> str:
    name = filename or ""
    return {
        "name": _("%(name)s: the file name must not contain a path.", name=name),
        "type": _("%(name)s: this kind of file is not accepted here (photos: JPEG, PNG, WebP, HEIC; voice: "
                  "WebM, Ogg, M4A, MP3, AMR; video: MP4, WebM, MOV; documents: PDF).", name=name),
        "size": _("%(name)s: the file is larger than %(mb)s MB.", name=name, mb=f"{limit_mb or 10:g}"),
        "empty": _("%(name)s: the file is empty.", name=name),
        "damaged": _("%(name)s: the photo cannot be read (damaged or too large in pixels).", name=name),
    }.get(code, _("%(name)s: the file was not accepted.", name=name))


def message(e: form_validation.FieldError) -> str:
    v, n = e.validator, e.value
    if v == "required":
        return _("This field is required.")
    if v == "minLength":
        return _("Enter at least %(n)s characters.", n=n)
    if v == "maxLength":
        return _("Enter at most %(n)s characters.", n=n)
    if v in ("minItems",):
        return _("Choose at least %(n)s.", n=n)
    if v in ("maxItems",):
        return _("Choose at most %(n)s.", n=n)
    if v == "minimum":
        return _("Must be at least %(n)s.", n=n)
    if v == "maximum":
        return _("Must be at most %(n)s.", n=n)
    if v == "type" and n in ("number", "integer"):
        return _("Enter a number.")
    if v in ("pattern", "format"):
        return _("The format is not valid.")
    if v in ("enum", "const"):
        return _("Choose one of the options.")
    if v == "uniqueItems":
        return _("Each entry may appear only once.")
    if v == "staff":
        return _("Choose people of this unit only.")
    if v == "upload":
        return upload_message(str(n or ""))
    if v == "signature":
        return signature_message(str(n or ""))
    if v == "case":  # grid.cases.checks: a 重复件 names no case the person may see, or itself
        if e.message == checks.NO_SUCH_CASE:
            return _("There is no case with this number in your jurisdiction.")
        return _("A case cannot be a duplicate of itself.")
    if v == "resident":
        return _("There is no registered resident with this id in your jurisdiction; pick the party again.")
    return _("This value is not valid.")


def error_map(errs: list[form_validation.FieldError]) -> dict[str, list[str]]:
    """{input name: [messages]}; errors that name no field are under ''."""
    out: dict[str, list[str]] = {}
    for e in errs:
        name = ".".join(str(p) for p in e.path)
        msgs = out.setdefault(name, [])
        m = message(e)
        if m not in msgs:
            msgs.append(m)
    return out


def merge(a: dict[str, list[str]], b: dict[str, list[str]]) -> dict[str, list[str]]:
    out = {k: list(v) for k, v in a.items()}
    for k, v in b.items():
        out.setdefault(k, []).extend(m for m in v if m not in out[k])
    return out


