"""An operator scales out: two replicas behind a load balancer, sharing PostgreSQL and one blob volume,
started at the same moment the way a Deployment starts its pods. A client's requests land on either
replica, and nothing it does may depend on which one answered."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.harbor import api, make_project, make_robot
from tests.registry.conftest import OCI_MANIFEST, assert_error, digest_of, image_manifest, push_blob
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.postgres import Postgres

SERVICE = "moorage-registry"


@pytest.fixture
def replicas(tmp_path: Path, postgres: Postgres) -> Iterator[tuple[MoorageServer, MoorageServer]]:
    url = postgres.new_database(f"replicas_{tmp_path.name.replace('-', '_')}")
    shared = tmp_path / "volume"
    a, b = (MoorageServer(shared, env={"MOORAGE_DATABASE_URL": url}, log_path=tmp_path / f"{name}.log")
            for name in ("a", "b"))
    try:
        # Both at once: the first start of an empty database (schema, admin account, signing key) races.
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(MoorageServer.start, (a, b)))
        yield a, b
    finally:
        for server in (a, b):
            server.stop()


def bearer(server: MoorageServer, scope: str, auth: tuple[str, str]) -> dict[str, str]:
    r = httpx.get(f"{server.url}/service/token", params={"service": SERVICE, "scope": scope}, auth=auth)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_two_replicas_serve_one_registry(replicas: tuple[MoorageServer, MoorageServer]) -> None:
    a, b = replicas
    with api(a) as admin_a:
        project = make_project(admin_a)
    repo = f"{project}/app"

    # A token one replica issued is honoured by the other: the signing key lives in the database.
    token = bearer(a, f"repository:{repo}:pull,push", ("admin", ADMIN_PASSWORD))
    with httpx.Client(base_url=a.url, headers=token) as on_a, httpx.Client(base_url=b.url, headers=token) as on_b:
        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        push_blob(on_b, repo, config)

        # A chunked upload whose every request lands on the other replica.
        layer = os.urandom(3 * 1024 * 1024 + 17)
        started = on_a.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["location"]
        cut = [0, 1024 * 1024, 2 * 1024 * 1024, len(layer)]
        for i, client in enumerate((on_b, on_a, on_b)):
            chunk = layer[cut[i]:cut[i + 1]]
            r = client.patch(location, content=chunk, headers={
                "Content-Range": f"{cut[i]}-{cut[i + 1] - 1}", "Content-Type": "application/octet-stream"})
            assert r.status_code == 202, r.text
            assert r.headers["range"] == f"0-{cut[i + 1] - 1}"
            location = r.headers["location"]
        done = on_a.put(location, params={"digest": digest_of(layer)})
        assert done.status_code == 201, done.text
        assert hashlib.sha256(on_b.get(f"/v2/{repo}/blobs/{digest_of(layer)}").content).digest() == \
            hashlib.sha256(layer).digest()

        # A tag pushed on one replica is seen, and its deletion too, on the other at once.
        manifest = json.dumps(image_manifest(config, [layer])).encode()
        r = on_b.put(f"/v2/{repo}/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 201, r.text
        assert on_a.get(f"/v2/{repo}/tags/list").json()["tags"] == ["v1"]
        assert on_a.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST}).content == manifest
    delete = bearer(a, f"repository:{repo}:delete", ("admin", ADMIN_PASSWORD))
    assert httpx.delete(f"{a.url}/v2/{repo}/manifests/{digest_of(manifest)}", headers=delete).status_code == 202
    pull = bearer(b, f"repository:{repo}:pull", ("admin", ADMIN_PASSWORD))
    assert_error(httpx.get(f"{b.url}/v2/{repo}/manifests/v1", headers=pull), 404, "MANIFEST_UNKNOWN")


def test_a_robot_disabled_on_one_replica_is_refused_by_the_other(
        replicas: tuple[MoorageServer, MoorageServer]) -> None:
    a, b = replicas
    with api(a) as admin_a:
        project = make_project(admin_a)
        robot = make_robot(admin_a, project, ["pull"])
    creds = (robot["name"], robot["secret"])
    assert httpx.get(f"{b.url}/v2/", auth=creds).status_code == 200

    with api(a) as admin_a:
        assert admin_a.put(f"/robots/{robot['id']}", json={"disable": True}).status_code == 200
    assert_error(httpx.get(f"{b.url}/v2/", auth=creds), 401, "UNAUTHORIZED")
    assert httpx.get(f"{b.url}/service/token", params={"service": SERVICE}, auth=creds).status_code == 401
