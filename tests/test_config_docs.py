"""Every environment variable the code reads is documented: a setting nobody can find is a setting
nobody can use (or secure). The README's configuration table and docs/configuration.md together
must name each `GRIDFLOW_` variable that appears in engine/, grid/ and web/."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"GRIDFLOW_[A-Z0-9_]*[A-Z0-9]")


def _names_in_code() -> set[str]:
    out: set[str] = set()
    for pkg in ("engine", "grid", "web"):
        for path in (ROOT / pkg).rglob("*.py"):
            out |= set(NAME.findall(path.read_text(encoding="utf-8")))
    # "GRIDFLOW_SMTP_ ..." in a docstring introduces a family, not a variable of its own
    return {n for n in out if not any(o.startswith(n + "_") for o in out)}


def test_every_variable_the_code_reads_is_documented():
    docs = (ROOT / "README.md").read_text(encoding="utf-8") + (ROOT / "docs" / "configuration.md").read_text(
        encoding="utf-8")
    documented = set(NAME.findall(docs))
    names = _names_in_code()
    assert len(names) > 40  # the scan found the code's settings
    assert sorted(names - documented) == []
