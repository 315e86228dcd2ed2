"""Object storage: upload sessions keep what the blob store knows of them (the S3 driver's multipart upload
id, its parts and the tail), so the next chunk may land on any replica (issue 17).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("store_state", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("store_state")
