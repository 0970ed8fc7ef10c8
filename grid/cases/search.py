"""Archive full-text search: character bigrams, SQLite FTS5 and PostgreSQL tsvector/GIN.

Why bigrams and not a word segmenter (jieba): archive queries are short Chinese strings (a
name, a place, 漏水), and a segmenter splits the document and the query differently ("楼上漏水"
may become one word that "漏水" does not match). Bigrams need no dictionary, match every
substring, and an FTS phrase of consecutive bigrams is exactly "contains this substring":

- each field (case number, description, location, settlement text) is lower-cased and ends with a NUL sentinel
  (no stored text and no query holds a NUL), and every character with its successor becomes one
  token, so every character starts exactly one token;
- a token is `g` + both code points as 6 hex digits: plain ASCII words that both FTS5's unicode61
  tokenizer and PostgreSQL's `simple` parser keep whole, whatever the characters were (`%`, `_`,
  `\\`, spaces and punctuation are searchable like any other character, and match only themselves);
- a query of n >= 2 characters is the phrase of its n-1 bigrams (adjacent positions, so no false
  positive); a query of one character is the prefix of the tokens that start with it.

Each document also holds a scope token per unit on its grid's path (`u` + the unit code), so
a search in a village's or a street's jurisdiction is one index intersection (the phrase AND the
unit's token) instead of walking the matches of the whole city and dropping those outside the
jurisdiction: "雨污" in a village of 3 % of the cases read ~30x the rows it kept before. The
path condition stays on the query (the jurisdiction is still checked on the rows themselves).

Cases are indexed when they are archived, in the step transaction (`index_case`); `seq` rises
in archive order, so a search walks the matches newest first and stops after one page.
"""
from __future__ import annotations

from sqlalchemy import Integer, column, func, insert, inspect, literal_column, select, table, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from grid.cases.models import FTS_TABLE, CaseSearch, DisputeCase

_fts = table(FTS_TABLE, column("rowid", Integer), column("tokens"))
_END = "\x00"


def _token(a: str, b: str) -> str:
    return f"g{ord(a):06x}{ord(b):06x}"


def document_tokens(*fields: str | None) -> str:
    """The space-separated tokens of a case's searchable fields (see the module docstring)."""
    out: list[str] = []
    for f in fields:
        if not f:
            continue
        chars = f.replace(_END, "").lower() + _END
        out.extend(_token(chars[i], chars[i + 1]) for i in range(len(chars) - 1))
    return " ".join(out)


def _unit_token(code: str) -> str:
    return f"u{code}"


def scope_tokens(unit_path: str | None) -> str:
    """One token per unit on a grid's path ('a/b/c/' -> 'ua ub uc'): what a jurisdiction or unit
    filter matches (`fts_query` / `ts_query` with scopes). Unit codes are digits; the `u` keeps
    them apart from the bigram tokens (which start with `g`)."""
    return " ".join(_unit_token(code) for code in (unit_path or "").split("/") if code.isalnum())


def archive_tokens(unit_path: str | None, *fields: str | None) -> str:
    """The archive document of a case: the bigram tokens of its fields, then its scope tokens
    (the one place both are joined: index_case, rebuild, migration 0029 and the bench)."""
    return " ".join(x for x in (document_tokens(*fields), scope_tokens(unit_path)) if x)


def case_tokens(c: DisputeCase) -> str:
    """The archive document: case number, description, location and the 现场化解情况 text, and
    the scope tokens of its grid's path."""
    return archive_tokens(c.unit_path, c.case_no, c.description, c.location_text, c.settlement)


def scope_codes(paths: list[str]) -> list[str]:
    """The unit codes whose scope tokens a search under these paths must match (any of them):
    the last code of each path."""
    return sorted({p.rstrip("/").rsplit("/", 1)[-1] for p in paths if p.rstrip("/")})


def query_terms(q: str) -> tuple[list[str], str | None]:
    """(phrase tokens, prefix) for a query: a phrase of bigrams, or for one character the hex
    prefix of the tokens that start with it. ([], None) for an empty query."""
    q = q.replace(_END, "").lower()
    if not q:
        return [], None
    if len(q) == 1:
        return [], f"g{ord(q):06x}"
    return [_token(q[i], q[i + 1]) for i in range(len(q) - 1)], None


def _units(codes: list[str]) -> list[str]:
    return [_unit_token(c) for c in codes if c.isalnum()]


def fts_query(q: str, scopes: list[str] | None = None) -> str | None:
    """The FTS5 MATCH expression for a query (None: match everything), within any of the units
    `scopes` (codes) when given."""
    phrase, prefix = query_terms(q)
    text_q = f"{prefix}*" if prefix else ('"' + " ".join(phrase) + '"' if phrase else None)
    units = _units(scopes or [])
    if text_q is None or not units:
        return text_q
    return f"{text_q} AND ({' OR '.join(units)})"


def ts_query(q: str, scopes: list[str] | None = None) -> str | None:
    """The PostgreSQL to_tsquery('simple', ...) text for a query (None: match everything),
    within any of the units `scopes` (codes) when given."""
    phrase, prefix = query_terms(q)
    text_q = f"{prefix}:*" if prefix else (" <-> ".join(phrase) if phrase else None)
    units = _units(scopes or [])
    if text_q is None or not units:
        return text_q
    return f"({text_q}) & ({' | '.join(units)})"


def index_case(s: Session, c: DisputeCase) -> None:
    """Make an archived case searchable (idempotent: a case is indexed once)."""
    if s.scalar(select(CaseSearch.seq).where(CaseSearch.case_id == c.id)) is None:
        _add(s, c.id, case_tokens(c))


def _add(s: Session, case_id: int, tokens: str) -> None:
    if s.bind.dialect.name == "postgresql":
        s.execute(insert(CaseSearch).values(case_id=case_id, tsv=func.to_tsvector(literal_column("'simple'"), tokens)))
        return
    seq = s.execute(insert(CaseSearch).values(case_id=case_id).returning(CaseSearch.seq)).scalar_one()
    s.execute(insert(_fts).values(rowid=seq, tokens=tokens))


def matching(s: Session, q: str, scopes: list[str] | None = None) -> tuple[ColumnElement[bool], object] | None:
    """(condition, join target) for the cases whose text contains `q` (under any of the units
    `scopes`, codes, when given), or None for no text condition: on PostgreSQL `tsv @@ query` on
    CaseSearch, on SQLite a MATCH on the FTS5 table (joined on rowid = seq)."""
    if s.bind.dialect.name == "postgresql":
        tq = ts_query(q, scopes)
        if tq is None:
            return None
        return CaseSearch.tsv.op("@@")(func.to_tsquery(literal_column("'simple'"), tq)), None
    mq = fts_query(q, scopes)
    if mq is None:
        return None
    return text(f"{FTS_TABLE} MATCH :fts_q").bindparams(fts_q=mq), _fts


SEQ_WINDOW = 2000  # the newest archive positions a PostgreSQL search page looks at first


def newest_page(s: Session, q, limit: int, offset: int) -> list:
    """PostgreSQL: `limit` rows of the text query `q` (over CaseSearch) at `offset`, newest first.

    A GIN index returns its matches unordered, so `ORDER BY seq DESC LIMIT` sorted every match in
    the jurisdiction (a village with 30,000 archived matches sorted all of them for 21 rows).
    Looking at the newest SEQ_WINDOW archive positions first, widened eightfold while the page is
    short, finds the same rows: a window holding `limit` rows at `offset` holds the newest ones."""
    top = s.scalar(select(func.max(CaseSearch.seq)))
    if top is None:
        return []
    window = SEQ_WINDOW
    while True:
        low = top - window
        rows = list(s.scalars(q.where(CaseSearch.seq > low).order_by(CaseSearch.seq.desc())
                              .limit(limit).offset(offset)))
        if len(rows) >= limit or low <= 0:
            return rows
        window *= 8


def rebuild(s: Session) -> int:
    """Index every archived case that is not indexed yet, in archive order (the migration and
    the bench use this; explicit columns, so it runs at any later schema). Returns how many."""
    done = select(CaseSearch.case_id)
    cols = [DisputeCase.id, DisputeCase.unit_path, DisputeCase.case_no, DisputeCase.description,
            DisputeCase.location_text]
    if any(c["name"] == "settlement" for c in inspect(s.connection()).get_columns("dispute_case")):
        cols.append(DisputeCase.settlement)  # absent when an older migration (0009) rebuilds
    todo = s.execute(select(*cols)
                     .where(DisputeCase.status == "archived", DisputeCase.id.not_in(done))
                     .order_by(DisputeCase.archived_at, DisputeCase.id)).all()
    for cid, path, no, desc, loc, *settled in todo:
        _add(s, cid, archive_tokens(path, no, desc, loc, *settled))
    return len(todo)
