"""Static coverage check for a DMN decision table: which input combinations no rule matches.

Understands the entries designers write for enumerations: `-` or empty (any), and one or
more quoted literals separated by commas. Anything else is treated as "may match" so the
check never reports a false gap.
"""
from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from engine import xmlsafe

_LITERAL = re.compile(r'^\s*"([^"]*)"\s*$')


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _entry_matches(text: str, value: str) -> bool:
    text = (text or "").strip()
    if text in ("", "-"):
        return True
    parts = [p for p in text.split(",")]
    lits = [_LITERAL.match(p) for p in parts]
    if all(lits):
        return value in {m.group(1) for m in lits}
    return True


def gaps(content: bytes, decision_id: str, domains: dict[str, list[str]]) -> Iterator[tuple[str, int | None]]:
    """Yield (description of an uncovered combination, line) for the decision `decision_id`."""
    root = xmlsafe.parse(content, "dmn")
    for decision in root.iter():
        if not isinstance(decision.tag, str) or _local(decision.tag) != "decision" or decision.get("id") != decision_id:
            continue
        table = next((e for e in decision if isinstance(e.tag, str) and _local(e.tag) == "decisionTable"), None)
        if table is None:
            return
        inputs = []
        for inp in table:
            if isinstance(inp.tag, str) and _local(inp.tag) == "input":
                expr = next((t for t in inp.iter() if isinstance(t.tag, str) and _local(t.tag) == "text"), None)
                inputs.append((expr.text or "").strip() if expr is not None else "")
        rules = []
        for rule in table:
            if isinstance(rule.tag, str) and _local(rule.tag) == "rule":
                entries = [e for e in rule if isinstance(e.tag, str) and _local(e.tag) == "inputEntry"]
                rules.append([(next((t.text for t in e.iter() if isinstance(t.tag, str) and _local(t.tag) == "text"), "")
                               or "") for e in entries])
        names = [n for n in inputs if n in domains]
        if not names:
            return
        for combo in itertools.product(*(domains[n] for n in names)):
            values = dict(zip(names, combo, strict=True))
            covered = False
            for rule in rules:
                if all(_entry_matches(rule[i] if i < len(rule) else "-", values[n])
                       for i, n in enumerate(inputs) if n in values):
                    covered = True
                    break
            if not covered:
                yield ", ".join(f"{k}={v}" for k, v in values.items()), decision.sourceline
        return
