"""Baseline: every table, index and trigger Gridflow had before this round, in one revision.

It replaces the sixteen revisions 0001_engine .. 0016_report_token (squashed while Gridflow was
unreleased, with no database in the field), and builds exactly the schema they built:
- the engine: process versions and pins, instances and their events, work items, the version
  audit trail and the instance-migration runs and records, the outbox;
- the organisation: units (with boundary and retirement), staff (forced password change,
  password history), roles, web sessions and the security audit log, API clients, webhooks;
- cases: dispute cases, their records, attachments, links, the indicator rollup, notifications,
  and the history-independent lists: `case_late` (with the trigger carrying work-item times
  into it), `case_party` and `case_search` (a tsvector behind a GIN index on PostgreSQL, the
  contentless FTS5 table `case_fts` on SQLite);
- the registry: buildings, households, residents (ID numbers and phones sealed, with blind
  indexes), their events, special-population flags, reveals and import batches.

The tables are a frozen copy (not the live models, which later revisions change): a new table
or column goes into a new revision, never here.

Revision ID: 0001_baseline
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from engine.db import NAMING, UTCDateTime
from engine.models import JSONType

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

md = sa.MetaData(naming_convention=NAMING)
Time = UTCDateTime()


def _fk(target: str, name: str | None = None) -> sa.ForeignKey:
    """A foreign key, named by the convention unless `name` says otherwise."""
    return sa.ForeignKey(target, name=name) if name else sa.ForeignKey(target)


# -- the engine --------------------------------------------------------------------------------
sa.Table(
    "process_version", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("process_id", sa.String(200), nullable=False, index=True),
    sa.Column("number", sa.Integer(), nullable=False),
    sa.Column("name", sa.String(300)),
    sa.Column("tag", sa.String(100)),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("spec_json", sa.Text(), nullable=False),
    sa.Column("files", JSONType, nullable=False),
    sa.Column("forms", JSONType, nullable=False),
    sa.Column("deployed_by", sa.String(100)),
    sa.Column("deployed_at", Time, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.UniqueConstraint("process_id", "number", name="uq_process_version_number"),
)
sa.Table(
    "process_definition", md,
    sa.Column("process_id", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(300)),
    sa.Column("active_version_id", sa.Integer(), _fk("process_version.id", "fk_process_definition_active_version")),
)
sa.Table(
    "instance", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("process_id", sa.String(200), nullable=False, index=True),
    sa.Column("version_id", sa.Integer(), _fk("process_version.id"), nullable=False, index=True),
    sa.Column("business_key", sa.String(100), index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("state_json", sa.Text(), nullable=False),
    sa.Column("next_timer_at", Time, index=True),
    sa.Column("lock_version", sa.Integer(), nullable=False),
    sa.Column("event_seq", sa.Integer(), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
    sa.Column("started_by", sa.String(100)),
    sa.Column("error_task", sa.String(200)),
    sa.Column("error_message", sa.Text()),
    sa.Index("ix_instance_timer_due", "status", "next_timer_at"),
)
sa.Table(
    "version_pin", md,
    sa.Column("process_id", sa.String(200), primary_key=True),
    sa.Column("scope", sa.String(200), primary_key=True),
    sa.Column("version_id", sa.Integer(), _fk("process_version.id"), nullable=False),
)
sa.Table(
    "instance_event", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("instance_id", sa.Integer(), _fk("instance.id"), nullable=False, index=True),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("at", Time, nullable=False),
    sa.Column("actor", sa.String(100)),
    sa.Column("kind", sa.String(40), nullable=False, index=True),
    sa.Column("task", sa.String(200)),
    sa.Column("data", JSONType, nullable=False),
    sa.UniqueConstraint("instance_id", "seq", name="uq_instance_event_seq"),
)
sa.Table(
    "work_item", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("instance_id", sa.Integer(), _fk("instance.id"), nullable=False, index=True),
    sa.Column("task_guid", sa.String(36), nullable=False, unique=True),
    sa.Column("task_spec", sa.String(200), nullable=False),
    sa.Column("process_id", sa.String(200), nullable=False),
    sa.Column("name", sa.String(300)),
    sa.Column("form", sa.String(200)),
    sa.Column("unit_id", sa.String(64)),
    sa.Column("role", sa.String(64)),
    sa.Column("user_id", sa.String(64)),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("warn_at", Time),
    sa.Column("due_at", Time),
    sa.Column("closed_at", Time),
    sa.Column("closed_by", sa.String(100)),
    sa.Column("props", JSONType, nullable=False),
    sa.Index("ix_work_item_role", "role", "state"),
    sa.Index("ix_work_item_unit_inbox", "unit_id", "state", "due_at"),
    sa.Index("ix_work_item_user_inbox", "user_id", "state", "due_at"),
    sa.Index("ix_work_item_closed_by", "closed_by", "closed_at"),  # "cases I acted on"
)
sa.Table(
    "version_event", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("at", Time, nullable=False, index=True),
    sa.Column("actor", sa.String(100)),
    sa.Column("action", sa.String(20), nullable=False, index=True),
    sa.Column("process_id", sa.String(200), index=True),
    sa.Column("version_id", sa.Integer(), _fk("process_version.id")),
    sa.Column("scope", sa.String(200)),
    sa.Column("data", JSONType, nullable=False),
)
sa.Table(
    "migration_run", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("process_id", sa.String(200), nullable=False, index=True),
    sa.Column("to_version_id", sa.Integer(), _fk("process_version.id"), nullable=False),
    sa.Column("dry_run", sa.Boolean(), nullable=False),
    sa.Column("selection", JSONType, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("actor", sa.String(100)),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("finished_at", Time),
    sa.Column("total", sa.Integer(), nullable=False),
    sa.Column("done", sa.Integer(), nullable=False),
    sa.Column("migrated", sa.Integer(), nullable=False),
    sa.Column("blocked", sa.Integer(), nullable=False),
    sa.Column("skipped", sa.Integer(), nullable=False),
    sa.Column("failed", sa.Integer(), nullable=False),
)
sa.Table(
    "migration_record", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("run_id", sa.Integer(), _fk("migration_run.id"), nullable=False),
    sa.Column("instance_id", sa.Integer(), _fk("instance.id"), nullable=False, index=True),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("reasons", JSONType, nullable=False),
    sa.Column("notes", JSONType, nullable=False),
    sa.Column("from_version_id", sa.Integer(), _fk("process_version.id")),
    sa.Column("to_version_id", sa.Integer(), _fk("process_version.id")),
    sa.Column("lock_before", sa.Integer()),
    sa.Column("lock_after", sa.Integer()),
    sa.Column("state_before", sa.Text()),
    sa.Column("next_timer_before", Time),
    sa.Column("work_items_before", JSONType),
    sa.Column("at", Time),
    sa.Column("reverted_at", Time),
    sa.Column("reverted_by", sa.String(100)),
    sa.Index("ix_migration_record_run_outcome", "run_id", "outcome"),
)
sa.Table(
    "outbox", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("kind", sa.String(60), nullable=False),
    sa.Column("payload", JSONType, nullable=False),
    sa.Column("destination", sa.String(60)),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", Time),
    sa.Column("delivered_at", Time),
    sa.Column("dead", sa.Boolean(), nullable=False),
    sa.Column("last_error", sa.String(300)),
    sa.Index("ix_outbox_due", "destination", "delivered_at", "dead", "next_attempt_at"),
)
sa.Table(
    "webhook", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("url", sa.String(500), nullable=False),
    sa.Column("secret", sa.String(100), nullable=False),
    sa.Column("personal", sa.Boolean(), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("note", sa.Text()),
)

# -- the organisation --------------------------------------------------------------------------
sa.Table(
    "org_unit", md,
    sa.Column("code", sa.String(20), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("level", sa.String(10), nullable=False),
    sa.Column("depth", sa.Integer(), nullable=False),
    sa.Column("parent_code", sa.String(20), _fk("org_unit.code"), index=True),
    sa.Column("path", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("lat", sa.Float()),
    sa.Column("lng", sa.Float()),
    sa.Column("boundary", sa.Text()),
    sa.Column("retired_on", sa.Date()),
    # varchar_pattern_ops: PostgreSQL serves `path LIKE 'prefix%'` from this index in any collation.
    sa.Index("ix_org_unit_path", "path", postgresql_ops={"path": "varchar_pattern_ops"}),
)
sa.Table(
    "staff", md,
    sa.Column("id", sa.String(20), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("phone", sa.String(20)),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("locale", sa.String(10), nullable=False),
    sa.Column("failed_logins", sa.Integer(), nullable=False),
    sa.Column("locked_until", Time),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("password_changed_at", Time),
    sa.Column("title", sa.String(50)),
)
sa.Table(
    "staff_role", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("staff_id", sa.String(20), _fk("staff.id"), nullable=False, index=True),
    sa.Column("unit_code", sa.String(20), _fk("org_unit.code"), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("title", sa.String(50)),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("since", sa.Date(), nullable=False),
    sa.Column("until", sa.Date()),
    sa.Index("ix_staff_role_unit_role_active", "unit_code", "role", "active"),
)
sa.Table(
    "password_history", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("staff_id", sa.String(20), _fk("staff.id"), nullable=False, index=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created_at", Time, nullable=False),
)
sa.Table(
    "web_session", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("staff_id", sa.String(20), _fk("staff.id"), index=True),
    sa.Column("data", sa.Text(), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("last_seen", Time, nullable=False, index=True),
    sa.Column("user_agent", sa.String(300)),
    sa.Column("ip", sa.String(64)),
)
sa.Table(
    "security_event", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("at", Time, nullable=False, index=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("actor_staff_id", sa.String(20)),
    sa.Column("subject_staff_id", sa.String(20)),
    sa.Column("unit_code", sa.String(20)),
    sa.Column("ip", sa.String(64)),
    sa.Column("detail", JSONType, nullable=False),
    sa.Index("ix_security_event_kind_at", "kind", "at"),
    sa.Index("ix_security_event_actor_at", "actor_staff_id", "at"),
    sa.Index("ix_security_event_subject_at", "subject_staff_id", "at"),
    sa.Index("ix_security_event_unit_at", "unit_code", "at"),
)
sa.Table(
    "api_client", md,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("scopes", JSONType, nullable=False),
    sa.Column("unit_code", sa.String(20), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("rate_per_minute", sa.Integer(), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("created_by", sa.String(64)),
    sa.Column("revoked_at", Time),
    sa.Column("last_used_at", Time),
)
sa.Table(
    "api_rate", md,
    sa.Column("client_id", sa.String(16), primary_key=True),
    sa.Column("window", Time, primary_key=True),
    sa.Column("count", sa.Integer(), nullable=False),
)
sa.Table(
    "unit_boundary", md,
    sa.Column("unit_code", sa.String(20), primary_key=True),
    sa.Column("geojson", sa.Text(), nullable=False),
)

# -- cases -------------------------------------------------------------------------------------
sa.Table(
    "dispute_case", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("case_no", sa.String(40), nullable=False, unique=True),
    sa.Column("instance_id", sa.Integer(), _fk("instance.id"), unique=True),
    sa.Column("category", sa.String(20), nullable=False, index=True),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("location_text", sa.String(300)),
    sa.Column("lat", sa.Float()),
    sa.Column("lng", sa.Float()),
    sa.Column("parties", JSONType, nullable=False),
    sa.Column("photos", JSONType, nullable=False),
    sa.Column("reporter_id", sa.String(20), _fk("staff.id"), nullable=False, index=True),
    sa.Column("grid_code", sa.String(20), _fk("org_unit.code"), nullable=False, index=True),
    sa.Column("unit_path", sa.String(200), nullable=False),
    sa.Column("current_level", sa.String(20)),
    sa.Column("current_unit", sa.String(20), index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("result", sa.String(30)),
    sa.Column("duplicate_of", sa.String(40)),
    sa.Column("disposition", sa.String(40)),
    sa.Column("resolved_level", sa.String(20)),
    sa.Column("resolved_unit", sa.String(20)),
    sa.Column("escalations", sa.Integer(), nullable=False),
    sa.Column("rework_count", sa.Integer(), nullable=False),
    sa.Column("warnings", sa.Integer(), nullable=False),
    sa.Column("overdue", sa.Integer(), nullable=False),
    sa.Column("reported_at", Time, nullable=False, index=True),
    sa.Column("resolved_at", Time),
    sa.Column("archived_at", Time),
    sa.Column("updated_at", Time, nullable=False),
    sa.Column("source", sa.String(20), nullable=False, server_default="grid_worker"),
    sa.Column("settlement", sa.Text()),
    sa.Column("submit_token", sa.String(40), unique=True),
    sa.Index("ix_dispute_case_archived", "status", "archived_at"),
    sa.Index("ix_dispute_case_status_unit_path", "status", "unit_path"),
)
sa.Table(
    "attachment", md,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("case_id", sa.Integer(), _fk("dispute_case.id"), index=True),
    sa.Column("unit_code", sa.String(20)),
    sa.Column("uploaded_by", sa.String(20), _fk("staff.id"), nullable=False),
    sa.Column("filename", sa.String(200), nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("size", sa.Integer(), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("storage_key", sa.String(200), nullable=False),
    sa.Column("created_at", Time, nullable=False),
)
sa.Table(
    "case_record", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("case_id", sa.Integer(), _fk("dispute_case.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("level", sa.String(20)),
    sa.Column("unit_code", sa.String(20)),
    sa.Column("at", Time, nullable=False),
    sa.Column("actor", sa.String(100)),
    sa.Column("data", JSONType, nullable=False),
    sa.Index("ix_case_record_kind_unit_at", "kind", "unit_code", "at"),
)
sa.Table(
    "case_link", md,
    sa.Column("from_case_id", sa.Integer(), _fk("dispute_case.id"), primary_key=True),
    sa.Column("to_case_id", sa.Integer(), _fk("dispute_case.id"), primary_key=True),
    sa.Column("kind", sa.String(20), primary_key=True),
    sa.Column("at", Time, nullable=False),
    sa.Column("actor", sa.String(100)),
    sa.Index("ix_case_link_to", "to_case_id"),
)
sa.Table(
    "indicator_rollup", md,
    sa.Column("unit_code", sa.String(20), primary_key=True),
    sa.Column("day", sa.Date(), primary_key=True),
    sa.Column("category", sa.String(20), primary_key=True),
    sa.Column("level", sa.String(20), primary_key=True),
    sa.Column("measure", sa.String(40), primary_key=True),
    sa.Column("value", sa.BigInteger(), nullable=False),
    sa.Index("ix_indicator_rollup_day_unit", "day", "unit_code"),
)
sa.Table(
    "notification", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("staff_id", sa.String(20), _fk("staff.id"), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("case_id", sa.Integer(), _fk("dispute_case.id"), index=True),
    sa.Column("task_guid", sa.String(36)),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("read_at", Time),
    sa.Column("args", JSONType, nullable=False),
    sa.Index("ix_notification_staff_read", "staff_id", "read_at", "id"),
)
sa.Table(
    "notification_pref", md,
    sa.Column("staff_id", sa.String(20), _fk("staff.id"), primary_key=True),
    sa.Column("channels", JSONType, nullable=False),
    sa.Column("email", sa.String(200)),
    sa.Column("wecom_user", sa.String(64)),
    sa.Column("phone", sa.String(20)),
    sa.Column("quiet_start", sa.String(5)),
    sa.Column("quiet_end", sa.String(5)),
    sa.Column("updated_at", Time, nullable=False),
)
sa.Table(
    "case_late", md,
    sa.Column("work_item_id", sa.Integer(), _fk("work_item.id"), primary_key=True),
    sa.Column("scope", sa.String(200), primary_key=True),
    sa.Column("case_id", sa.Integer(), _fk("dispute_case.id"), nullable=False),
    sa.Column("late_at", Time),
    sa.Column("due_key", Time, nullable=False),
    sa.Index("ix_case_late_case_id", "case_id"),
    sa.Index("ix_case_late_scope_due", "scope", "due_key", "work_item_id", "late_at"),
)
sa.Table(
    "case_party", md,
    sa.Column("resident_id", sa.Integer(), primary_key=True),
    sa.Column("case_id", sa.Integer(), _fk("dispute_case.id"), primary_key=True),
    sa.Index("ix_case_party_case_id", "case_id"),
)
sa.Table(
    "case_search", md,
    sa.Column("seq", sa.Integer(), primary_key=True),
    sa.Column("case_id", sa.Integer(), _fk("dispute_case.id"), nullable=False, unique=True),
    sa.Column("tsv", sa.Text().with_variant(postgresql.TSVECTOR(), "postgresql")),
    sa.Index("ix_case_search_tsv", "tsv", postgresql_using="gin", sqlite_where=sa.false()),
)

# -- the registry ------------------------------------------------------------------------------
sa.Table(
    "building", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("grid_code", sa.String(20), _fk("org_unit.code"), nullable=False, index=True),
    sa.Column("address", sa.String(200), nullable=False, unique=True),
    sa.Column("lat", sa.Float()),
    sa.Column("lng", sa.Float()),
    sa.Column("created_at", Time, nullable=False),
)
sa.Table(
    "household", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("building_id", sa.Integer(), _fk("building.id"), nullable=False),
    sa.Column("door_no", sa.String(20), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.UniqueConstraint("building_id", "door_no", name="uq_household_building_door"),
)
sa.Table(
    "registry_import", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("filename", sa.String(300), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("format", sa.String(10), nullable=False),
    sa.Column("actor", sa.String(100)),
    sa.Column("grid_code", sa.String(20)),
    sa.Column("started_at", Time, nullable=False),
    sa.Column("finished_at", Time),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("rows", sa.Integer(), nullable=False),
    sa.Column("counts", JSONType, nullable=False),
    sa.Column("errors", JSONType, nullable=False),
)
sa.Table(
    "resident", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("household_id", sa.Integer(), _fk("household.id"), nullable=False),
    sa.Column("grid_code", sa.String(20), _fk("org_unit.code"), nullable=False),
    sa.Column("name", sa.String(50), nullable=False, index=True),
    sa.Column("id_number", sa.String(120)),  # sealed (grid.crypto)
    sa.Column("phone", sa.String(120)),  # sealed
    sa.Column("birth_date", sa.Date()),
    sa.Column("sex", sa.String(1)),
    sa.Column("relation", sa.String(20), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
    sa.Column("created_batch_id", sa.Integer(), _fk("registry_import.id")),
    sa.Column("id_index", sa.String(32), unique=True),  # blind indexes
    sa.Column("id_tail", sa.String(4)),
    sa.Column("phone_index", sa.String(32), index=True),
    sa.Index("ix_resident_grid_status", "grid_code", "status"),
    sa.Index("ix_resident_household", "household_id", "status"),
)
sa.Table(
    "resident_event", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("resident_id", sa.Integer(), _fk("resident.id"), nullable=False, index=True),
    sa.Column("household_id", sa.Integer(), _fk("household.id")),
    sa.Column("grid_code", sa.String(20), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("occurred_on", sa.Date()),
    sa.Column("at", Time, nullable=False),
    sa.Column("actor", sa.String(100)),
    sa.Column("before", JSONType, nullable=False),
    sa.Column("after", JSONType, nullable=False),
    sa.Column("note", sa.Text()),
    sa.Index("ix_resident_event_grid_at", "grid_code", "at"),
)
sa.Table(
    "special_flag", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("resident_id", sa.Integer(), _fk("resident.id"), nullable=False, index=True),
    sa.Column("grid_code", sa.String(20), nullable=False),
    sa.Column("category", sa.String(30), nullable=False),
    sa.Column("risk_level", sa.String(10), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("instance_id", sa.Integer(), _fk("instance.id"), index=True),
    sa.Column("note", sa.Text()),
    sa.Column("flagged_at", Time, nullable=False),
    sa.Column("flagged_by", sa.String(100)),
    sa.Column("ended_at", Time),
    sa.Column("ended_by", sa.String(100)),
    sa.Column("end_reason", sa.String(200)),
    sa.Column("visits", sa.Integer(), nullable=False),
    sa.Column("last_visit_at", Time),
    sa.Column("next_due_at", Time),
    sa.Column("overdue_since", Time),
    sa.Column("overdue_count", sa.Integer(), nullable=False),
    sa.Index("ix_special_flag_grid_active", "grid_code", "active"),
)
sa.Table(
    "registry_reveal", md,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("staff_id", sa.String(20), _fk("staff.id"), nullable=False),
    sa.Column("resident_id", sa.Integer(), _fk("resident.id"), nullable=False, index=True),
    sa.Column("field", sa.String(20), nullable=False),
    sa.Column("granted", sa.Boolean(), nullable=False),
    sa.Column("reason", sa.String(200)),
    sa.Column("at", Time, nullable=False),
    sa.Index("ix_registry_reveal_staff_at", "staff_id", "at"),
)


def upgrade() -> None:
    from grid.cases import late_index
    from grid.cases.models import FTS_DDL

    bind = op.get_bind()
    md.create_all(bind)
    if bind.dialect.name == "sqlite":
        op.execute(FTS_DDL)  # the archive's full-text index (its shadow tables come with it)
    for stmt in late_index.trigger_ddl(bind.dialect.name):
        op.execute(stmt)


def downgrade() -> None:
    from grid.cases import late_index

    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(late_index.DROP_SQLITE)
        op.execute("DROP TABLE IF EXISTS case_fts")
    else:
        for stmt in late_index.DROP_PG:
            op.execute(stmt)
    md.drop_all(bind)
