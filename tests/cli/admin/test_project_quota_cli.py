"""An administrator sets and changes a project's storage limit from the command line and sees it in Harbor's
quota API."""

from __future__ import annotations

from tests.api.harbor import api
from tests.cli.admin.conftest import Cli
from tests.support.moorage import MoorageServer

GiB = 1024 ** 3


def quota(server: MoorageServer, project: str) -> dict:
    with api(server) as admin:
        summary = admin.get(f"/projects/{project}/summary")
        assert summary.status_code == 200, summary.text
        return summary.json()["quota"]  # type: ignore[no-any-return]


def test_storage_limits_set_on_create_and_update_reach_the_quota(cli: Cli, api_server: MoorageServer,
                                                                 unique: str) -> None:
    name = f"limited-{unique}"
    cli.run("project", "create", name, "--storage-limit", "10GiB")
    assert quota(api_server, name) == {"hard": {"storage": 10 * GiB}, "used": {"storage": 0}}
    cli.run("project", "update", name, "--storage-limit", "500MiB")
    assert quota(api_server, name)["hard"] == {"storage": 500 * 1024 ** 2}
    cli.run("project", "update", name, "--storage-limit", "-1")
    assert quota(api_server, name)["hard"] == {"storage": -1}
    cli.run("project", "delete", name, "--yes")
