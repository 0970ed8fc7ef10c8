"""Phones of staff and of case parties sealed at rest (issue 17, personal data): `staff.phone`
widened to a sealed token (grid.crypto, context `staff.phone`) and every stored phone sealed;
the phones inside `dispute_case.parties` sealed (context `case.party_phone`). Downgrade opens them
again (the current key must open them)."""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0026_phones"
down_revision = "0025_rollups"

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
STAFF, PARTY = "staff.phone", "case.party_phone"
_staff = sa.table("staff", sa.column("id"), sa.column("phone", sa.Text))
_case = sa.table("dispute_case", sa.column("id"), sa.column("parties", JSONType))


def _rewrite(fn_staff, fn_party) -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(_staff.c.id, _staff.c.phone).where(_staff.c.phone.is_not(None))).all()
    ups = [{"p_id": i, "p_phone": fn_staff(p)} for i, p in rows if fn_staff(p) != p]
    for k in range(0, len(ups), 1000):
        bind.execute(_staff.update().where(_staff.c.id == sa.bindparam("p_id"))
                     .values(phone=sa.bindparam("p_phone")), ups[k:k + 1000])
    for cid, parties in bind.execute(sa.select(_case.c.id, _case.c.parties)).all():
        if not isinstance(parties, list):
            continue
        new = [{**p, "phone": fn_party(p["phone"])} if isinstance(p, dict) and isinstance(p.get("phone"), str)
               and p["phone"] else p for p in parties]
        if new != parties:
            bind.execute(_case.update().where(_case.c.id == cid).values(parties=new))


def upgrade() -> None:
    from grid import crypto

    with op.batch_alter_table("staff") as b:
        b.alter_column("phone", existing_type=sa.String(20), type_=sa.String(crypto.SEALED_LENGTH))
    _rewrite(lambda v: v if crypto.is_sealed(v) else crypto.seal(v, STAFF),
             lambda v: v if crypto.is_sealed(v) else crypto.seal(v, PARTY))


def downgrade() -> None:
    from grid import crypto

    _rewrite(lambda v: crypto.unseal(v, STAFF) if crypto.is_sealed(v) else v,
             lambda v: crypto.unseal(v, PARTY) if crypto.is_sealed(v) else v)
    with op.batch_alter_table("staff") as b:
        b.alter_column("phone", existing_type=sa.String(crypto.SEALED_LENGTH), type_=sa.String(20))
