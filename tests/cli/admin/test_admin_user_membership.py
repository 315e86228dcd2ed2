"""``moorage user create NAME --project P --role R``: the seed's user and its role in one command, and
nothing half-made when the project or the role is wrong."""

from __future__ import annotations

from tests.cli.admin.conftest import Cli


def test_user_created_with_its_role_on_the_project(cli: Cli, unique: str) -> None:
    project, user = f"team-{unique}", f"dev-{unique}"
    cli.run("project", "create", project, "--private")
    made = cli.run("user", "create", user, "--password-stdin", "--project", project, "--role", "developer",
                   input="Dev-Passw0rd\n")
    assert f"Created user {user}" in made.stdout and f"Added {user} to project {project} as developer" in made.stdout
    members = {m["entity_name"]: m for m in cli.json("member", "list", project)}
    assert members[user]["role_id"] == 2


def test_a_wrong_project_or_role_creates_no_user(cli: Cli, unique: str) -> None:
    user = f"nobody-{unique}"
    role = cli.run("user", "create", user, "--password-stdin", "--project", "x", "--role", "owner",
                   input="N0body-Passw0rd\n", ok=False)
    assert role.code == 2 and "unknown role" in role.stderr
    alone = cli.run("user", "create", user, "--password-stdin", "--role", "developer", input="N0body-Passw0rd\n",
                    ok=False)
    assert alone.code == 2 and "--project and --role go together" in alone.stderr
    missing = cli.run("user", "create", user, "--password-stdin", "--project", f"ghost-{unique}", "--role", "guest",
                      input="N0body-Passw0rd\n", ok=False)
    assert missing.code == 1 and "not found" in missing.stderr.lower()
    assert user not in {u["username"] for u in cli.json("user", "list")}
