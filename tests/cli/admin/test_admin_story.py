"""The seed's story told through the admin CLI: project test-1, user lidabai, Developer role.

Every step runs ``moorage`` as a real process against a real ``moorage serve`` on loopback; JSON output is
checked field by field against Harbor's API shapes (Project, UserResp, ProjectMemberEntity).
"""

from __future__ import annotations

from tests.cli.admin.conftest import Cli, api_can_authenticate
from tests.support.moorage import MoorageServer

LIDABAI_PASSWORD = "Lidabai-Passw0rd$`not-a-shell`"


def test_admin_gives_lidabai_the_developer_role_on_private_project_test_1(cli: Cli, api_server: MoorageServer) -> None:
    # The admin creates the private project the consuming system will use.
    created = cli.run("project", "create", "test-1", "--private")
    assert "test-1" in created.stdout and "private" in created.stdout

    project = cli.json("project", "get", "test-1")
    assert project["name"] == "test-1"
    assert project["metadata"]["public"] == "false", "Harbor's metadata values are strings"
    assert isinstance(project["project_id"], int)

    listed = {p["name"]: p for p in cli.json("project", "list")}
    assert listed["test-1"]["project_id"] == project["project_id"]
    table = cli.run("project", "list").stdout
    assert "test-1" in table and "private" in table

    # ... creates the user with a password given on stdin (never on the command line) ...
    made = cli.run("user", "create", "lidabai", "--email", "lidabai@example.com", "--password-stdin",
                   input=LIDABAI_PASSWORD + "\n")
    assert "lidabai" in made.stdout
    assert LIDABAI_PASSWORD not in made.stdout + made.stderr, "a password read from stdin is never echoed"
    assert api_can_authenticate(api_server, "lidabai", LIDABAI_PASSWORD)

    # ... adds lidabai to test-1 as Developer, and lists the members as JSON.
    cli.run("member", "add", "test-1", "lidabai", "--role", "developer")
    members = {m["entity_name"]: m for m in cli.json("member", "list", "test-1")}
    assert members["lidabai"]["role_id"] == 2
    assert members["lidabai"]["entity_type"] == "u"
    assert members["lidabai"]["project_id"] == project["project_id"]
    assert "lidabai" in cli.run("member", "list", "test-1").stdout

    # Harbor's numeric role ids work too: 3 is Guest.
    cli.run("member", "set-role", "test-1", "lidabai", "3")
    members = {m["entity_name"]: m for m in cli.json("member", "list", "test-1")}
    assert members["lidabai"]["role_id"] == 3
    cli.run("member", "set-role", "test-1", "lidabai", "developer")
    assert {m["entity_name"]: m["role_id"] for m in cli.json("member", "list", "test-1")}["lidabai"] == 2

    # A second project with the same name is refused with the server's CONFLICT message.
    again = cli.run("project", "create", "test-1", ok=False)
    assert "CONFLICT" in again.stderr and "409" in again.stderr

    # Adding the same member twice is a conflict too, not a silent duplicate.
    twice = cli.run("member", "add", "test-1", "lidabai", "--role", "guest", ok=False)
    assert "409" in twice.stderr

    # Removing the member leaves the project without lidabai.
    cli.run("member", "remove", "test-1", "lidabai")
    assert "lidabai" not in {m["entity_name"] for m in cli.json("member", "list", "test-1")}
    gone = cli.run("member", "remove", "test-1", "lidabai", ok=False)
    assert "not a member" in gone.stderr


def test_public_projects_are_public_and_can_be_flipped(cli: Cli, unique: str) -> None:
    name = f"library-{unique}"
    cli.run("project", "create", name, "--public", "--storage-limit", "10GiB")
    assert cli.json("project", "get", name)["metadata"]["public"] == "true"
    assert name in {p["name"] for p in cli.json("project", "list", "--public")}
    assert name not in {p["name"] for p in cli.json("project", "list", "--private")}

    cli.run("project", "update", name, "--private")
    assert cli.json("project", "get", name)["metadata"]["public"] == "false"

    nothing = cli.run("project", "update", name, ok=False)
    assert "nothing to change" in nothing.stderr

    cli.run("project", "delete", name, "--yes")
    missing = cli.run("project", "get", name, ok=False)
    assert "404" in missing.stderr


def test_project_names_follow_harbors_rules(cli: Cli) -> None:
    bad = cli.run("project", "create", "Not_A-Valid/Name", ok=False)
    assert "400" in bad.stderr or "BAD_REQUEST" in bad.stderr, bad


def test_delete_without_a_terminal_needs_yes(cli: Cli, unique: str) -> None:
    name = f"keep-{unique}"
    cli.run("project", "create", name)
    refused = cli.run("project", "delete", name, ok=False)
    assert "--yes" in refused.stderr
    assert cli.json("project", "get", name)["name"] == name
    cli.run("project", "delete", name, "-y")


def test_admin_manages_users_and_their_passwords(cli: Cli, api_server: MoorageServer, unique: str) -> None:
    name = f"ops-{unique}"

    # Without --password-stdin a strong password is generated and printed exactly once.
    made = cli.run("user", "create", name, "--realname", "Ops Person")
    lines = made.stdout.strip().splitlines()
    generated = lines[-1].strip()
    assert "shown once" in made.stdout
    assert len(generated) >= 16 and any(c.isupper() for c in generated) and any(c.isdigit() for c in generated)
    assert api_can_authenticate(api_server, name, generated)

    user = cli.json("user", "get", name)
    assert user["username"] == name
    assert user["realname"] == "Ops Person"
    assert user["sysadmin_flag"] is False
    assert "password" not in user

    assert name in {u["username"] for u in cli.json("user", "list")}
    assert name in cli.run("user", "list").stdout

    # The admin sets a new password from stdin; the old one stops working.
    cli.run("user", "set-password", name, "--password-stdin", input="N3w-Passw0rd-for-ops\n")
    assert api_can_authenticate(api_server, name, "N3w-Passw0rd-for-ops")
    assert not api_can_authenticate(api_server, name, generated)

    # ... and a password that breaks the server's rules is refused with its message.
    weak = cli.run("user", "set-password", name, "--password-stdin", input="short\n", ok=False)
    assert "400" in weak.stderr

    cli.run("user", "set-admin", name)
    assert cli.json("user", "get", name)["sysadmin_flag"] is True
    cli.run("user", "set-admin", name, "--revoke")
    assert cli.json("user", "get", name)["sysadmin_flag"] is False

    duplicate = cli.run("user", "create", name, "--password-stdin", input="An0ther-Passw0rd\n", ok=False)
    assert "409" in duplicate.stderr

    cli.run("user", "delete", name, "--yes")
    missing = cli.run("user", "get", name, ok=False)
    assert f"user '{name}' not found" in missing.stderr
    assert not api_can_authenticate(api_server, name, "N3w-Passw0rd-for-ops")


def test_roles_by_every_name_harbor_uses(cli: Cli, unique: str) -> None:
    project, user = f"roles-{unique}", f"roleuser-{unique}"
    cli.run("project", "create", project)
    cli.run("user", "create", user, "--password-stdin", input="R0les-Passw0rd\n")
    cli.run("member", "add", project, user, "--role", "limitedGuest")
    expected = {"projectAdmin": 1, "developer": 2, "guest": 3, "maintainer": 4, "limited-guest": 5, "1": 1}
    for role, number in expected.items():
        cli.run("member", "set-role", project, user, role)
        members = {m["entity_name"]: m for m in cli.json("member", "list", project)}
        assert members[user]["role_id"] == number, role
    unknown = cli.run("member", "set-role", project, user, "owner", ok=False)
    assert unknown.code == 2 and "unknown role" in unknown.stderr

    nobody = cli.run("member", "add", project, f"ghost-{unique}", "--role", "guest", ok=False)
    assert nobody.code == 1 and nobody.stderr.startswith("Error:")
