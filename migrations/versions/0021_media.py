"""Attachments: `pending` marks an upload stored for a form whose step has not finished yet.

A pending upload becomes permanent when it is linked to a case or kept by a finished form; one
left pending past GRIDFLOW_UPLOAD_GRACE_HOURS (a failed step, a crash) is removed by the
periodic cleanup. Uploads that existed before are kept (server default false).
"""
import sqlalchemy as sa
from alembic import op

revision = "0021_media"
down_revision = "0019_audit_chain"


def upgrade() -> None:
    with op.batch_alter_table("attachment") as b:
        b.add_column(sa.Column("pending", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index("ix_attachment_pending", "attachment", ["pending", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_attachment_pending", table_name="attachment")
    with op.batch_alter_table("attachment") as b:
        b.drop_column("pending")
