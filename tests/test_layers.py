"""The layers hold: a check over the import graph (ast), so a crossing fails the suite.

    web/  ->  grid/{org, cases, registry}  ->  engine/

- engine/ imports nothing from grid/ or web/;
- web/ imports neither SpiffWorkflow nor sqlalchemy (routes call service functions);
- grid/org imports neither grid.cases nor grid.registry;
- grid/cases does not import grid.registry;
- grid/registry takes from grid.cases only `report` (a visit opening a dispute case);
- grid/ imports neither web/ nor Flask (the domain does not know it is served over HTTP);
- web/ opens no database session of its own (`svc.db.read()` / `svc.db.write()`): a session is
  SQL in everything but the import, so it belongs in a service function.

Imports inside functions count too: a lazy import is still a dependency.
"""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# (package whose files are checked, forbidden module prefixes, allowed exceptions as (module, name))
RULES: list[tuple[str, tuple[str, ...], set[tuple[str, str]]]] = [
    ("engine", ("grid", "web"), set()),
    ("grid", ("web", "flask", "flask_babel", "flask_login", "flask_wtf"), set()),
    ("web", ("SpiffWorkflow", "sqlalchemy"), set()),
    ("grid.org", ("grid.cases", "grid.registry"), set()),
    ("grid.cases", ("grid.registry",), set()),
    ("grid.registry", ("grid.cases",), {("grid.cases.service", "report")}),
]


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(root: Path, path: Path) -> Iterator[tuple[int, str, str | None]]:
    """(line, module, imported name or None) for every import in the file, relative ones resolved."""
    mod = module_name(root, path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                # `from grid.cases import service` imports the module grid.cases.service
                yield node.lineno, base, a.name


def _matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(root: Path) -> list[str]:
    """Every import that crosses a layer, as 'file:line: module[.name] (rule)'."""
    found = []
    for package, forbidden, allowed in RULES:
        folder = root / package.replace(".", "/")
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.py")):
            for line, module, name in imports(root, path):
                full = f"{module}.{name}" if name else module
                for prefix in forbidden:
                    if not (_matches(module, prefix) or _matches(full, prefix)):
                        continue
                    if (module, name) in allowed:
                        continue
                    found.append(f"{path.relative_to(root)}:{line}: {full} ({package} must not import {prefix})")
    return found


def sessions_opened(root: Path, package: str = "web") -> list[str]:
    """Calls of `<something>.db.read()` / `.db.write()` / `.db.engine` under `package`."""
    found = []
    for path in sorted((root / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if (isinstance(node, ast.Attribute) and node.attr in ("read", "write", "engine")
                    and isinstance(node.value, ast.Attribute) and node.value.attr == "db"):
                found.append(f"{path.relative_to(root)}:{node.lineno}: .db.{node.attr} (web must call a service function)")
    return found


def test_no_layer_is_crossed():
    assert violations(ROOT) == []


def test_web_opens_no_database_session():
    assert sessions_opened(ROOT) == []


def test_a_session_opened_in_web_is_caught(tmp_path):
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "bad.py").write_text("def page(svc):\n    with svc.db.read() as s:\n        pass\n")
    assert len(sessions_opened(tmp_path)) == 1


@pytest.mark.parametrize("where, source, rule", [
    ("engine/bad.py", "from grid.org import service\n", "engine must not import grid"),
    ("engine/bad.py", "def f():\n    import web.cli\n", "engine must not import web"),
    ("web/bad.py", "from sqlalchemy import select\n", "web must not import sqlalchemy"),
    ("web/ui/bad.py", "from SpiffWorkflow.bpmn import BpmnWorkflow\n", "web must not import SpiffWorkflow"),
    ("grid/org/bad.py", "from ..cases import service\n", "grid.org must not import grid.cases"),
    ("grid/org/bad.py", "from grid import registry\n", "grid.org must not import grid.registry"),
    ("grid/cases/bad.py", "from grid.registry.models import Resident\n", "grid.cases must not import grid.registry"),
    ("grid/registry/bad.py", "from grid.cases.models import DisputeCase\n", "grid.registry must not import grid.cases"),
    ("grid/registry/bad.py", "from grid.cases import service\n", "grid.registry must not import grid.cases"),
    ("grid/cases/bad.py", "from flask import request\n", "grid must not import flask"),
    ("grid/org/bad.py", "import web.cli\n", "grid must not import web"),
])
def test_a_deliberate_crossing_is_caught(tmp_path, where, source, rule):
    """The checker is not vacuous: each rule fires on a planted violation (relative and lazy imports too)."""
    target = tmp_path / where
    target.parent.mkdir(parents=True, exist_ok=True)
    for parent in target.relative_to(tmp_path).parents:
        if str(parent) != ".":
            (tmp_path / parent / "__init__.py").touch()
    target.write_text(source)
    found = violations(tmp_path)
    assert len(found) == 1 and rule in found[0], found


def test_the_one_allowed_call_from_the_registry_into_cases(tmp_path):
    target = tmp_path / "grid/registry/visits.py"
    target.parent.mkdir(parents=True)
    target.write_text("def open_case():\n    from grid.cases.service import report\n")
    assert violations(tmp_path) == []
