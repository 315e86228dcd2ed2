"""Bring a metadata store's schema to the latest Alembic revision."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from moorage.meta.store import MetaStore

MIGRATIONS = Path(__file__).parent / "migrations"


def upgrade(store: MetaStore) -> None:
    """Call it holding ``store.setup_lock()``: two migrators at once would both create the tables."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        conn.commit()
