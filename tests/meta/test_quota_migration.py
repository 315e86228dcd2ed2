"""Migration 0008 on a store that already holds images: every project gets a quota without a limit, its usage
computed from what its repositories hold (each digest once per project), on SQLite and PostgreSQL; and back."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from moorage.meta.migrate import MIGRATIONS
from moorage.meta.quotas import QuotaModel
from moorage.meta.store import MetaStore
from tests.support.postgres import Postgres


def _migrate(store: MetaStore, revision: str, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.connect() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)
        conn.commit()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MetaStore:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'moorage.db'}"
    else:
        postgres: Postgres = request.getfixturevalue("postgres")
        url = postgres.new_database(f"m0008_{tmp_path.name.replace('-', '_')[-40:]}")
    made = MetaStore(url)
    request.addfinalizer(made.dispose)
    return made


def _seed(store: MetaStore) -> None:
    """Two projects as revision 0007 knew them: "team" with a layer shared by two repositories, "te_m" (whose
    "_" must not match "texm/..."), and repositories in no project."""
    with store.engine.begin() as conn:
        run = conn.execute
        run(sa.text("INSERT INTO users (username, password_hash, created_at, updated_at) VALUES ('o', 'x', 0, 0)"))
        for name in ("team", "te_m", "empty"):
            run(sa.text("INSERT INTO projects (name, owner_id, created_at, updated_at) VALUES (:n, 1, 0, 0)"),
                {"n": name})
        for digest, size in (("sha256:shared", 1000), ("sha256:a", 200), ("sha256:b", 30), ("sha256:x", 4)):
            run(sa.text("INSERT INTO blobs (digest, size, created_at) VALUES (:d, :s, 0)"), {"d": digest, "s": size})
        manifests = [("team/a", "sha256:ma", ["sha256:shared", "sha256:a"]), ("team/b", "sha256:mb",
                     ["sha256:shared", "sha256:b"]), ("texm/c", "sha256:mc", ["sha256:x"]),
                     ("te_m/d", "sha256:md", ["sha256:x"]), ("solo", "sha256:ms", ["sha256:a"])]
        for repo_id, (repo, digest, refs) in enumerate(manifests, start=1):
            run(sa.text("INSERT INTO repositories (id, name, created_at, updated_at) VALUES (:i, :n, 0, 0)"),
                {"i": repo_id, "n": repo})
            run(sa.text("INSERT INTO manifests (id, repository_id, digest, media_type, size, content, created_at) "
                        "VALUES (:i, :i, :d, 'application/vnd.oci.image.manifest.v1+json', 5, :c, 0)"),
                {"i": repo_id, "d": digest, "c": b"12345"})
            for ref in refs:
                run(sa.text("INSERT INTO manifest_references (manifest_id, digest, kind) VALUES (:i, :d, 'blob')"),
                    {"i": repo_id, "d": ref})


def test_existing_projects_get_their_usage_counted(store: MetaStore) -> None:
    _migrate(store, "0007")
    _seed(store)
    _migrate(store, "0008")
    quotas = QuotaModel(store)
    found = {q.project: (q.hard, q.used) for q in quotas.all()}
    assert found == {"team": (-1, 1000 + 200 + 30 + 5 + 5), "te_m": (-1, 4 + 5), "empty": (-1, 0)}
    assert quotas.drift() == []
    _migrate(store, "0007", down=True)
    assert "project_quotas" not in sa.inspect(store.engine).get_table_names()
