"""Tamper-evident audit: a chain hash on every instance event and security event, and the head
table of named chains (engine.audit_chain, docs/audit.md).

Existing rows are sealed in place, in order, chunk by chunk (the key is GRIDFLOW_AUDIT_KEY, or the
generated instance/audit_key), so `gridflow audit verify` passes on an upgraded database. The
downgrade drops the hashes.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from engine.db import UTCDateTime

revision = "0019_audit_chain"
down_revision = "0018_accountability"

CHUNK = 2000
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_event = sa.table("instance_event", sa.column("id", sa.Integer), sa.column("instance_id", sa.Integer),
                  sa.column("seq", sa.Integer), sa.column("at", UTCDateTime()), sa.column("actor", sa.String),
                  sa.column("kind", sa.String), sa.column("task", sa.String), sa.column("data", _JSON),
                  sa.column("hash", sa.String))
_sec = sa.table("security_event", sa.column("id", sa.Integer), sa.column("at", UTCDateTime()),
                sa.column("kind", sa.String), sa.column("actor_staff_id", sa.String),
                sa.column("subject_staff_id", sa.String), sa.column("unit_code", sa.String),
                sa.column("ip", sa.String), sa.column("detail", _JSON), sa.column("seq", sa.Integer),
                sa.column("hash", sa.String))
_head = sa.table("audit_chain_head", sa.column("name", sa.String), sa.column("seq", sa.Integer),
                 sa.column("hash", sa.String), sa.column("anchor_seq", sa.Integer),
                 sa.column("anchor_hash", sa.String), sa.column("updated_at", UTCDateTime()))


def _seal_instance_events(conn) -> None:
    from engine import audit_chain

    last_key, prev = (0, 0), {}
    while True:
        rows = conn.execute(sa.select(_event).where(sa.tuple_(_event.c.instance_id, _event.c.seq) > sa.tuple_(
            sa.literal(last_key[0]), sa.literal(last_key[1]))).order_by(_event.c.instance_id, _event.c.seq)
            .limit(CHUNK)).all()
        if not rows:
            return
        updates = []
        for r in rows:
            p = prev.get(r.instance_id)
            h = audit_chain.link(p[1] if p and p[0] == r.seq - 1 else None, audit_chain.event_content(r))
            prev = {r.instance_id: (r.seq, h)}
            updates.append({"p_id": r.id, "p_hash": h})
        conn.execute(_event.update().where(_event.c.id == sa.bindparam("p_id")).values(hash=sa.bindparam("p_hash")),
                     updates)
        last_key = (rows[-1].instance_id, rows[-1].seq)


def _seal_security_events(conn) -> None:
    from engine import audit_chain, clock
    from grid.org.audit import content

    seq, prev, last = 0, None, 0
    while True:
        rows = conn.execute(sa.select(_sec).where(_sec.c.id > last).order_by(_sec.c.id).limit(CHUNK)).all()
        if not rows:
            break
        updates = []
        for r in rows:
            seq += 1
            prev = audit_chain.link(prev, content(seq, r.at, r.kind, r.actor_staff_id, r.subject_staff_id,
                                                  r.unit_code, r.ip, r.detail))
            updates.append({"p_id": r.id, "p_seq": seq, "p_hash": prev})
        conn.execute(_sec.update().where(_sec.c.id == sa.bindparam("p_id"))
                     .values(seq=sa.bindparam("p_seq"), hash=sa.bindparam("p_hash")), updates)
        last = rows[-1].id
    conn.execute(_head.insert().values(name="security", seq=seq, hash=prev, anchor_seq=0, anchor_hash=None,
                                       updated_at=clock.now()))


def upgrade() -> None:
    op.create_table(
        "audit_chain_head",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=True),
        sa.Column("anchor_seq", sa.Integer(), nullable=False),
        sa.Column("anchor_hash", sa.String(length=64), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_audit_chain_head")),
    )
    op.add_column("instance_event", sa.Column("hash", sa.String(length=64), nullable=True))
    op.add_column("security_event", sa.Column("seq", sa.Integer(), nullable=True))
    op.add_column("security_event", sa.Column("hash", sa.String(length=64), nullable=True))
    conn = op.get_bind()
    _seal_instance_events(conn)
    _seal_security_events(conn)
    op.create_index(op.f("ix_security_event_seq"), "security_event", ["seq"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_security_event_seq"), table_name="security_event")
    with op.batch_alter_table("security_event") as b:
        b.drop_column("hash")
        b.drop_column("seq")
    with op.batch_alter_table("instance_event") as b:
        b.drop_column("hash")
    op.drop_table("audit_chain_head")
