"""Labels that process designers gave in the deployed forms: category names and form titles."""
from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import func, select

from engine.models import ProcessDefinition, ProcessVersion
from grid.cases import service as cases


@dataclass
class Labels:
    """Titles process designers gave in the forms: categories (from report.json) and forms."""

    categories: list[tuple[str, dict[str, str]]]
    forms: dict[str, dict[str, str]]

    def category(self, value: str | None, locale: str) -> str:
        titles = self._by_value.get(value)  # type: ignore[arg-type]
        if titles is not None:
            return titles.get(_lang(locale)) or titles.get("zh") or value or ""
        return value or ""

    def __post_init__(self) -> None:
        self._by_value = {}
        for v, titles in self.categories:
            self._by_value.setdefault(v, titles)

    def form(self, name: str | None, locale: str, fallback: str | None = None) -> str:
        titles = self.forms.get(name or "")
        if not titles:
            return fallback or name or ""
        return titles.get(_lang(locale)) or titles.get("zh") or fallback or ""


def _lang(locale: str) -> str:
    return "zh" if str(locale).startswith("zh") else str(locale).split("_")[0]


def titles_of(node: dict) -> dict[str, str]:
    """{'zh': title, 'en': x-title.en, ...} of a schema node."""
    out = {"zh": node.get("title", "")}
    out.update(node.get("x-title") or {})
    return out


def enum_titles(node: dict, lang: str) -> list[str]:
    values = node.get("enum") or []
    titles = (node.get("x-enum-titles") or {}).get(lang) or (node.get("x-enum-titles") or {}).get("zh")
    if not titles or len(titles) != len(values):
        return [str(v) for v in values]
    return list(titles)


_labels_cache: dict[tuple, Labels] = {}
_labels_lock = threading.Lock()


def labels(svc) -> Labels:
    """Labels from the deployed versions (cached until a new version is deployed or activated)."""
    with svc.db.read() as s:  # one statement per request: what changes the labels
        newest, active = s.execute(select(
            select(func.max(ProcessVersion.id)).scalar_subquery(),
            select(ProcessDefinition.active_version_id)
            .where(ProcessDefinition.process_id == cases.PROCESS_ID).scalar_subquery())).one()
        key = (id(svc.db), newest, active)
        cached = _labels_cache.get(key)
        if cached is not None:
            return cached
        forms: dict[str, dict[str, str]] = {}
        for vforms in s.scalars(select(ProcessVersion.forms).order_by(ProcessVersion.id)):
            for name, schema in (vforms or {}).items():
                forms[name] = titles_of(schema)
        categories: list[tuple[str, dict[str, str]]] = []
        if key[2] is not None:
            report = (s.get(ProcessVersion, key[2]).forms or {}).get(cases.REPORT_FORM) or {}
            node = (report.get("properties") or {}).get("category") or {}
            values = node.get("enum") or []
            per_lang = {lang: enum_titles(node, lang) for lang in ("zh", *(node.get("x-enum-titles") or {}))}
            categories = [(v, {lang: t[i] for lang, t in per_lang.items()}) for i, v in enumerate(values)]
    result = Labels(categories, forms)
    with _labels_lock:
        if len(_labels_cache) > 32:
            _labels_cache.clear()
        _labels_cache[key] = result
    return result
