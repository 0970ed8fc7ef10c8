"""Scope tokens in the archive's full-text index (issue 16): each indexed case also holds `u<code>`
for every unit on its grid's path (grid.cases.search.scope_tokens), so a search in a village's or
a street's jurisdiction intersects the phrase with the unit's token in the index instead of
walking the whole city's matches and dropping the rest.

PostgreSQL appends the tokens in SQL (GIN index dropped and rebuilt around the update); SQLite's
contentless FTS5 table cannot update a row, so it is recreated and refilled from the cases in
`seq` order (the same rowids, so archive order is kept).

Revision ID: 0029_search_scope
Revises: 0028_geo_cell
"""
import sqlalchemy as sa
from alembic import op

revision, down_revision = "0029_search_scope", "0028_geo_cell"

CHUNK = 5000


def _refill_sqlite(with_scope: bool) -> None:
    from grid.cases import search
    from grid.cases.models import FTS_DDL

    bind = op.get_bind()
    cols = {c["name"] for c in sa.inspect(bind).get_columns("dispute_case")}
    settled = ", d.settlement" if "settlement" in cols else ""
    op.execute("DROP TABLE IF EXISTS case_fts")
    op.execute(FTS_DDL)
    rows = bind.exec_driver_sql(
        "SELECT cs.seq, d.unit_path, d.case_no, d.description, d.location_text" + settled +
        " FROM case_search cs JOIN dispute_case d ON d.id = cs.case_id ORDER BY cs.seq").all()
    for k in range(0, len(rows), CHUNK):
        batch = [(seq, search.archive_tokens(path, *fields) if with_scope else search.document_tokens(*fields))
                 for seq, path, *fields in rows[k:k + CHUNK]]
        bind.exec_driver_sql("INSERT INTO case_fts (rowid, tokens) VALUES (?, ?)", batch)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_case_search_tsv", table_name="case_search")
        op.execute("UPDATE case_search SET tsv = case_search.tsv || to_tsvector('simple', "
                   "'u' || replace(rtrim(d.unit_path, '/'), '/', ' u')) "
                   "FROM dispute_case d WHERE d.id = case_search.case_id AND d.unit_path <> ''")
        op.create_index("ix_case_search_tsv", "case_search", ["tsv"], postgresql_using="gin")
        op.execute("ANALYZE case_search")  # the planner's lexeme statistics know the new tokens
    else:
        _refill_sqlite(with_scope=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE case_search SET tsv = ts_delete(tsv, ARRAY(SELECT lexeme FROM unnest(tsv) "
                   "WHERE lexeme LIKE 'u%'))")
    else:
        _refill_sqlite(with_scope=False)
