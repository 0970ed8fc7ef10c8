"""Archive search narrowed in the index (issue 16): every indexed case holds a scope token per unit
on its grid's path, a search ANDs the phrase with the jurisdiction's (or the chosen unit's) token,
and migration 0029 adds the tokens to cases indexed before it. On SQLite and PostgreSQL."""
from __future__ import annotations

from alembic import command
from sqlalchemy import text

from engine.migrate import _config
from grid.cases import search
from grid.cases import service as cases
from tests.web_helpers import report_case, staff_id

SETTLED = {"settled_on_spot": True, "spot_result": "当场调解成功", "description": "雨污管道堵塞，两户争执"}
MINE, OTHER, STREET = "420602003005", "420602003001", "420602003000"


def _two_villages(svc):
    mine = report_case(svc, SETTLED)  # 檀溪社区, the seed grid
    other = report_case(svc, SETTLED, username="gw.420602003001001")
    return mine, other


def _index_hits(svc, q: str, scopes: list[str]) -> set[int]:
    """Case ids the full-text index alone returns for q within scopes (no path condition)."""
    with svc.db.read() as s:
        if svc.db.dialect == "postgresql":
            return set(s.execute(text("SELECT case_id FROM case_search WHERE tsv @@ to_tsquery('simple', :q)"),
                                 {"q": search.ts_query(q, scopes)}).scalars())
        return set(s.execute(text("SELECT cs.case_id FROM case_fts JOIN case_search cs ON cs.seq = case_fts.rowid "
                                  "WHERE case_fts MATCH :q"), {"q": search.fts_query(q, scopes)}).scalars())


def _found(svc, username: str, **kw) -> set[int]:
    return {c.id for c in cases.search_archive(svc, staff_id(svc, username), **kw)["items"]}


def test_the_index_itself_narrows_a_search_to_the_unit(svc):
    mine, other = _two_villages(svc)
    assert _index_hits(svc, "雨污", [MINE]) == {mine.id}
    assert _index_hits(svc, "雨污", [OTHER]) == {other.id}
    assert _index_hits(svc, "雨污", [MINE, OTHER]) == {mine.id, other.id}
    assert _index_hits(svc, "雨污", [STREET]) == {mine.id, other.id}
    assert _index_hits(svc, "雨", [MINE]) == {mine.id}  # one character: the prefix query, scoped too
    assert _index_hits(svc, "雨污", ["420602001000"]) == set()  # another street
    # what people see: the village head her village, the street's supervisor both, or one unit of it
    assert _found(svc, "qiuyun", text="雨污") == {mine.id}
    assert _found(svc, f"sup.{STREET}", text="雨污") == {mine.id, other.id}
    assert _found(svc, f"sup.{STREET}", text="雨污", unit=OTHER) == {other.id}
    assert _found(svc, "qiuyun", text="雨污", unit=OTHER) == set()  # a unit outside her jurisdiction


def test_scope_tokens_are_the_units_of_the_path():
    assert search.scope_tokens("420600000000/420602000000/420602003005/") == \
        "u420600000000 u420602000000 u420602003005"
    assert search.scope_tokens("") == "" and search.scope_tokens(None) == ""
    assert search.scope_codes(["420600000000/420602000000/", "420600000000/420607000000/"]) == \
        ["420602000000", "420607000000"]
    assert search.fts_query("雨污", ["1", "2"]).endswith(" AND (u1 OR u2)")
    assert search.ts_query("雨污", ["1"]).endswith(" & (u1)")
    assert search.fts_query("", ["1"]) is None  # no text: no MATCH at all


def test_migration_0029_adds_the_scope_to_cases_indexed_before_it(svc):
    mine, other = _two_villages(svc)
    cfg = _config()
    with svc.db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0028_geo_cell")
    svc.db.dispose()
    assert _index_hits(svc, "雨污", [MINE]) == set()  # indexed without scope tokens
    assert _index_hits(svc, "雨污", []) == {mine.id, other.id}  # the text is still there
    with svc.db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    svc.db.dispose()
    assert _index_hits(svc, "雨污", [MINE]) == {mine.id}
    assert _index_hits(svc, "雨污", [OTHER]) == {other.id}
    assert _found(svc, "qiuyun", text="雨污") == {mine.id}


def test_a_search_page_is_the_same_through_the_newest_window(svc, monkeypatch):
    """PostgreSQL reads a search page from the newest archive positions first, widening the window
    while the page is short (grid.cases.search.newest_page); every page, and its has-next and
    total, are those of the plain newest-first order. With a window of 1 position every page needs
    widening, and the other village's cases (interleaved) fall outside the jurisdiction."""
    made = []
    for i in range(7):
        made.append(report_case(svc, {**SETTLED, "description": f"雨污管道堵塞第{i}起"}))
        report_case(svc, {**SETTLED, "description": f"雨污管道堵塞另{i}起"}, username="gw.420602003001001")
    newest = [c.id for c in reversed(made)]
    me = staff_id(svc, "qiuyun")

    def pages(per_page: int) -> list[tuple[list[int], bool, int]]:
        out = []
        for page in range(1, 6):
            got = cases.search_archive(svc, me, text="雨污", page=page, per_page=per_page)
            out.append(([c.id for c in got["items"]], got["has_next"], got["total"]))
        return out

    plain = pages(3)
    assert [i for ids, _n, _t in plain for i in ids] == newest
    assert [n for _i, n, _t in plain] == [True, True, False, False, False]
    monkeypatch.setattr(search, "SEQ_WINDOW", 1)
    assert pages(3) == plain
    assert pages(2)[0][0] == newest[:2] and pages(2)[3][0] == newest[6:]
