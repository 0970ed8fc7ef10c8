"""Cell values for spreadsheet exports (CSV, XLSX) that a spreadsheet will not run as formulas.

A resident named `=HYPERLINK("http://evil.example","点击")` would otherwise become a live
formula when an official opens the export. Following the OWASP "CSV injection" guidance, a
text cell that begins with = + - @ or a tab or carriage return gets a leading single quote, so
the spreadsheet shows the text as typed. Numbers, dates and other non-text values pass as they
are (a negative number is data, not a formula).
"""
from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: Any) -> Any:
    """The value to write into an export cell: text that a spreadsheet would read as a formula
    is prefixed with "'"; anything else (None, numbers, dates, other text) is returned as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def unescape_formula(text: str) -> str:
    """The inverse on import: a cell our export escaped ("'=…") reads back as typed ("=…")."""
    if text.startswith("'") and text[1:2] and text[1:2] in FORMULA_STARTS:
        return text[1:]
    return text


def file_encoding(path: Path) -> str:
    """The encoding of an uploaded CSV: UTF-8 (with or without BOM) if its first MiB decodes as
    such, else GB18030 (what Excel on a Chinese Windows writes)."""
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "gb18030"
