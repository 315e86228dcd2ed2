"""Robot accounts through the CLI: the secret is shown once, the ``$`` name pastes as-is, and the server
really honours what the CLI asked for (checked by logging in with the robot the way docker does)."""

from __future__ import annotations

import re

from tests.cli.admin.conftest import Cli, can_authenticate
from tests.support.moorage import MoorageServer


def _secret(stdout: str) -> str:
    match = re.search(r"^\s*secret:\s*(\S+)\s*$", stdout, re.MULTILINE)
    assert match, stdout
    return match.group(1)


def test_ci_gets_a_pull_only_project_robot(cli: Cli, api_server: MoorageServer, unique: str) -> None:
    project = f"robots-{unique}"
    cli.run("project", "create", project)

    made = cli.run("robot", "create", "--project", project, "--name", "ci", "--permission", "repository:pull",
                   "--duration", "-1", "--description", "pulls for the cluster")
    full = f"robot${project}+ci"
    # The full name sits alone on its line so it can be copied, with the shell-quoting reminder.
    assert re.search(rf"^\s*name:\s*{re.escape(full)}\s*$", made.stdout, re.MULTILINE), made.stdout
    assert f"'{full}'" in made.stdout and "single-quote" in made.stdout
    assert "ONLY NOW" in made.stdout
    secret = _secret(made.stdout)
    assert can_authenticate(api_server, full, secret)

    robots = cli.json("robot", "list", "--project", project)
    assert [r["name"] for r in robots] == [full]
    robot = robots[0]
    assert robot["level"] == "project"
    assert robot["duration"] == -1 and robot["expires_at"] == -1
    assert robot["disable"] is False
    assert robot["permissions"][0]["namespace"] == project
    assert {(a["resource"], a["action"]) for a in robot["permissions"][0]["access"]} == {("repository", "pull")}
    assert "secret" not in robot or not robot["secret"], "a listing never shows the secret"
    assert "never" in cli.run("robot", "list", "--project", project).stdout

    # The full name works as an argument (quoted, as a shell user would), and so does the id.
    by_name = cli.json("robot", "get", full)
    assert by_name["id"] == robot["id"]
    assert cli.json("robot", "get", str(robot["id"]))["name"] == full
    shown = cli.run("robot", "get", full).stdout
    assert full in shown and secret not in shown

    # Refresh: a new secret, printed once; the old one stops working.
    refreshed = cli.run("robot", "refresh", full)
    new_secret = _secret(refreshed.stdout)
    assert new_secret != secret
    assert can_authenticate(api_server, full, new_secret)
    assert not can_authenticate(api_server, full, secret)

    # Disabled robots are refused; enabling brings them back.
    cli.run("robot", "disable", full)
    assert cli.json("robot", "get", full)["disable"] is True
    assert not can_authenticate(api_server, full, new_secret)
    cli.run("robot", "enable", full)
    assert cli.json("robot", "get", full)["disable"] is False
    assert can_authenticate(api_server, full, new_secret)

    cli.run("robot", "delete", full, "--yes")
    assert cli.json("robot", "list", "--project", project) == []
    gone = cli.run("robot", "get", full, ok=False)
    assert "not found" in gone.stderr
    assert not can_authenticate(api_server, full, new_secret)


def test_robot_creation_json_carries_the_secret_for_scripts(cli: Cli, unique: str) -> None:
    project = f"robojson-{unique}"
    cli.run("project", "create", project)
    created = cli.json("robot", "create", "--project", project, "--name", "deploy",
                       "--permission", "repository:pull", "--permission", "repository:push", "--duration", "7")
    assert created["name"] == f"robot${project}+deploy"
    assert created["secret"]
    assert isinstance(created["id"], int)
    assert created["expires_at"] > 0
    robot = cli.json("robot", "get", str(created["id"]))
    actions = {a["action"] for a in robot["permissions"][0]["access"]}
    assert actions == {"pull", "push"}

    refreshed = cli.json("robot", "refresh", str(created["id"]))
    assert refreshed["secret"] and refreshed["secret"] != created["secret"]


def test_system_robot_spans_projects(cli: Cli, api_server: MoorageServer, unique: str) -> None:
    name = f"mirror-{unique}"
    made = cli.json("robot", "create", "--system", "--name", name, "--project", "*",
                    "--permission", "repository:pull", "--duration", "-1")
    assert made["name"] == f"robot${name}"
    assert can_authenticate(api_server, made["name"], made["secret"])
    system = cli.json("robot", "list", "--system")
    assert made["name"] in {r["name"] for r in system}
    assert all(r["level"] == "system" for r in system)
    cli.run("robot", "delete", str(made["id"]), "-y")


def test_robot_mistakes_get_clear_messages(cli: Cli, unique: str) -> None:
    project = f"robobad-{unique}"
    cli.run("project", "create", project)
    no_project = cli.run("robot", "create", "--name", "x", ok=False)
    assert no_project.code == 2 and "--project" in no_project.stderr
    bad_permission = cli.run("robot", "create", "--project", project, "--name", "x", "--permission", "pull",
                             ok=False)
    assert bad_permission.code == 2 and "RESOURCE:ACTION" in bad_permission.stderr
    bad_duration = cli.run("robot", "create", "--project", project, "--name", "x", "--duration", "0", ok=False)
    assert bad_duration.code == 2
    # The server's own validation comes back as its message (unknown project).
    missing = cli.run("robot", "create", "--project", f"nope-{unique}", "--name", "x", ok=False)
    assert missing.code == 1 and missing.stderr.startswith("Error:")
    # A shell that ate the "$": the name no longer matches, and the message says why.
    eaten = cli.run("robot", "get", f"{project}+nothing", ok=False)
    assert "quoted" in eaten.stderr
