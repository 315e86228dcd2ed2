"""``moorage user list|create|get|delete|set-password|set-admin``.

Users are named by username on the command line; the API addresses them by id, so each command
resolves the name first (``/users/search``, exact match).
"""

from __future__ import annotations

import secrets
import string
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
    confirm,
    fail,
    handle_errors,
    open_client,
    print_fields,
    print_json,
    print_table,
    read_stdin_secret,
    role_id,
)

app = typer.Typer(help="Local users (admin only): create, list, change passwords and admin rights.",
                  no_args_is_help=True)

UserArg = Annotated[str, typer.Argument(help="Username.")]
# On commands that take a new password from stdin, the admin's own password cannot come from stdin too.
NewPasswordStdinOpt = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the new user's password from stdin; without it a strong password is "
    "generated and printed once. (The admin password then comes from MOORAGE_PASSWORD or the login profile.)")]

_ALPHABET = string.ascii_letters + string.digits


def generate_password(length: int = 24) -> str:
    """Letters and digits only (nothing a shell or YAML would mangle), with each of Harbor's required classes."""
    while True:
        value = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        if any(c.islower() for c in value) and any(c.isupper() for c in value) and any(c.isdigit() for c in value):
            return value


def _new_password(password_stdin: bool) -> tuple[str, bool]:
    """(password, generated?)"""
    if password_stdin:
        value = read_stdin_secret()
        if not value:
            raise fail("the password read from stdin is empty")
        return value, False
    return generate_password(), True


def _show_generated(username: str, password: str) -> None:
    typer.echo(f"Generated password for {username} (shown once, store it now):")
    typer.echo(password)


@app.command("list")
@handle_errors
def list_(
    search: Annotated[str | None, typer.Option("--search", help="Only users whose name contains this.")] = None,
    as_json: JsonOpt = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """List users."""
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        users = client.list_users(q=f"username=~{search}" if search else None)
    if as_json:
        print_json(users)
        return
    print_table(["ID", "USERNAME", "ADMIN", "EMAIL", "REAL NAME", "CREATED"],
                ([u.get("user_id"), u.get("username"), bool(u.get("sysadmin_flag")), u.get("email"),
                  u.get("realname"), u.get("creation_time")] for u in users),
                empty="no users")


@app.command()
@handle_errors
def create(
    new_username: Annotated[str, typer.Argument(metavar="USERNAME", help="Name of the new user.")],
    email: Annotated[str | None, typer.Option("--email", help="E-mail address.")] = None,
    realname: Annotated[str | None, typer.Option("--realname", help="Full name (default: the username).")] = None,
    comment: Annotated[str | None, typer.Option("--comment", help="Free text.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user a system administrator.")] = False,
    project: Annotated[str | None, typer.Option("--project", help="Also make the user a member of this "
                                                "project (with --role).")] = None,
    role: Annotated[str | None, typer.Option("--role", help="The user's role on --project: " +
                                             ", ".join(ROLES.values()) + ".")] = None,
    password_stdin: NewPasswordStdinOpt = False,
    as_json: JsonOpt = False,
    server: ServerOpt = None, username: UsernameOpt = None,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Create a local user (and, with --project and --role, give it that role on the project)."""
    if (project is None) != (role is None):
        raise fail("--project and --role go together: the role the new user gets on that project", 2)
    # Checked before anything is created, so a typo in the role never leaves a user without a project.
    rid = role_id(role) if role is not None else None
    password, generated = _new_password(password_stdin)
    with open_client(server, username, False, insecure, ca_file) as client:
        if project is not None:
            client.get_project(project)  # a missing project fails here, before the user exists
        user_id = client.create_user(new_username, password, email=email, realname=realname, comment=comment)
        user = client.get_user(user_id) if user_id is not None else client.find_user(new_username)
        if admin:
            client.set_sysadmin(int(user["user_id"]), True)
            user = client.get_user(int(user["user_id"]))
        if project is not None and rid is not None:
            client.add_member(project, rid, username=new_username)
    if as_json:
        print_json({**user, "password": password} if generated else user)
        return
    typer.echo(f"Created user {new_username} (id {user.get('user_id')}){' as system admin' if admin else ''}")
    if project is not None and rid is not None:
        typer.echo(f"Added {new_username} to project {project} as {ROLES[rid]}")
    if generated:
        _show_generated(new_username, password)


@app.command()
@handle_errors
def get(
    name: UserArg,
    as_json: JsonOpt = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Show one user."""
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        user = client.find_user(name)
    if as_json:
        print_json(user)
        return
    _print_user(user)


def _print_user(user: dict[str, Any]) -> None:
    print_fields([("Username", user.get("username")), ("ID", user.get("user_id")),
                  ("System admin", bool(user.get("sysadmin_flag"))), ("E-mail", user.get("email")),
                  ("Real name", user.get("realname")), ("Comment", user.get("comment")),
                  ("Created", user.get("creation_time")), ("Updated", user.get("update_time"))])


@app.command()
@handle_errors
def delete(
    name: UserArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Delete a user."""
    confirm(f"Delete user {name}?", yes)
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        user = client.find_user(name)
        client.delete_user(int(user["user_id"]))
    typer.echo(f"Deleted user {name}")


@app.command("set-password")
@handle_errors
def set_password(
    name: UserArg,
    password_stdin: NewPasswordStdinOpt = False,
    server: ServerOpt = None, username: UsernameOpt = None,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Set a user's password (as an admin, no old password is needed)."""
    password, generated = _new_password(password_stdin)
    with open_client(server, username, False, insecure, ca_file) as client:
        user = client.find_user(name)
        client.set_password(int(user["user_id"]), password)
    typer.echo(f"Password of {name} changed")
    if generated:
        _show_generated(name, password)


@app.command("set-admin")
@handle_errors
def set_admin(
    name: UserArg,
    grant: Annotated[bool, typer.Option("--grant/--revoke", help="Grant (default) or revoke system admin.")] = True,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Grant or revoke system-administrator rights."""
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        user = client.find_user(name)
        client.set_sysadmin(int(user["user_id"]), grant)
    typer.echo(f"{name} is {'now' if grant else 'no longer'} a system administrator")


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="user")
