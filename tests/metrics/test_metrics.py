"""An operator scrapes /metrics with Prometheus: the text parses with Prometheus' own parser, the counters
move as images are pushed and pulled (whichever of the workers served them), usage per project shows under
Harbor's exporter names, a token can guard the endpoint, and a scrape still answers while the database is
down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.harbor import api, make_project
from tests.e2e.test_storage_reclaim import push
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.postgres import Postgres
from tests.support.procs import wait_until

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
QUICK_USAGE = {"MOORAGE_METRICS_USAGE_REFRESH_SECONDS": "0.5"}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: MoorageServer, token: str | None = None) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.get(f"{server.url}/metrics", headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(r.text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MoorageServer]:
    server = MoorageServer(tmp_path / "data", workers=2, env=QUICK_USAGE)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_counters_move_as_images_are_pushed_and_pulled(server: MoorageServer) -> None:
    with api(server) as admin:
        project = make_project(admin)
    manifest_route = "/v2/{name:repository}/manifests/{reference}"
    before = scrape(server)
    with server.client() as registry:
        push(registry, f"{project}/app", "v1", [b"layer bytes" * 100])
        pulled = registry.get(f"/v2/{project}/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert pulled.status_code == 200
        assert registry.post(f"/v2/{project}/app/blobs/uploads/").status_code == 202
        token = registry.get("/service/token", params={"service": "moorage-registry",
                                                       "scope": f"repository:{project}/app:pull"})
        assert token.status_code == 200
    assert httpx.get(f"{server.url}/v2/", auth=("admin", "wrong password")).status_code == 401
    # Each worker adds its requests to the metrics once a second.
    after: Samples = {}

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    def counted() -> bool:
        after.update(scrape(server))
        return all(moved(name) >= 1 for name in ("moorage_registry_pushes_total", "moorage_registry_pulls_total",
                                                 "moorage_registry_upload_sessions_total",
                                                 "moorage_token_issued_total", "moorage_auth_failures_total"))
    wait_until(counted, timeout=15, what="the requests in the counters")
    assert moved("moorage_registry_pushes_total") == 1
    assert moved("moorage_registry_pulls_total") == 1
    assert moved("moorage_registry_upload_sessions_total") == 1
    assert moved("moorage_token_issued_total") == 1
    assert moved("moorage_auth_failures_total") == 1
    assert moved("moorage_http_requests_total", route=manifest_route, method="GET", status="200") == 1
    assert moved("moorage_http_requests_total", route=manifest_route, method="PUT", status="201") == 1
    assert moved("moorage_http_request_duration_seconds_count", route=manifest_route, method="GET") == 1
    assert moved("moorage_http_response_bytes_total", route=manifest_route) == len(pulled.content)
    assert moved("moorage_http_request_bytes_total", route=manifest_route) > 0
    assert value(after, "moorage_http_requests_in_flight") >= 1, "the scrape itself is in flight"
    assert not any(dict(labels).get("route", "").startswith(f"/v2/{project}") for _, labels in after), \
        "routes are templates, never a repository's path"

    def usage() -> Samples | None:
        samples = scrape(server)
        return samples if value(samples, "harbor_project_artifact_total", project_name=project) == 1 else None
    current = wait_until(usage, timeout=30, what="the project's usage in the metrics")
    assert isinstance(current, dict)
    assert value(current, "harbor_project_repo_total", project_name=project) == 1
    assert value(current, "harbor_artifact_pulled", project_name=project) >= 0
    assert value(current, "moorage_storage_blobs") >= 2 and value(current, "moorage_storage_blob_bytes") >= 1100
    assert ("moorage_webhook_backlog", (("state", "Outbox"),)) in current


def test_a_token_guards_the_metrics_when_set(tmp_path: Path) -> None:
    server = MoorageServer(tmp_path / "data", workers=1, env={"MOORAGE_METRICS_TOKEN": "scrape-me"})
    server.start()
    try:
        bare = httpx.get(f"{server.url}/metrics")
        assert bare.status_code == 401 and bare.headers["www-authenticate"].startswith("Bearer")
        assert "scrape-me" not in bare.text
        assert httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer guess"}).status_code == 401
        assert httpx.get(f"{server.url}/metrics", auth=("admin", ADMIN_PASSWORD)).status_code == 401
        assert value(scrape(server, "scrape-me"), "moorage_registry_pushes_total") == 0
    finally:
        server.stop()


def test_a_scrape_answers_while_the_database_is_down(tmp_path: Path) -> None:
    postgres = Postgres(tmp_path).start()
    try:
        url = postgres.new_database("metrics_down")
        server = MoorageServer(tmp_path / "data", workers=1, env={**QUICK_USAGE, "MOORAGE_DATABASE_URL": url})
        server.start()
        try:
            with api(server) as admin:
                project = make_project(admin)
            with server.client() as registry:
                push(registry, f"{project}/app", "v1", [b"x"])
            wait_until(lambda: value(scrape(server), "harbor_project_artifact_total", project_name=project) == 1
                       and value(scrape(server), "moorage_registry_pushes_total") == 1, timeout=30, what="usage values")
            postgres.shut_down()
            down = scrape(server)
            assert value(down, "moorage_registry_pushes_total") == 1, "the counters it has"
            assert value(down, "harbor_project_artifact_total", project_name=project) == 1, "the last usage read"
            again = scrape(server)  # a refresh was tried meanwhile and failed: still an answer
            assert value(again, "moorage_registry_pushes_total") == 1
            postgres.start()
        finally:
            server.stop()
    finally:
        postgres.stop()
