"""``moorage member list|add|set-role|remove PROJECT``: users' roles on a project.

Roles by Harbor's names or ids: projectAdmin 1, developer 2, guest 3, maintainer 4, limitedGuest 5.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from moorage.cli.admin.common import (
    ROLES,
    CaFileOpt,
    InsecureOpt,
    JsonOpt,
    PasswordStdinOpt,
    ServerOpt,
    UsernameOpt,
    handle_errors,
    open_client,
    print_json,
    print_table,
    role_id,
    role_name,
)
from moorage.client.harbor import HarborAPIError, HarborClient

_ROLE_HELP = "Role: " + ", ".join(f"{name} ({number})" for number, name in ROLES.items()) + "."

app = typer.Typer(help="Project members and their roles. " + _ROLE_HELP, no_args_is_help=True)

ProjectArg = Annotated[str, typer.Argument(help="Project name.")]
MemberArg = Annotated[str, typer.Argument(help="Username of the member.")]
RoleArg = Annotated[str, typer.Argument(help=_ROLE_HELP)]


def _find_member(client: HarborClient, project: str, name: str) -> dict[str, Any]:
    for member in client.list_members(project, entityname=name):
        if member.get("entity_name") == name and member.get("entity_type", "u") == "u":
            return member
    raise HarborAPIError(404, "NOT_FOUND", f"{name} is not a member of project {project}")


@app.command("list")
@handle_errors
def list_(
    project: ProjectArg,
    as_json: JsonOpt = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """List the members of a project."""
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        members = client.list_members(project)
    if as_json:
        print_json(members)
        return
    print_table(["ID", "NAME", "TYPE", "ROLE", "ROLE ID"],
                ([m.get("id"), m.get("entity_name"), "group" if m.get("entity_type") == "g" else "user",
                  role_name(m), m.get("role_id")] for m in members),
                empty=f"project {project} has no members")


@app.command()
@handle_errors
def add(
    project: ProjectArg,
    member: MemberArg,
    role: Annotated[str, typer.Option("--role", "-r", help=_ROLE_HELP)],
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Give a user a role on a project."""
    rid = role_id(role)
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        member_id = client.add_member(project, rid, username=member)
    suffix = f" (member id {member_id})" if member_id is not None else ""
    typer.echo(f"Added {member} to project {project} as {ROLES[rid]}{suffix}")


@app.command("set-role")
@handle_errors
def set_role(
    project: ProjectArg,
    member: MemberArg,
    role: RoleArg,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Change a member's role."""
    rid = role_id(role)
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        found = _find_member(client, project, member)
        client.update_member(project, int(found["id"]), rid)
    typer.echo(f"{member} is now {ROLES[rid]} on project {project}")


@app.command()
@handle_errors
def remove(
    project: ProjectArg,
    member: MemberArg,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Take a user's role on a project away."""
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        found = _find_member(client, project, member)
        client.delete_member(project, int(found["id"]))
    typer.echo(f"Removed {member} from project {project}")


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="member")
