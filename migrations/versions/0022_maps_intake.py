"""Maps and intake: the (updated_at, id) index the API case list pages by.

Boundaries keep the `unit_boundary` table of 0011 (its model moved to grid.org.models; the demo
city now fills it with nested Voronoi outlines). The hotline/window operator is a role name
(`operator`, grid.org.models.ROLES), and a caller's phone is sealed in the process data: neither
needs a column. The index lets `/api/v1/cases` (order by updated_at, id; `updated_since`; the
cursor) stop after one page instead of sorting every case (bench/api_bench.py).
"""
from alembic import op

revision = "0022_maps_intake"
down_revision = "0021_media"


def upgrade() -> None:
    op.create_index("ix_dispute_case_updated_id", "dispute_case", ["updated_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_dispute_case_updated_id", table_name="dispute_case")
