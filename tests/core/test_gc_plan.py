"""What garbage collection decides, on snapshots built by hand: what keeps a blob, a link, a manifest."""

from __future__ import annotations

import pytest

from moorage.core.gc import plan
from moorage.meta.gc import LinkRow, ManifestRow, Snapshot

pytestmark = pytest.mark.fast

NOW = 1_000_000.0
OLD = NOW - 10_000  # older than any grace used here
REPO, OTHER = 1, 2


def snapshot(manifests: list[tuple[int, int, str, str | None]], tagged: set[int],
             references: dict[int, list[tuple[str, str]]], links: list[tuple[int, str, float]],
             blobs: dict[str, tuple[int, float]]) -> Snapshot:
    view = Snapshot(taken_at=NOW)
    view.manifests = {mid: ManifestRow(mid, repo, digest, subject) for mid, repo, digest, subject in manifests}
    view.tagged = tagged
    view.references = references
    view.links = [LinkRow(*link) for link in links]
    view.blobs = blobs
    return view


def test_a_blob_goes_only_when_nothing_links_or_references_it_and_it_is_past_the_grace() -> None:
    view = snapshot(
        manifests=[(10, REPO, "m:image", None)], tagged={10},
        references={10: [("b:config", "blob"), ("b:shared", "blob")]},
        links=[(REPO, "b:config", 0), (REPO, "b:shared", 0), (OTHER, "b:shared", 0),
               (OTHER, "b:leased", NOW + 60), (OTHER, "b:expired", NOW - 1)],
        blobs={"b:config": (10, OLD), "b:shared": (20, OLD), "b:leased": (30, OLD), "b:expired": (40, OLD),
               "b:orphan": (50, OLD), "b:young": (60, NOW - 5)})
    decided = plan(view, NOW, created_before=NOW - 60, delete_untagged=False)
    # OTHER's links to b:shared and b:expired have no manifest there and their leases passed.
    assert {(link.repository_id, link.digest) for link in decided.links} == {(OTHER, "b:shared"),
                                                                             (OTHER, "b:expired")}
    # b:shared stays (REPO's manifest references it), b:leased (its lease holds), b:young (the grace period).
    assert decided.blobs == [("b:expired", 40), ("b:orphan", 50)]
    assert decided.bytes == 90


def test_untagged_manifests_go_but_never_a_kept_index_child_or_a_kept_manifest_referrer() -> None:
    view = snapshot(
        manifests=[(1, REPO, "m:index", None), (2, REPO, "m:amd64", None), (3, REPO, "m:arm64", None),
                   (4, REPO, "m:signature", "m:index"), (5, REPO, "m:old", None), (6, REPO, "m:old-sbom", "m:old"),
                   (7, OTHER, "m:amd64", None)],
        tagged={1},
        references={1: [("m:amd64", "manifest"), ("m:arm64", "manifest")], 2: [("b:a", "blob")],
                    3: [("b:b", "blob")], 5: [("b:old", "blob")], 7: [("b:a", "blob")]},
        links=[(REPO, "b:a", 0), (REPO, "b:b", 0), (REPO, "b:old", 0), (OTHER, "b:a", 0)],
        blobs={"b:a": (1, OLD), "b:b": (2, OLD), "b:old": (3, OLD)})
    decided = plan(view, NOW, created_before=NOW, delete_untagged=True)
    # The index's children (in its repository only) and its signature stay; the old image, the old
    # image's SBOM, and OTHER's untagged copy of m:amd64 go, the SBOM after its subject.
    assert [m.id for m in decided.manifests if m.repository_id == REPO] == [5, 6]
    assert {m.id for m in decided.manifests} == {5, 6, 7}
    assert decided.blobs == [("b:old", 3)]
    assert {(link.repository_id, link.digest) for link in decided.links} == {(REPO, "b:old"), (OTHER, "b:a")}
    # Without --delete-untagged, nothing that a manifest references goes.
    assert plan(view, NOW, created_before=NOW, delete_untagged=False).blobs == []


def test_an_index_goes_before_its_untagged_children() -> None:
    view = snapshot(manifests=[(1, REPO, "m:child", None), (2, REPO, "m:index", None)], tagged=set(),
                    references={2: [("m:child", "manifest")]}, links=[], blobs={})
    assert [m.id for m in plan(view, NOW, NOW, delete_untagged=True).manifests] == [2, 1]


def test_a_run_that_died_leaves_its_tombstones_to_the_next() -> None:
    view = snapshot(manifests=[], tagged=set(), references={}, links=[], blobs={})
    view.tombstones = {"b:half-deleted": 7}
    decided = plan(view, NOW, NOW, delete_untagged=False)
    assert decided.unfinished == [("b:half-deleted", 7)] and decided.bytes == 7
