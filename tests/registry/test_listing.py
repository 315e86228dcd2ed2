"""Tags list and catalog: lexical order and pagination with n, last and Link."""

from __future__ import annotations

import json

import httpx

from tests.registry.conftest import OCI_MANIFEST, assert_error, push_image
from tests.support.moorage import MoorageServer


def follow(client: httpx.Client, url: str, key: str) -> tuple[list[str], int]:
    """Walk the Link headers like a client would; returns all items and the number of pages."""
    items: list[str] = []
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.text
        items += response.json()[key]
        pages += 1
        link = response.headers.get("Link")
        url = link[1:link.index(">")] if link else ""
        if link:
            assert link.endswith('rel="next"')
    return items, pages


def test_tags_are_sorted_and_paginated(client: httpx.Client, repo: str) -> None:
    _, body = push_image(client, repo, "v1")
    names = ["b", "a", "c10", "c2", "latest", "v1"]
    for name in names:
        client.put(f"/v2/{repo}/manifests/{name}", content=body, headers={"Content-Type": OCI_MANIFEST})

    whole = client.get(f"/v2/{repo}/tags/list").json()
    assert whole == {"name": repo, "tags": sorted(set(names))}

    page = client.get(f"/v2/{repo}/tags/list", params={"n": 2})
    assert page.json()["tags"] == ["a", "b"]
    assert page.headers["Link"] == f'</v2/{repo}/tags/list?n=2&last=b>; rel="next"'

    walked, pages = follow(client, f"/v2/{repo}/tags/list?n=2", "tags")
    assert walked == sorted(set(names))
    assert pages == 4  # three full pages and the empty one that ends the walk

    after = client.get(f"/v2/{repo}/tags/list", params={"last": "c2"}).json()["tags"]
    assert after == ["latest", "v1"]

    empty = client.get(f"/v2/{repo}/tags/list", params={"n": 0})
    assert empty.json()["tags"] == [] and "Link" not in empty.headers


def test_tags_of_a_missing_repository(client: httpx.Client, repo: str) -> None:
    assert_error(client.get(f"/v2/{repo}/tags/list"), 404, "NAME_UNKNOWN")
    assert_error(client.get(f"/v2/{repo}/tags/list", params={"n": "x"}), 400, "PAGINATION_NUMBER_INVALID")


def test_catalog_lists_repositories_in_order_with_pagination(client: httpx.Client, moorage: MoorageServer) -> None:
    project = moorage.project("catalog")
    created = [f"{project}/zeta", f"{project}/alpha", f"{project}/mid/nested"]
    for name in created:
        push_image(client, name, "v1")
    everything, _ = follow(client, "/v2/_catalog?n=3", "repositories")
    assert everything == sorted(everything)
    assert [r for r in everything if r.startswith(f"{project}/")] == sorted(created)
    first = client.get("/v2/_catalog", params={"n": 1})
    assert len(first.json()["repositories"]) == 1
    assert json.loads(first.text)["repositories"][0] == everything[0]


def test_page_size_of_thousands_of_digits_means_as_many_as_there_are(client: httpx.Client, repo: str) -> None:
    """Found by the fuzzer: int() of a 5,000-digit n tripped Python's conversion limit (a 500)."""
    push_image(client, repo, "v1")
    for n in ("9" * 5000, "0" * 5000 + "1"):
        response = client.get(f"/v2/{repo}/tags/list", params={"n": n})
        assert response.status_code == 200 and response.json()["tags"] == ["v1"], response.text[:200]
        assert client.get("/v2/_catalog", params={"n": n}).status_code == 200
    for n in ("-1", "+1", " 1", "1.0", "\u0663", "\uff11"):
        assert_error(client.get(f"/v2/{repo}/tags/list", params={"n": n}), 400, "PAGINATION_NUMBER_INVALID")


def test_last_holding_nul_pages_on_from_before_it(client: httpx.Client, repo: str) -> None:
    """Found by the fuzzer: PostgreSQL refuses text holding NUL outright, so ``last=%00`` was a 500 there."""
    _, body = push_image(client, repo, "a")
    for tag in ("b", "b1", "c"):
        client.put(f"/v2/{repo}/manifests/{tag}", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert client.get(f"/v2/{repo}/tags/list", params={"last": "b\x00x"}).json()["tags"] == ["b1", "c"]
    assert client.get(f"/v2/{repo}/tags/list", params={"last": "\x00"}).json()["tags"] == ["a", "b", "b1", "c"]
    assert client.get("/v2/_catalog", params={"last": f"{repo}\x00", "n": 1}).status_code == 200
