"""Upload sessions record who opened them (to cap open sessions per account and per repository), and
scheduled jobs take a lease so that one process among all replicas runs each.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        # Sessions opened before this migration belong to no account; they expire as any other.
        batch.add_column(sa.Column("owner", sa.String(300), nullable=False, server_default=""))
    op.create_index("ix_uploads_repository", "uploads", ["repository"])
    op.create_index("ix_uploads_owner", "uploads", ["owner"])
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_leases")
    op.drop_index("ix_uploads_owner", table_name="uploads")
    op.drop_index("ix_uploads_repository", table_name="uploads")
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("owner")
