"""Migration 0006 on a store that already holds tags: every tag kept, each given its own id in push order,
pull counts starting at zero, the push path's upsert on (repository, name) working after it; and back."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from moorage.meta.migrate import MIGRATIONS
from moorage.meta.registry import NewManifest, PullTally, RegistryModel, count_pulls
from moorage.meta.store import MetaStore
from tests.support.postgres import Postgres


def _migrate(store: MetaStore, revision: str, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.connect() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)
        conn.commit()


def _seed(store: MetaStore) -> None:
    """A repository with one manifest and three tags, written as revision 0005 knew them."""
    with store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO repositories (name, created_at, updated_at) VALUES ('p/app', 1, 1)"))
        conn.execute(sa.text(
            "INSERT INTO manifests (repository_id, digest, media_type, size, content, created_at) "
            "VALUES (1, 'sha256:aa', 'application/vnd.oci.image.manifest.v1+json', 2, :content, 1)"),
            {"content": b"{}"})
        for name, when in (("latest", 30.0), ("v1", 10.0), ("v2", 20.0)):
            conn.execute(sa.text("INSERT INTO tags (repository_id, name, manifest_id, updated_at) "
                                 "VALUES (1, :name, 1, :when)"), {"name": name, "when": when})


def _tags(store: MetaStore) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text("SELECT * FROM tags ORDER BY name"))]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MetaStore:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'moorage.db'}"
    else:
        postgres: Postgres = request.getfixturevalue("postgres")
        url = postgres.new_database(f"m0006_{tmp_path.name.replace('-', '_')[-40:]}")
    made = MetaStore(url)
    request.addfinalizer(made.dispose)
    return made


def test_tags_get_ids_and_nothing_is_lost(store: MetaStore) -> None:
    _migrate(store, "0005")
    _seed(store)
    _migrate(store, "0006")
    rows = {row[2]: row for row in _tags(store)}  # id, repository_id, name, manifest_id, updated_at, pull_time
    assert sorted(rows) == ["latest", "v1", "v2"]
    # Ids in the order the tags were pushed.
    assert rows["v1"][0] < rows["v2"][0] < rows["latest"][0]
    assert all(row[5] is None for row in rows.values())
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT pull_count, pull_time FROM manifests")).one() == (0, None)
        assert conn.execute(sa.text("SELECT pull_count FROM repositories")).scalar_one() == 0
        assert conn.execute(sa.text("SELECT cve_allowlist_json FROM projects")).all() == []

    _migrate(store, "head")  # today's code runs on today's schema; the later revisions keep these rows too
    model = RegistryModel(store)
    model.put_manifest("p/app", NewManifest("sha256:bb", "application/vnd.oci.image.manifest.v1+json", None, None,
                                            None, b"{}", (), ()), ["v1", "v3"])
    after = {row[2]: row for row in _tags(store)}
    assert after["v1"][0] == rows["v1"][0] and after["v1"][3] == 2  # moved, same row
    assert after["v3"][0] not in {row[0] for row in rows.values()}
    with store.write() as conn:
        tally = PullTally()
        tally.add("p/app", "sha256:aa", "latest", 100.0)
        tally.add("p/app", "sha256:aa", None, 50.0)
        count_pulls(conn, tally)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT pull_count, pull_time FROM manifests WHERE digest = 'sha256:aa'")
                            ).one() == (2, 100.0)
    assert {row[2]: row[5] for row in _tags(store)}["latest"] == 100.0

    _migrate(store, "0005", down=True)
    assert sorted(row[1] for row in _tags(store)) == ["latest", "v1", "v2", "v3"]
