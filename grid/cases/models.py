"""Dispute-case (矛盾件) tables: the case projection, its records (warnings, 督办, 问责 ...) and attachments.

The BPMN process is the source of truth; these rows are kept in step with it by the
listener in `grid.cases`, inside the same transaction as each engine step.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    event,
    false,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.db import Base, UTCDateTime
from grid import crypto

JSONType = JSON().with_variant(JSONB(), "postgresql")
PARTY_PHONE = "case.party_phone"  # the AES-GCM context of a case party's phone
TSVectorType = Text().with_variant(TSVECTOR(), "postgresql")

CATEGORIES = ("neighbour", "property", "municipal", "labour", "family", "land", "other")
CASE_LEVELS = ("village", "township", "county", "city")


class DisputeCase(Base):
    __tablename__ = "dispute_case"
    __table_args__ = (
        # status and a path prefix: on PostgreSQL the pattern opclass makes `unit_path LIKE 'p%'` an
        # index range whatever the database's collation (SQLite gets a range from path_under)
        Index("ix_dispute_case_status_unit_path", "status", "unit_path",
              postgresql_ops={"unit_path": "varchar_pattern_ops"}),
        Index("ix_dispute_case_archived", "status", "archived_at"),
        # repeat detection (grid.cases.checks.find_repeats): the newest cases of a category in one
        # map cell, an index range read backwards however much history the cell has
        Index("ix_dispute_case_cell", "category", "geo_cell", "reported_at"),
        # 我上报的: a person's reports newest first, an index range read backwards (lists.my_reports)
        Index("ix_dispute_case_reporter_id", "reporter_id", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    case_no: Mapped[str] = mapped_column(String(40), unique=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instance.id"), unique=True)
    category: Mapped[str] = mapped_column(String(20), index=True)
    description: Mapped[str] = mapped_column(Text)
    location_text: Mapped[str | None] = mapped_column(String(300))
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    # the map cell of (lat, lng) (grid.cases.checks.geo_cell), None without a location
    geo_cell: Mapped[str | None] = mapped_column(String(24))
    # [{name, phone, resident_id}]; the phones sealed at rest (grid.crypto, context case.party_phone)
    parties: Mapped[list] = mapped_column(crypto.SealedFields(PARTY_PHONE), default=list)
    photos: Mapped[list] = mapped_column(JSONType, default=list)
    reporter_id: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    grid_code: Mapped[str] = mapped_column(ForeignKey("org_unit.code"), index=True)
    unit_path: Mapped[str] = mapped_column(String(200))  # the grid's path, for jurisdiction
    current_level: Mapped[str | None] = mapped_column(String(20))
    current_unit: Mapped[str | None] = mapped_column(String(20), index=True)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | archived | failed | cancelled
    result: Mapped[str | None] = mapped_column(String(30))
    duplicate_of: Mapped[str | None] = mapped_column(String(40))
    disposition: Mapped[str | None] = mapped_column(String(40))
    resolved_level: Mapped[str | None] = mapped_column(String(20))
    resolved_unit: Mapped[str | None] = mapped_column(String(20))
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[int] = mapped_column(Integer, default=0)
    overdue: Mapped[int] = mapped_column(Integer, default=0)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # how the case came in (grid.cases.rollup.SOURCES): the grid worker's phone, a hotline or service
    # window operator, an Open311 or API client; counted per source in the indicators
    source: Mapped[str] = mapped_column(String(20), default="grid_worker", server_default="grid_worker")
    # 现场化解情况: what the grid worker wrote when she settled it on the spot (shown, searchable)
    settlement: Mapped[str | None] = mapped_column(Text)
    # the one-time token of the report form it came from: a retried POST finds this case again
    submit_token: Mapped[str | None] = mapped_column(String(40), unique=True)


class CaseRecord(Base):
    """One countable event: warning, supervision (督办), urge (催办), accountability (问责),
    escalation, resolution, rework, verification, archive. Indicators count these."""

    __tablename__ = "case_record"
    __table_args__ = (Index("ix_case_record_kind_unit_at", "kind", "unit_code", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    level: Mapped[str | None] = mapped_column(String(20))
    unit_code: Mapped[str | None] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str | None] = mapped_column(String(100))
    data: Mapped[dict] = mapped_column(JSONType, default=dict)


class Attachment(Base):
    """A stored upload (photo or file). Bytes live on disk outside the static root."""

    __tablename__ = "attachment"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("dispute_case.id"), index=True)
    unit_code: Mapped[str | None] = mapped_column(String(20))
    uploaded_by: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # stored for a form whose step has not finished: made permanent by attachments.link/keep,
    # removed by attachments.cleanup once older than the grace period (grid/cases/media.py)
    pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    __table_args__ = (Index("ix_attachment_pending", "pending", "created_at"),)


class IndicatorRollup(Base):
    """Running totals for indicators (grid/cases/indicators.yaml), added to by the step listener
    in the step's own transaction, so a dashboard sums a few rows instead of scanning cases.

    One row per (unit, Beijing day, category, level, measure). `level` is "" when the event has
    none (a report, a case settled on the spot). Values are integers (counts, working minutes), so
    sums are exact and a rebuild from the records compares equal.
    """

    __tablename__ = "indicator_rollup"
    __table_args__ = (Index("ix_indicator_rollup_day_unit", "day", "unit_code"),)
    unit_code: Mapped[str] = mapped_column(String(20), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    category: Mapped[str] = mapped_column(String(20), primary_key=True)
    level: Mapped[str] = mapped_column(String(20), primary_key=True)
    measure: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class CaseLate(Base):
    """The late list's index (督办/超期 list): one row per open work item of an open case that can
    become late (it has a warning or a due time), under every ancestor path of the case's grid.

    Kept by the step listener (`grid.cases.listener.on_step`), so it holds the open stock only,
    never history. The late list of a unit reads `scope = the unit's path AND late_at <= now`
    in `due_key` order from `ix_case_late_scope_due`: an equality, not a prefix range, so no
    collation (zh_CN ICU or C) changes the plan, and the scan stops after one page.
    """

    __tablename__ = "case_late"
    __table_args__ = (Index("ix_case_late_scope_due", "scope", "due_key", "work_item_id", "late_at"),)
    work_item_id: Mapped[int] = mapped_column(ForeignKey("work_item.id"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(200), primary_key=True)  # an ancestor path of the grid, or the grid's
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), index=True)
    late_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the earlier of warn_at and due_at
    due_key: Mapped[datetime] = mapped_column(UTCDateTime)  # due_at, or far in the future when it has none


class CaseParty(Base):
    """Which registered residents a case names as parties, written at report time, so a
    resident's disputes are a primary-key range instead of a scan of every case's parties JSON."""

    __tablename__ = "case_party"
    resident_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), primary_key=True, index=True)


class CaseLink(Base):
    """A link between two cases, read from both ends: `kind` duplicate = `from_case_id` was
    archived as a 重复件 of `to_case_id` (written by the step listener when it is archived)."""

    __tablename__ = "case_link"
    __table_args__ = (Index("ix_case_link_to", "to_case_id"),)
    from_case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), primary_key=True)
    to_case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str | None] = mapped_column(String(100))


class CaseSearch(Base):
    """Archive full-text search (see `grid.cases.search`): one row per archived case, `seq`
    rising in archive order so the newest matches come first without sorting every match.

    On PostgreSQL `tsv` holds the case's bigram tokens behind a GIN index. On SQLite `tsv` stays
    NULL: the tokens live in the FTS5 table `case_fts` (rowid = `seq`), created by the migration.
    """

    __tablename__ = "case_search"
    __table_args__ = (Index("ix_case_search_tsv", "tsv", postgresql_using="gin", sqlite_where=false()),)
    seq: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), unique=True)
    tsv: Mapped[str | None] = mapped_column(TSVectorType)


FTS_TABLE = "case_fts"
# contentless (the tokens are recomputed from the case when needed); positions kept for phrases
FTS_DDL = f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(tokens, content='', columnsize=0)"
event.listen(CaseSearch.__table__, "after_create", DDL(FTS_DDL).execute_if(dialect="sqlite"))
event.listen(CaseSearch.__table__, "before_drop", DDL(f"DROP TABLE IF EXISTS {FTS_TABLE}").execute_if(dialect="sqlite"))


@event.listens_for(CaseLate.__table__, "after_create")
def _late_trigger(target, connection, **kw) -> None:
    """The trigger that carries work-item time changes into `case_late` (see late_index)."""
    from grid.cases.late_index import trigger_ddl

    for stmt in trigger_ddl(connection.dialect.name):
        connection.exec_driver_sql(stmt)


def case_by_no(s: Session, case_no: str) -> DisputeCase | None:
    """The case of a step's business key. The step's listeners (case, feed, notifications,
    accountability) all ask in one transaction: the first asks the database, the rest get the
    same row object with no statement. The session keeps that object (its identity map holds
    clean rows only weakly, so a later `get` would read the row again)."""
    known = s.info.setdefault("gridflow_step_cases", {})
    c = known.get(case_no)
    if c is not None and c in s and c.case_no == case_no:
        return c
    c = s.scalar(select(DisputeCase).where(DisputeCase.case_no == case_no))
    if c is not None:
        known[case_no] = c
    return c
