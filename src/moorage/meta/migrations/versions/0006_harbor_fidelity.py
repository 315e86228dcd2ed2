"""What Harbor's API shows and moorage did not keep: pull counts and times of artifacts, tags and repositories,
a real id for every tag, and each project's CVE allowlist.

Tags move from a (repository, name) primary key to their own id, (repository, name) staying unique: the table
is rebuilt (SQLite cannot change a primary key in place), keeping every tag.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TAG_COLUMNS = "repository_id, name, manifest_id, updated_at"


def _tags_table(name: str, *, with_id: bool) -> None:
    """``tags`` as revision 0006 has it (``with_id``: its own id, (repository, name) unique), or as before."""
    key = not with_id
    items: list[sa.schema.SchemaItem] = [
        sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"),
                  nullable=False, primary_key=key),
        sa.Column("name", sa.String(128), nullable=False, primary_key=key),
        sa.Column("manifest_id", sa.Integer, sa.ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    ]
    if with_id:
        items = [sa.Column("id", sa.Integer, primary_key=True, autoincrement=True), *items,
                 sa.Column("pull_time", sa.Float, nullable=True),
                 sa.UniqueConstraint("repository_id", "name", name="uq_tags_repository_name")]
    op.create_table(name, *items)


def _replace_tags(with_id: bool) -> None:
    _tags_table("tags_rebuilt", with_id=with_id)
    # Oldest first, so the new ids follow the order the tags were pushed in.
    op.execute(f"INSERT INTO tags_rebuilt ({_TAG_COLUMNS}) SELECT {_TAG_COLUMNS} FROM tags "
               "ORDER BY updated_at, repository_id, name")
    op.drop_index("ix_tags_manifest", "tags")
    op.drop_table("tags")
    op.rename_table("tags_rebuilt", "tags")
    op.create_index("ix_tags_manifest", "tags", ["manifest_id"])


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN on both databases: a batch-mode rebuild of repositories or manifests on SQLite
    # would drop the old table, and its foreign keys would take every tag and reference with it.
    op.add_column("repositories", sa.Column("pull_count", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column("manifests", sa.Column("pull_count", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column("manifests", sa.Column("pull_time", sa.Float, nullable=True))
    op.add_column("projects", sa.Column("cve_allowlist_json", sa.Text, nullable=True))
    _replace_tags(with_id=True)


def downgrade() -> None:
    _replace_tags(with_id=False)
    # Not batch mode either (see upgrade); SQLite 3.35+ drops a plain column in place.
    for table, column in (("projects", "cve_allowlist_json"), ("manifests", "pull_time"),
                          ("manifests", "pull_count"), ("repositories", "pull_count")):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
