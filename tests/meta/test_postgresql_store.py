"""An operator scaling out points moorage at PostgreSQL: the metadata goes there, not to a SQLite file,
and real clients push and pull as before. (The registry protocol and management API suites run on this
server too; these tests prove where it stores, and that the clients' whole flow works on it.)"""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.api.harbor import api
from tests.registry.conftest import OCI_MANIFEST, push_image
from tests.support.clients import Podman, Skopeo
from tests.support.images import IndexInfo, tagged_descriptor
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.postgres import Postgres
from tests.support.procs import wait_until

CREDS = f"admin:{ADMIN_PASSWORD}"


def test_a_database_url_puts_the_metadata_in_postgresql(moorage_on_postgresql: MoorageServer,
                                                       postgres: Postgres) -> None:
    server = moorage_on_postgresql
    repo = server.project("library") + f"/pg-{uuid.uuid4().hex[:8]}"
    with server.client() as client:
        digest, _ = push_image(client, repo, "v1")

    database = server.env["MOORAGE_DATABASE_URL"].rsplit("/", 1)[1]
    with postgres.connect(database) as connection:
        tags = connection.execute(
            "SELECT t.name, m.digest FROM tags t JOIN manifests m ON m.id = t.manifest_id "
            "JOIN repositories r ON r.id = t.repository_id WHERE r.name = %s", (repo,)).fetchall()
    assert tags == [("v1", digest)]
    assert not (server.data_dir / "moorage.db").exists()


def test_skopeo_pushes_an_index_that_podman_and_skopeo_pull_back(
        moorage_on_postgresql: MoorageServer, skopeo: Skopeo, podman: Podman, oci_index: IndexInfo,
        tmp_path: Path) -> None:
    server = moorage_on_postgresql
    reference = f"{server.host}/{server.project('clients')}/multi-{uuid.uuid4().hex[:8]}:v1"
    skopeo.push(oci_index, reference, creds=CREDS)

    podman.pull(reference, creds=CREDS)
    assert podman.digest(reference) == oci_index.digest
    skopeo.copy(f"docker://{reference}", f"oci:{tmp_path / 'back'}:v1", all_images=True, creds=CREDS,
                preserve_digests=True)
    assert tagged_descriptor(tmp_path / "back", "v1")["digest"] == oci_index.digest


def test_a_postgresql_restart_loses_nothing_and_an_outage_answers_503(tmp_path: Path) -> None:
    database = Postgres(tmp_path).start()
    server = MoorageServer(tmp_path / "data", workers=1,
                           env={"MOORAGE_DATABASE_URL": database.new_database("restarts")})
    server.expected_5xx = {503}
    try:
        server.start()
        repo = server.project("library") + "/app"
        with server.client() as client:
            push_image(client, repo, "v1")
            for _ in range(20):  # several connections of each kind now wait in the pools
                assert client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST}).status_code == 200

            database.restart()
            assert client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST}).status_code == 200
            assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == ["v1"]
            push_image(client, repo, "v2")

        # The pulls made just before the restart were still on their way to the audit log: none is lost.
        def pulls_recorded() -> bool:
            with api(server) as admin:
                logs = admin.get("/audit-logs", params={"q": "operation=pull", "page_size": 100}).json()
            return sum(entry["resource"].startswith(repo) for entry in logs) == 21

        wait_until(pulls_recorded, timeout=30, what="all 21 pulls in the audit log")

        # While the database is down, clients are told so (503, retry), not sent an internal error.
        database.shut_down()
        with server.client() as client:
            response = client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
            assert response.status_code == 503 and response.json()["errors"][0]["code"] == "UNAVAILABLE"
            assert "metadata database" in response.json()["errors"][0]["message"]
        with api(server) as admin:
            response = admin.get("/projects")
            assert response.status_code == 503 and response.json()["errors"][0]["code"] == "UNAVAILABLE"
        database.start()
        with server.client() as client:
            assert client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST}).status_code == 200
    finally:
        server.stop()
        database.stop()
