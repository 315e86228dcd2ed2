"""The quota ledger in the metadata store's own transactions: a manifest counts what it adds to its project
(each digest once), a refused manifest leaves nothing behind, deletions give back only what nothing else holds,
and the recount finds no drift."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from moorage.meta.migrate import upgrade
from moorage.meta.projects import ProjectModel
from moorage.meta.quotas import OverQuota
from moorage.meta.registry import NewManifest, RegistryModel
from moorage.meta.schema import users
from moorage.meta.store import MetaStore

pytestmark = pytest.mark.fast


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> MetaStore:
    made = MetaStore(f"sqlite:///{tmp_path / 'moorage.db'}")
    upgrade(made)
    with made.write() as conn:
        conn.execute(users.insert().values(username="owner", password_hash="x", created_at=0, updated_at=0))
    return made


def manifest(registry: RegistryModel, repo: str, layers: dict[str, int], tag: str) -> NewManifest:
    for digest, size in layers.items():
        assert registry.link_blob(repo, digest, size)
    content = f"{repo}:{tag}:{sorted(layers)}".encode()
    return NewManifest(sha(content), "application/vnd.oci.image.manifest.v1+json", None, None, None, content,
                       tuple(layers), ())


def test_usage_counts_distinct_content_and_refusals_leave_nothing(store: MetaStore) -> None:
    projects, registry = ProjectModel(store), RegistryModel(store)
    project_id = projects.create("team", 1, False, {}, storage_limit=10_000)
    assert project_id is not None
    shared, own = sha(b"shared"), sha(b"own")
    first = manifest(registry, "team/a", {shared: 3_000, own: 1_000}, "v1")
    registry.put_manifest("team/a", first, ["v1"])
    quota = registry.quotas.of_project(project_id)
    assert quota is not None and quota.used == 4_000 + len(first.content)

    # The shared layer in a second repository adds only the new manifest and layer.
    second = manifest(registry, "team/b", {shared: 3_000, sha(b"b"): 500}, "v1")
    registry.put_manifest("team/b", second, ["v1"])
    used = 4_500 + len(first.content) + len(second.content)
    assert registry.quotas.of_project(project_id).used == used  # type: ignore[union-attr]
    # Pushed again, a manifest adds nothing.
    registry.put_manifest("team/b", second, ["latest"])
    assert registry.quotas.of_project(project_id).used == used  # type: ignore[union-attr]

    too_big = manifest(registry, "team/a", {sha(b"big"): 6_000}, "v2")
    with pytest.raises(OverQuota) as refused:
        registry.put_manifest("team/a", too_big, ["v2"])
    assert (refused.value.adding, refused.value.used, refused.value.hard) == \
        (6_000 + len(too_big.content), used, 10_000)
    assert registry.manifest_by_tag("team/a", "v2") is None
    assert registry.quotas.of_project(project_id).used == used  # type: ignore[union-attr]

    assert registry.delete_manifest("team/a", first.digest)
    assert registry.quotas.of_project(project_id).used == 3_500 + len(second.content)  # type: ignore[union-attr]
    assert projects.delete_repository("team/b")
    assert registry.quotas.of_project(project_id).used == 0  # type: ignore[union-attr]
    assert registry.quotas.drift() == []


def test_a_project_created_over_existing_repositories_counts_them(store: MetaStore) -> None:
    registry = RegistryModel(store)
    pushed = manifest(registry, "late/app", {sha(b"layer"): 700}, "v1")
    registry.put_manifest("late/app", pushed, ["v1"])  # no project yet: nothing to count it in
    project_id = ProjectModel(store).create("late", 1, False, {})
    assert project_id is not None
    quota = registry.quotas.of_project(project_id)
    assert quota is not None and (quota.hard, quota.used) == (-1, 700 + len(pushed.content))
    assert registry.quotas.drift() == []
