"""Listings the database pages (no ``q``, no ``sort``: what the portal and most clients ask) answer exactly
what the filtered path answers, page by page: the same items, in the same order, with the same total."""

from __future__ import annotations

import pytest

from tests.support.inprocess import InProcessMoorage
from tests.support.oci import push_image

pytestmark = pytest.mark.fast


def _names(items: list[dict]) -> list[str]:  # type: ignore[type-arg]
    return [item["name"] for item in items]


def test_artifact_pages_match_the_filtered_listing(inprocess: InProcessMoorage) -> None:
    project = inprocess.project("paged-artifacts")
    with inprocess.client() as registry:
        for n in range(23):
            push_image(registry, f"{project}/app", f"t{n:02d}", layer_size=64)
        push_image(registry, f"{project}/app")  # untagged and listed by no index: still listed
    base = f"/projects/{project}/repositories/app/artifacts"
    with inprocess.api() as api:
        everything = api.get(base, params={"q": "base=*", "page_size": 100})
        assert everything.status_code == 200 and everything.headers["x-total-count"] == "24"
        expected = [a["digest"] for a in everything.json()]
        paged: list[str] = []
        for page in (1, 2, 3):
            answer = api.get(base, params={"page": page, "page_size": 10})
            assert answer.status_code == 200 and answer.headers["x-total-count"] == "24"
            paged += [a["digest"] for a in answer.json()]
        assert paged == expected
        first = api.get(base, params={"page_size": 1}).json()[0]
        assert [t["name"] for t in first["tags"] or []] == [] and first["digest"] == expected[0]
        assert api.get(base, params={"page": 9, "page_size": 10}).json() == []


def test_project_pages_match_the_filtered_listing(inprocess: InProcessMoorage) -> None:
    for n in range(12):
        inprocess.project(f"paged-{n:02d}", public=n % 3 == 0)
    with inprocess.api() as api:
        filtered = api.get("/projects", params={"q": "name=~paged-", "page_size": 100}).json()
        paged = []
        for page in (1, 2):
            answer = api.get("/projects", params={"name": "paged-", "page": page, "page_size": 7})
            assert answer.headers["x-total-count"] == str(len(filtered))
            paged += answer.json()
        assert _names(paged) == _names(filtered)
        public = api.get("/projects", params={"name": "paged-", "public": "true"}).json()
        assert _names(public) == [p["name"] for p in filtered if p["metadata"]["public"] == "true"]
