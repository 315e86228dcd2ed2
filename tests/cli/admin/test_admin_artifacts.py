"""What a project holds, seen through the CLI after a real ``skopeo copy`` push: repositories (also nested
ones, whose names Harbor wants double-encoded), artifacts, tags, the audit log, and project deletion."""

from __future__ import annotations

from pathlib import Path

from tests.cli.admin.conftest import Cli
from tests.support.clients import Skopeo
from tests.support.images import ImageInfo, build_image
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer


def skopeo_push(server: MoorageServer, image: ImageInfo, target: str) -> None:
    """A real client pushes as the admin (through moorage's token service)."""
    Skopeo(image.layout.parent / "skopeo").push(image, f"{server.host}/{target}", creds=f"admin:{ADMIN_PASSWORD}")


def test_admin_looks_at_what_a_project_holds(cli: Cli, api_server: MoorageServer, tmp_path: Path,
                                             unique: str) -> None:
    project = f"apps-{unique}"
    cli.run("project", "create", project)
    image = build_image(tmp_path / "layout", tag="v1")
    skopeo_push(api_server, image, f"{project}/web:v1")
    nested = build_image(tmp_path / "nested", tag="v2")
    skopeo_push(api_server, nested, f"{project}/team/api:v2")

    repositories = {r["name"]: r for r in cli.json("repo", "list", project)}
    assert set(repositories) == {f"{project}/web", f"{project}/team/api"}
    assert repositories[f"{project}/web"]["artifact_count"] == 1
    assert f"{project}/team/api" in cli.run("repo", "list", project).stdout

    artifacts = cli.json("artifact", "list", f"{project}/web")
    assert [a["digest"] for a in artifacts] == [image.digest]
    assert [t["name"] for t in artifacts[0]["tags"]] == ["v1"]
    # A repository name with a slash travels double-encoded (team%252Fapi) and still resolves.
    nested_artifacts = cli.json("artifact", "list", f"{project}/team/api")
    assert [a["digest"] for a in nested_artifacts] == [nested.digest]
    table = cli.run("artifact", "list", f"{project}/web").stdout
    assert image.digest[:19] in table and "v1" in table

    # Tags: add one by tag and one by digest, list them, delete one.
    cli.run("tag", "add", f"{project}/web:v1", "stable")
    cli.run("tag", "add", f"{project}/web@{image.digest}", "prod")
    assert {t["name"] for t in cli.json("tag", "list", f"{project}/web")} == {"v1", "stable", "prod"}
    of_artifact = cli.json("tag", "list", f"{project}/web:stable")
    assert {t["name"] for t in of_artifact} == {"v1", "stable", "prod"}
    assert all(t["digest"] == image.digest for t in of_artifact)
    cli.run("tag", "add", f"{project}/team/api:v2", "latest")
    assert {t["name"] for t in cli.json("tag", "list", f"{project}/team/api")} == {"v2", "latest"}

    cli.run("tag", "delete", f"{project}/web:prod")
    assert {t["name"] for t in cli.json("tag", "list", f"{project}/web")} == {"v1", "stable"}
    taken = cli.run("tag", "add", f"{project}/web:v1", "stable", ok=False)
    assert "409" in taken.stderr
    missing = cli.run("tag", "delete", f"{project}/web:nope", ok=False)
    assert "404" in missing.stderr

    # The project cannot be deleted while it holds repositories: the server's reason is shown.
    refused = cli.run("project", "delete", project, "--yes", ok=False)
    assert "412" in refused.stderr or "PRECONDITION" in refused.stderr, refused
    cli.run("repo", "delete", f"{project}/web", "--yes")
    cli.run("repo", "delete", f"{project}/team/api", "--yes")
    assert cli.json("repo", "list", project) == []
    cli.run("project", "delete", project, "--yes")


def test_the_audit_log_records_pushes_and_deletes(cli: Cli, api_server: MoorageServer, tmp_path: Path,
                                                 unique: str) -> None:
    project = f"audited-{unique}"
    cli.run("project", "create", project)
    image = build_image(tmp_path / "layout", tag="v1")
    skopeo_push(api_server, image, f"{project}/app:v1")
    cli.run("tag", "add", f"{project}/app:v1", "v1-extra")
    cli.run("tag", "delete", f"{project}/app:v1-extra")

    entries = cli.json("audit", "list", "--project", project)
    assert entries, "a push must leave an audit entry"
    for entry in entries:
        assert {"id", "username", "resource", "resource_type", "operation", "op_time"} <= set(entry)
        # The project's own entries (its creation) name the project; the rest, what is in it.
        assert entry["resource"] == project or entry["resource"].startswith(f"{project}/"), entry
    # As in Harbor's audit log, a push is recorded as "create".
    assert any(e["operation"] == "create" and e["username"] == "admin" for e in entries), entries
    assert any(e["operation"] == "delete" for e in entries), entries
    times = [e["op_time"] for e in entries]
    assert times == sorted(times, reverse=True), "newest first"

    system = cli.json("audit", "list", "--limit", "500")
    assert {e["id"] for e in entries} <= {e["id"] for e in system}
    only_deletes = cli.json("audit", "list", "--project", project, "--operation", "delete")
    assert only_deletes and all(e["operation"] == "delete" for e in only_deletes)
    assert len(cli.json("audit", "list", "--limit", "1")) == 1
    assert project in cli.run("audit", "list", "--project", project).stdout
