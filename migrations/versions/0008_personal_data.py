"""Personal data encrypted at rest: residents' ID numbers and phones sealed (AES-GCM, grid.crypto),
with blind indexes for exact lookups; the ID numbers and phones in the event history sealed too.

Existing plaintext rows are converted in place, in chunks (the key comes from GRIDFLOW_DATA_KEY,
or the generated development key; a production database with rows and no key is refused).
The downgrade opens them again.

Revision ID: 0008_personal_data
Revises: 0007_indicators
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from engine.db import UTCDateTime

revision = "0008_personal_data"
down_revision = "0007_indicators"
branch_labels = None
depends_on = None

CHUNK = 2000
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_resident = sa.table("resident", sa.column("id", sa.Integer), sa.column("id_number", sa.String),
                     sa.column("phone", sa.String), sa.column("id_index", sa.String),
                     sa.column("id_tail", sa.String), sa.column("phone_index", sa.String))
_event = sa.table("resident_event", sa.column("id", sa.Integer), sa.column("before", _JSON),
                  sa.column("after", _JSON))
_FIELDS = ("id_number", "phone")


def _chunks(conn, table, cols, where=None):
    """Rows of `table` in id order, CHUNK at a time (a million residents fit in no list)."""
    last = 0
    while True:
        q = sa.select(table.c.id, *cols).where(table.c.id > last)
        if where is not None:
            q = q.where(where)
        rows = conn.execute(q.order_by(table.c.id).limit(CHUNK)).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _convert_events(conn, fn) -> None:
    """Apply `fn(key, value)` to the ID numbers and phones of every event's before/after."""
    like = sa.or_(*[sa.cast(c, sa.Text).like(f'%"{f}"%') for c in (_event.c.before, _event.c.after) for f in _FIELDS])
    for rows in _chunks(conn, _event, (_event.c.before, _event.c.after), like):
        for eid, before, after in rows:
            nb = {k: fn(k, v) for k, v in (before or {}).items()}
            na = {k: fn(k, v) for k, v in (after or {}).items()}
            if nb != before or na != after:
                conn.execute(_event.update().where(_event.c.id == eid).values(before=nb, after=na))


def _resident_table(personal: bool) -> sa.Table:
    """The resident table after (`personal`) or before this revision, for SQLite's rebuild."""
    width, phone = (120, 120) if personal else (18, 20)
    cols = [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("grid_code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("id_number", sa.String(length=width), nullable=True),
        sa.Column("phone", sa.String(length=phone), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(length=1), nullable=True),
        sa.Column("relation", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("created_batch_id", sa.Integer(), nullable=True),
    ]
    if personal:
        cols += [sa.Column("id_index", sa.String(length=32), nullable=True),
                 sa.Column("id_tail", sa.String(length=4), nullable=True),
                 sa.Column("phone_index", sa.String(length=32), nullable=True)]
    unique = ("uq_resident_id_index", "id_index") if personal else ("uq_resident_id_number", "id_number")
    md = sa.MetaData()  # the referenced tables, for the foreign keys (not created here)
    sa.Table("registry_import", md, sa.Column("id", sa.Integer(), primary_key=True))
    sa.Table("org_unit", md, sa.Column("code", sa.String(length=20), primary_key=True))
    sa.Table("household", md, sa.Column("id", sa.Integer(), primary_key=True))
    return sa.Table(
        "resident", md, *cols,
        sa.ForeignKeyConstraint(["created_batch_id"], ["registry_import.id"],
                                name="fk_resident_created_batch_id_registry_import"),
        sa.ForeignKeyConstraint(["grid_code"], ["org_unit.code"], name="fk_resident_grid_code_org_unit"),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"], name="fk_resident_household_id_household"),
        sa.PrimaryKeyConstraint("id", name="pk_resident"),
        sa.UniqueConstraint(unique[1], name=unique[0]),
        sa.Index("ix_resident_grid_status", "grid_code", "status"),
        sa.Index("ix_resident_household", "household_id", "status"),
        sa.Index("ix_resident_name", "name"),
        sa.Index("ix_resident_phone_index" if personal else "ix_resident_phone",
                 "phone_index" if personal else "phone"),
    )


def _sqlite_rebuild(personal: bool) -> None:
    """Rebuild `resident` on SQLite inside the migration's transaction, where foreign keys cannot
    be switched off: with them deferred, dropping the table counts the children's references as
    violations and putting the same rows back into the new table counts them off again, before
    the commit checks. (A rename would rewrite the children's references to the old copy.)"""
    conn = op.get_bind()
    new = _resident_table(personal)
    common = ", ".join(c.name for c in _resident_table(not personal).columns if c.name in new.c)
    conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
    conn.exec_driver_sql(f"CREATE TEMP TABLE _resident_copy AS SELECT {common} FROM resident")
    conn.exec_driver_sql("DROP TABLE resident")
    new.create(conn)
    conn.exec_driver_sql(f"INSERT INTO resident ({common}) SELECT {common} FROM _resident_copy")
    conn.exec_driver_sql("DROP TABLE _resident_copy")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        _sqlite_rebuild(personal=True)
    else:
        with op.batch_alter_table("resident") as b:
            b.drop_index("ix_resident_phone")
            b.drop_constraint("uq_resident_id_number", type_="unique")
            b.alter_column("id_number", type_=sa.String(length=120), existing_type=sa.String(length=18),
                           existing_nullable=True)
            b.alter_column("phone", type_=sa.String(length=120), existing_type=sa.String(length=20),
                           existing_nullable=True)
            b.add_column(sa.Column("id_index", sa.String(length=32), nullable=True))
            b.add_column(sa.Column("id_tail", sa.String(length=4), nullable=True))
            b.add_column(sa.Column("phone_index", sa.String(length=32), nullable=True))

    from grid import crypto

    conn = op.get_bind()
    plain = sa.or_(sa.and_(_resident.c.id_number.is_not(None), ~_resident.c.id_number.like("g1$%")),
                   sa.and_(_resident.c.phone.is_not(None), ~_resident.c.phone.like("g1$%")))
    for rows in _chunks(conn, _resident, (_resident.c.id_number, _resident.c.phone), plain):
        for rid, idn, phone in rows:
            values = {}
            if idn and not crypto.is_sealed(idn):
                idn = idn.strip().upper()
                values.update(id_number=crypto.seal(idn, "resident.id_number"),
                              id_index=crypto.blind(idn, "resident.id_number"), id_tail=idn[-4:])
            if phone and not crypto.is_sealed(phone):
                values.update(phone=crypto.seal(phone, "resident.phone"),
                              phone_index=crypto.blind(phone.strip(), "resident.phone"))
            conn.execute(_resident.update().where(_resident.c.id == rid).values(**values))

    def seal(k, v):
        return crypto.seal(v, f"event.{k}") if k in _FIELDS and isinstance(v, str) and v and \
            not crypto.is_sealed(v) else v

    _convert_events(conn, seal)
    if not sqlite:  # (SQLite's rebuild made them)
        op.create_unique_constraint("uq_resident_id_index", "resident", ["id_index"])
        op.create_index("ix_resident_phone_index", "resident", ["phone_index"], unique=False)


def downgrade() -> None:
    from grid import crypto

    conn = op.get_bind()
    for rows in _chunks(conn, _resident, (_resident.c.id_number, _resident.c.phone)):
        for rid, idn, phone in rows:
            values = {}
            if crypto.is_sealed(idn):
                values["id_number"] = crypto.unseal(idn, "resident.id_number")
            if crypto.is_sealed(phone):
                values["phone"] = crypto.unseal(phone, "resident.phone")
            if values:
                conn.execute(_resident.update().where(_resident.c.id == rid).values(**values))

    def unseal(k, v):
        return crypto.unseal(v, f"event.{k}") if k in _FIELDS and crypto.is_sealed(v) else v

    _convert_events(conn, unseal)
    if conn.dialect.name == "sqlite":
        _sqlite_rebuild(personal=False)
        return
    op.drop_index("ix_resident_phone_index", table_name="resident")
    op.drop_constraint("uq_resident_id_index", "resident", type_="unique")
    op.drop_column("resident", "phone_index")
    op.drop_column("resident", "id_tail")
    op.drop_column("resident", "id_index")
    op.alter_column("resident", "id_number", type_=sa.String(length=18), existing_type=sa.String(length=120),
                    existing_nullable=True)
    op.alter_column("resident", "phone", type_=sa.String(length=20), existing_type=sa.String(length=120),
                    existing_nullable=True)
    op.create_unique_constraint("uq_resident_id_number", "resident", ["id_number"])
    op.create_index("ix_resident_phone", "resident", ["phone"], unique=False)
