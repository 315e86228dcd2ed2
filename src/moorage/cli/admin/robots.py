"""``moorage robot list|create|get|delete|refresh|disable|enable``: Harbor v2 robot accounts.

A robot's full name carries the server's prefix (``robot$`` by default): ``robot$test-1+ci`` for a
project robot, ``robot$ci`` for a system robot. That ``$`` is the classic trap (harbor#9553): the name
is always printed whole, on its own line, with a reminder to single-quote it in shells.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from moorage.cli.admin.common import (
    CaFileOpt,
    InsecureOpt,
    JsonOpt,
    PasswordStdinOpt,
    ServerOpt,
    UsernameOpt,
    confirm,
    handle_errors,
    open_client,
    print_fields,
    print_json,
    print_table,
)
from moorage.client.harbor import HarborAPIError, HarborClient

app = typer.Typer(help="Robot accounts: machine credentials (pull-only, expiring) for CI and Kubernetes.",
                  no_args_is_help=True)

RobotArg = Annotated[str, typer.Argument(
    help="Robot id, or its full name as listed (quote it: 'robot$test-1+ci').")]
ProjectOpt = Annotated[str | None, typer.Option("--project", "-p", help="Look the robot up among this project's.")]


def parse_permission(value: str) -> dict[str, str]:
    """``repository:pull`` -> Harbor's Access ``{"resource": "repository", "action": "pull"}``."""
    resource, sep, action = value.partition(":")
    if not sep or not resource.strip() or not action.strip():
        raise typer.BadParameter(f"{value!r} is not RESOURCE:ACTION (e.g. repository:pull, repository:push, "
                                 "artifact:delete, tag:create)")
    return {"resource": resource.strip(), "action": action.strip()}


def expires(robot: dict[str, Any]) -> str:
    value = robot.get("expires_at")
    if value is None:
        return ""
    if not isinstance(value, int) or value < 0:
        return "never"
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe_permissions(robot: dict[str, Any]) -> str:
    parts = []
    for permission in robot.get("permissions") or []:
        actions = ",".join(f"{a.get('resource')}:{a.get('action')}" for a in permission.get("access") or [])
        parts.append(f"{permission.get('kind')}/{permission.get('namespace')}: {actions}")
    return "; ".join(parts)


def _names_match(listed: str, wanted: str) -> bool:
    """The full name, or the name without the server's configurable prefix (``test-1+ci``)."""
    if listed == wanted:
        return True
    _, dollar, bare = listed.partition("$")
    return bool(dollar) and bare == wanted


def find_robot(client: HarborClient, ref: str, project: str | None = None) -> dict[str, Any]:
    if ref.isdigit():
        return client.get_robot(int(ref))
    if project:
        robots = client.list_project_robots(int(client.get_project(project)["project_id"]))
    else:
        robots = client.list_robots()
    matches = [r for r in robots if _names_match(str(r.get("name", "")), ref)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        ids = ", ".join(str(r.get("id")) for r in matches)
        raise HarborAPIError(409, "CONFLICT", f"several robots are named {ref} (ids {ids}); use the id")
    hint = " (is the $ quoted? in shells write 'robot$project+name')" if "$" not in ref and "+" in ref else ""
    raise HarborAPIError(404, "NOT_FOUND", f"robot {ref} not found{hint}")


def _print_secret_once(name: str, secret: str, what: str, server: str) -> None:
    typer.echo(f"{what}. Its secret is shown ONLY NOW; store it (it cannot be read back later):")
    typer.echo(f"  name:   {name}")
    typer.echo(f"  secret: {secret}")
    if "$" in name:
        registry = urlsplit(server).netloc or "REGISTRY"
        typer.echo(f"The '$' belongs to the name: in a shell, single-quote it, e.g. "
                   f"docker login {registry} -u '{name}' --password-stdin")


@app.command("list")
@handle_errors
def list_(
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this project's robots.")] = None,
    system: Annotated[bool, typer.Option("--system", help="Only system-level robots.")] = False,
    as_json: JsonOpt = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """List robot accounts."""
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        if project:
            robots = client.list_project_robots(int(client.get_project(project)["project_id"]))
        elif system:
            robots = client.list_robots(q="Level=system")
        else:
            robots = client.list_robots()
    if as_json:
        print_json(robots)
        return
    print_table(["ID", "NAME", "LEVEL", "ENABLED", "EXPIRES", "PERMISSIONS", "DESCRIPTION"],
                ([r.get("id"), r.get("name"), r.get("level"), not r.get("disable"), expires(r),
                  describe_permissions(r), r.get("description")] for r in robots),
                empty="no robot accounts")


@app.command()
@handle_errors
def create(
    name: Annotated[str, typer.Option("--name", "-n", help="Short name; the server adds prefix and project "
                                      "(robot$PROJECT+NAME).")],
    project: Annotated[list[str] | None, typer.Option(
        "--project", "-p", help="Project the permissions apply to. One project makes a project robot; with "
        "--system, repeat it (or give '*' for every project).")] = None,
    system: Annotated[bool, typer.Option("--system", help="Create a system-level robot.")] = False,
    permission: Annotated[list[str] | None, typer.Option(
        "--permission", help="RESOURCE:ACTION on the project(s), repeatable (default: repository:pull).")] = None,
    system_permission: Annotated[list[str] | None, typer.Option(
        "--system-permission", help="RESOURCE:ACTION at system level (system robots only), repeatable.")] = None,
    duration: Annotated[int, typer.Option("--duration", help="Lifetime in days; -1 = never expires.")] = 30,
    description: Annotated[str | None, typer.Option("--description", help="Free text.")] = None,
    as_json: JsonOpt = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Create a robot account and print its secret once."""
    projects = list(project or [])
    if duration == 0 or duration < -1:
        raise typer.BadParameter("--duration is a positive number of days, or -1 for never")
    if not system and len(projects) != 1:
        raise typer.BadParameter("a project robot needs exactly one --project (or use --system)")
    if system_permission and not system:
        raise typer.BadParameter("--system-permission needs --system")
    access = [parse_permission(p) for p in (permission or ["repository:pull"])]
    permissions = [{"kind": "project", "namespace": p, "access": access} for p in (projects or ["*"])]
    if system_permission:
        permissions.append({"kind": "system", "namespace": "/",
                            "access": [parse_permission(p) for p in system_permission]})
    body = {"name": name, "description": description or "", "level": "system" if system else "project",
            "duration": duration, "disable": False, "permissions": permissions}
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        created = client.create_robot(body)
        server_url = client.server
    if as_json:
        print_json(created)
        return
    full = str(created.get("name", name))
    _print_secret_once(full, str(created.get("secret", "")),
                       f"Created robot account {full} (id {created.get('id')}, expires {expires(created)})", server_url)


@app.command()
@handle_errors
def get(
    robot: RobotArg,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Show one robot account."""
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        found = find_robot(client, robot, project)
        if found.get("id") is not None and "permissions" not in found:
            found = client.get_robot(int(found["id"]))
    if as_json:
        print_json(found)
        return
    print_fields([("Name", found.get("name")), ("ID", found.get("id")), ("Level", found.get("level")),
                  ("Enabled", not found.get("disable")), ("Expires", expires(found)),
                  ("Duration (days)", found.get("duration")), ("Permissions", describe_permissions(found)),
                  ("Description", found.get("description")), ("Created", found.get("creation_time"))])


@app.command()
@handle_errors
def delete(
    robot: RobotArg,
    project: ProjectOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Delete a robot account (its credentials stop working at once)."""
    confirm(f"Delete robot {robot}?", yes)
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        found = find_robot(client, robot, project)
        client.delete_robot(int(found["id"]))
    typer.echo(f"Deleted robot {found.get('name', robot)}")


@app.command()
@handle_errors
def refresh(
    robot: RobotArg,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Replace a robot's secret with a new generated one, printed once; the old one stops working."""
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        found = find_robot(client, robot, project)
        answer = client.refresh_robot_secret(int(found["id"]))
        server_url = client.server
    full = str(found.get("name", robot))
    if as_json:
        print_json({"id": found.get("id"), "name": full, **answer})
        return
    _print_secret_once(full, str(answer.get("secret", "")), f"New secret for robot account {full}", server_url)


def _set_disabled(robot: str, project: str | None, disabled: bool, connection: tuple[Any, ...]) -> None:
    with open_client(*connection) as client:
        found = find_robot(client, robot, project)
        current = client.get_robot(int(found["id"]))
        # Harbor's PUT takes the whole robot and refuses a changed name or level: send back what GET gave.
        body = {k: v for k, v in current.items() if k != "secret"}
        body["disable"] = disabled
        client.update_robot(int(found["id"]), body)
    typer.echo(f"Robot {current.get('name', robot)} {'disabled' if disabled else 'enabled'}")


@app.command()
@handle_errors
def disable(
    robot: RobotArg,
    project: ProjectOpt = None,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Disable a robot account (it can no longer log in) without deleting it."""
    _set_disabled(robot, project, True, (server, username, password_stdin, insecure, ca_file))


@app.command()
@handle_errors
def enable(
    robot: RobotArg,
    project: ProjectOpt = None,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Enable a disabled robot account again."""
    _set_disabled(robot, project, False, (server, username, password_stdin, insecure, ca_file))


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="robot")
