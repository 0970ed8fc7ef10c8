"""The message catalogs of the web app (web/translations/{zh_CN,en}), kept complete.

    .venv/bin/python -m web.ui.catalog update   # extract (babel.cfg), update both catalogs, compile
    .venv/bin/python -m web.ui.catalog check    # exit 1 if a message lacks a translation
    .venv/bin/python -m web.ui.catalog merge zh_CN FILE.po   # take translations from another .po, then update

msgids are English. `update` fills the en catalog with the msgids themselves and lists the
zh_CN messages still to translate (write them into zh_CN/LC_MESSAGES/messages.po, then run
`update` again to compile). tests/test_web_i18n.py fails while any is missing.
"""
from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "web" / "translations"
LOCALES = ("zh_CN", "en")
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}


def extract() -> Catalog:
    """Every message the code and templates use (per babel.cfg)."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    template = Catalog(project="Gridflow", copyright_holder="Gridflow contributors")
    def only_web(dirpath: str) -> bool:
        rel = Path(dirpath).relative_to(ROOT).parts
        return not rel or (rel[0] == "web" and not any(p.startswith((".", "_")) or p == "vendor" for p in rel))

    for filename, lineno, message, comments, context in extract_from_dir(
            ROOT, method_map, options_map, keywords=KEYWORDS, strip_comment_tags=True, directory_filter=only_web):
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def read(locale: str) -> Catalog:
    with open(po_path(locale), "rb") as f:
        return read_po(f, locale=locale)


def read_compiled(locale: str) -> Catalog:
    with open(po_path(locale).with_suffix(".mo"), "rb") as f:
        return read_mo(f)


def missing(template: Catalog, locale: str) -> list[str]:
    """msgids of `template` without a usable translation in `locale` (absent, empty or fuzzy)."""
    cat = read(locale)
    out = []
    for m in template:
        if not m.id:
            continue
        t = cat.get(m.id, context=m.context)
        if t is None or not t.string or (isinstance(t.string, tuple) and not all(t.string)) or t.fuzzy:
            out.append(m.id if isinstance(m.id, str) else m.id[0])
    return out


def update() -> dict[str, list[str]]:
    template = extract()
    result = {}
    for locale in LOCALES:
        path = po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            cat = read(locale)
        else:
            cat = Catalog(locale=locale, project="Gridflow", copyright_holder="Gridflow contributors")
        cat.update(template, no_fuzzy_matching=True)
        for m in cat:
            if not m.id:
                continue
            if locale == "en":
                m.string = m.id
            if m.fuzzy:
                m.flags.discard("fuzzy")
                m.string = m.id if locale == "en" else ""
        cat.obsolete.clear()
        cat.fuzzy = False
        with open(path, "wb") as f:
            write_po(f, cat, width=0, sort_output=True, ignore_obsolete=True)
        with open(path.with_suffix(".mo"), "wb") as f:
            write_mo(f, cat)
        result[locale] = missing(template, locale)
    return result


def merge(locale: str, source: Path) -> int:
    """Copy translations from another .po (e.g. one a blueprint's author wrote) into the catalog,
    for messages it lacks or has only fuzzily; returns how many were taken."""
    with open(source, "rb") as f:
        other = read_po(f, locale=locale)
    cat = read(locale)
    taken = 0
    for m in other:
        if not m.id or not m.string or m.fuzzy:
            continue
        mine = cat.get(m.id, context=m.context)
        if mine is None:
            cat.add(m.id, m.string, locations=m.locations, flags=m.flags - {"fuzzy"}, context=m.context)
            taken += 1
        elif not mine.string or mine.fuzzy:
            mine.string = m.string
            mine.flags.discard("fuzzy")
            taken += 1
    with open(po_path(locale), "wb") as f:
        write_po(f, cat, width=0, sort_output=True, ignore_obsolete=True)
    return taken


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "check"
    if cmd == "merge" and len(argv) == 3:
        print(f"{merge(argv[1], Path(argv[2]))} translation(s) taken from {argv[2]}")
        todo = update()
    elif cmd == "update":
        todo = update()
    elif cmd == "check":
        template = extract()
        todo = {loc: missing(template, loc) for loc in LOCALES}
    else:
        print(__doc__)
        return 2
    bad = False
    for locale, ids in todo.items():
        for i in ids:
            print(f"{locale}: untranslated: {i}")
        bad = bad or bool(ids)
    print("catalogs complete" if not bad else "catalogs incomplete")
    return 1 if bad else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
