"""``moorage tls``: look at, renew and hand out the registry's certificates."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from moorage.datadir import keep_new_files_private
from moorage.settings import load_settings
from moorage.tls.certs import renew_server_certificate, server_paths
from moorage.tls.inspect import CertificateInfo, describe_file

tls_app = typer.Typer(name="tls", help="The registry's CA and server certificate.", no_args_is_help=True)

DataDirOption = Annotated[Path | None, typer.Option(help="Data directory. Env: MOORAGE_DATA_DIR.")]
HostnameOption = Annotated[list[str] | None, typer.Option("--hostname", help="DNS name clients use "
                                                          "(repeatable).")]
IpOption = Annotated[list[str] | None, typer.Option("--ip", help="IP address clients use (repeatable).")]


def resolve_data_dir(data_dir: Path | None) -> Path:
    return load_settings(data_dir=data_dir).data_dir


def fail(message: str, code: int = 2) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def certificate_table(info: CertificateInfo, title: str) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("file", info.path)
    table.add_row("subject", info.subject)
    table.add_row("issuer", info.issuer)
    table.add_row("DNS names", ", ".join(info.dns_names) or "[red]none[/]")
    table.add_row("IP addresses", ", ".join(info.ip_addresses) or "[red]none[/] (clients using an IP will "
                  "fail: \"doesn't contain any IP SANs\")")
    table.add_row("valid until", f"{info.not_after} ({info.days_left} days left)")
    table.add_row("serial", info.serial)
    table.add_row("SHA-256", info.sha256_fingerprint)
    return table


@tls_app.command("show")
def show(data_dir: DataDirOption = None,
         as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Show what the server certificate covers (DNS and IP SANs), who issued it and when it expires."""
    paths = server_paths(resolve_data_dir(data_dir))
    if not paths.cert.is_file() or not paths.ca.is_file():
        raise fail(f"no certificate in {paths.cert.parent}; run `moorage init` first")
    server, ca = describe_file(paths.cert), describe_file(paths.ca)
    if as_json:
        sys.stdout.write(json.dumps({"server": server.to_dict(), "ca": ca.to_dict(),
                                     "files": {"chain": str(paths.chain), "key": str(paths.key),
                                               "ca": str(paths.ca), "cert": str(paths.cert)}},
                                    indent=2) + "\n")
        return
    console = Console()
    console.print(certificate_table(server, "Server certificate"))
    console.print(certificate_table(ca, "CA (give this one to nodes: `moorage tls ca`)"))


@tls_app.command("renew")
def renew(data_dir: DataDirOption = None, hostname: HostnameOption = None, ip: IpOption = None) -> None:
    """Issue a new server certificate under the same CA, keeping its SANs and adding new ones."""
    directory = resolve_data_dir(data_dir)
    keep_new_files_private()
    old = server_paths(directory).cert
    old_serial = describe_file(old).serial if old.is_file() else None
    try:
        paths = renew_server_certificate(directory, hostname or [], ip or [])
    except ValueError as exc:
        raise fail(str(exc)) from None
    info = describe_file(paths.cert)
    console = Console()
    console.print(certificate_table(info, "Renewed server certificate"))
    if old_serial:
        console.print(f"serial {old_serial} -> {info.serial}; the CA is unchanged, so nodes need no "
                      "change. Restart `moorage serve` to serve it.", highlight=False)


@tls_app.command("ca")
def ca(data_dir: DataDirOption = None) -> None:
    """Print the CA certificate (PEM) to stdout, e.g. to pipe into a node's trust directory."""
    paths = server_paths(resolve_data_dir(data_dir))
    if not paths.ca.is_file():
        raise fail(f"no CA in {paths.ca.parent}; run `moorage init` first")
    sys.stdout.write(paths.ca.read_text())


def register(app: typer.Typer) -> None:
    app.add_typer(tls_app, name="tls")
