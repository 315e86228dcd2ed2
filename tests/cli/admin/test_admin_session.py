"""``moorage admin login/logout``, ``moorage system info``, and how the CLI fails when it cannot work."""

from __future__ import annotations

import json
import stat

from tests.cli.admin.conftest import Cli
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.procs import free_port


def test_admin_logs_in_once_and_later_commands_just_work(bare_cli: Cli, api_server: MoorageServer) -> None:
    # A wrong password is refused and nothing is written.
    wrong = bare_cli.run("admin", "login", api_server.url, "--password-stdin", input="not-the-password\n", ok=False)
    assert "wrong username or password" in wrong.stderr
    profile = bare_cli.home / ".config" / "moorage" / "cli.json"
    assert not profile.exists()

    done = bare_cli.run("admin", "login", api_server.url, "-u", "admin", "--password-stdin",
                        input=ADMIN_PASSWORD + "\n")
    assert f"Logged in to {api_server.url} as admin" in done.stdout
    assert ADMIN_PASSWORD not in done.stdout + done.stderr

    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    assert stat.S_IMODE(profile.parent.stat().st_mode) == 0o700
    saved = json.loads(profile.read_text())
    assert saved["current"] == api_server.url
    assert saved["servers"][api_server.url]["username"] == "admin"

    # No --server, no environment: the profile supplies both.
    assert isinstance(bare_cli.json("project", "list"), list)
    info = bare_cli.json("system", "info")
    assert info["server"] == api_server.url

    bare_cli.run("admin", "logout")
    assert api_server.url not in json.loads(profile.read_text())["servers"]
    after = bare_cli.run("project", "list", ok=False)
    assert after.code == 2 and "moorage admin login" in after.stderr
    again = bare_cli.run("admin", "logout", api_server.url)
    assert "Not logged in" in again.stdout


def test_a_saved_password_only_goes_to_its_own_server(bare_cli: Cli, api_server: MoorageServer) -> None:
    bare_cli.run("admin", "login", api_server.url, "--password-stdin", input=ADMIN_PASSWORD)
    # The same host under another spelling (localhost) is another server: its credentials are not sent.
    other = f"http://localhost:{api_server.port}"
    refused = bare_cli.run("project", "list", "--server", other, ok=False)
    assert refused.code == 2 and "no credentials" in refused.stderr
    # Credentials given explicitly work against it.
    listed = bare_cli.run("project", "list", "--server", other, "--username", "admin", "--password-stdin",
                          "--json", input=ADMIN_PASSWORD)
    assert isinstance(json.loads(listed.stdout), list)


def test_system_info_shows_version_and_health(cli: Cli, api_server: MoorageServer) -> None:
    info = cli.json("system", "info")
    assert info["server"] == api_server.url
    assert info["health"]["status"] == "healthy"
    assert "harbor_version" in info["systeminfo"] or "registry_url" in info["systeminfo"]
    table = cli.run("system", "info").stdout
    assert "Health" in table and "healthy" in table


def test_system_info_works_anonymously(bare_cli: Cli, api_server: MoorageServer) -> None:
    info = bare_cli.json("system", "info", "--server", api_server.url)
    assert info["health"]["status"] == "healthy"


def test_wrong_credentials_print_the_servers_message(cli: Cli) -> None:
    result = cli.run("project", "list", env={"MOORAGE_PASSWORD": "wrong"}, ok=False)
    assert result.code == 1
    assert "UNAUTHORIZED" in result.stderr and "401" in result.stderr
    assert "moorage admin login" in result.stderr


def test_an_unreachable_server_is_one_clear_line(cli: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = cli.run("project", "list", "--server", url, ok=False)
    assert result.code == 1
    assert f"cannot reach {url}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_user_who_is_not_admin_is_told_no(cli: Cli, api_server: MoorageServer, unique: str) -> None:
    name = f"plain-{unique}"
    cli.run("user", "create", name, "--password-stdin", input="Pl4in-Passw0rd\n")
    denied = cli.run("user", "list", env={"MOORAGE_USERNAME": name, "MOORAGE_PASSWORD": "Pl4in-Passw0rd"},
                     ok=False)
    assert "403" in denied.stderr or "FORBIDDEN" in denied.stderr
    note = cli.run("admin", "login", api_server.url, "-u", name, "--password-stdin", input="Pl4in-Passw0rd\n")
    assert "not a system administrator" in note.stderr
