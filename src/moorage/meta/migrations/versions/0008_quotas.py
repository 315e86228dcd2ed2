"""Project quotas: storage usage kept with the references (issue 16).

Every project gets a quota (no limit, as Harbor's default ``storage_per_project`` of -1) whose usage is what
its repositories hold through manifests: each manifest and each blob a manifest references, every digest once
per project (``moorage.meta.quotas``). Existing projects' usage is computed here from their references.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# A repository is in the project named by its first path segment (substr, not LIKE: names may hold "_").
_IN_PROJECT = "substr(r.name, 1, length(p.name) + 1) = p.name || '/'"


def upgrade() -> None:
    op.create_table(
        "project_quotas",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False,
                  unique=True),
        sa.Column("hard", sa.BigInteger, nullable=False, server_default="-1"),
        sa.Column("used", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "project_blobs",
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("digest", sa.String(200), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("refs", sa.Integer, nullable=False),
    )
    op.execute(
        "INSERT INTO project_blobs (project_id, digest, size, refs) "
        "SELECT project_id, digest, MAX(size), COUNT(*) FROM ("
        f" SELECT p.id AS project_id, m.digest AS digest, m.size AS size FROM manifests m"
        f"  JOIN repositories r ON r.id = m.repository_id JOIN projects p ON {_IN_PROJECT}"
        " UNION ALL"
        f" SELECT p.id, mr.digest, COALESCE(b.size, 0) FROM manifest_references mr"
        f"  JOIN manifests m ON m.id = mr.manifest_id JOIN repositories r ON r.id = m.repository_id"
        f"  JOIN projects p ON {_IN_PROJECT} LEFT JOIN blobs b ON b.digest = mr.digest WHERE mr.kind = 'blob'"
        ") counted GROUP BY project_id, digest")
    now = time.time()
    op.execute(sa.text(
        "INSERT INTO project_quotas (project_id, hard, used, created_at, updated_at) "
        "SELECT p.id, -1, COALESCE((SELECT SUM(pb.size) FROM project_blobs pb WHERE pb.project_id = p.id), 0), "
        ":now, :now FROM projects p ORDER BY p.id").bindparams(now=now))


def downgrade() -> None:
    op.drop_table("project_blobs")
    op.drop_table("project_quotas")
