"""Each case's map cell (dispute_case.geo_cell, grid.cases.checks.geo_cell) with an index on
(category, geo_cell, reported_at) (issue 16): repeat detection reads the newest cases of the same
category in the cells around a report, instead of every case of the category in a lat/lng band.
On PostgreSQL, ix_dispute_case_status_unit_path is rebuilt with varchar_pattern_ops on the path, so
"open cases under a unit" (`unit_path LIKE 'p%'`) is an index range in any collation. And
ix_work_item_spec_state: the open tasks of one kind (the open 督办 of a map's cases).

Revision ID: 0028_geo_cell
Revises: 0027_total_levels
"""
import sqlalchemy as sa
from alembic import op

revision, down_revision = "0028_geo_cell", "0027_total_levels"

_case = sa.table("dispute_case", sa.column("id"), sa.column("lat", sa.Float), sa.column("lng", sa.Float),
                 sa.column("geo_cell", sa.String))


def upgrade() -> None:
    from grid.cases.checks import geo_cell

    with op.batch_alter_table("dispute_case") as b:
        b.add_column(sa.Column("geo_cell", sa.String(24), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(_case.c.id, _case.c.lat, _case.c.lng)
                        .where(_case.c.lat.is_not(None), _case.c.lng.is_not(None))).all()
    ups = [{"p_id": i, "p_cell": geo_cell(lat, lng)} for i, lat, lng in rows]
    for k in range(0, len(ups), 5000):
        bind.execute(_case.update().where(_case.c.id == sa.bindparam("p_id"))
                     .values(geo_cell=sa.bindparam("p_cell")), ups[k:k + 5000])
    op.create_index("ix_dispute_case_cell", "dispute_case", ["category", "geo_cell", "reported_at"])
    op.create_index("ix_work_item_spec_state", "work_item", ["task_spec", "state"])
    if bind.dialect.name == "postgresql":
        _path_index(pattern=True)


def _path_index(pattern: bool) -> None:
    op.drop_index("ix_dispute_case_status_unit_path", table_name="dispute_case")
    op.create_index("ix_dispute_case_status_unit_path", "dispute_case", ["status", "unit_path"],
                    postgresql_ops={"unit_path": "varchar_pattern_ops"} if pattern else {})


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _path_index(pattern=False)
    op.drop_index("ix_work_item_spec_state", table_name="work_item")
    op.drop_index("ix_dispute_case_cell", table_name="dispute_case")
    with op.batch_alter_table("dispute_case") as b:
        b.drop_column("geo_cell")
