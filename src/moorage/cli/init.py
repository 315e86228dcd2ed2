"""``moorage init``: create the CA and a server certificate that every client can verify."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from moorage.cli.tls import DataDirOption, HostnameOption, IpOption, certificate_table, fail
from moorage.datadir import keep_new_files_private
from moorage.settings import load_settings
from moorage.tls.certs import ensure_server_certificate
from moorage.tls.inspect import describe_file


def listen_names(host: str) -> tuple[list[str], list[str]]:
    """The listen address is a name clients may use, unless it is a wildcard like 0.0.0.0."""
    if not host:
        return [], []
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return [host], []
    return ([], []) if ip.is_unspecified else ([], [str(ip)])


def init(data_dir: DataDirOption = None, hostname: HostnameOption = None, ip: IpOption = None,
         config: Annotated[Path | None, typer.Option(help="TOML settings file.")] = None) -> None:
    """Create the CA and a server certificate covering --hostname/--ip, this host's addresses,
    localhost and loopback. Safe to run again: it only adds what is missing."""
    settings = load_settings(data_dir=data_dir, config=config)
    keep_new_files_private()
    extra_dns, extra_ips = listen_names(settings.host)
    try:
        paths = ensure_server_certificate(settings.data_dir, [*(hostname or []), *extra_dns],
                                          [*(ip or []), *extra_ips])
    except ValueError as exc:
        raise fail(str(exc)) from None
    console = Console()
    console.print(certificate_table(describe_file(paths.cert), "Server certificate"))
    console.print(f"CA:          {paths.ca}\nserved chain: {paths.chain}\nkey:          {paths.key}",
                  highlight=False)
    console.print("Next, on every node: `moorage node-config --runtime containerd|docker|crio "
                  "--registry HOST:PORT --ca-file ca.crt --apply` (get ca.crt with `moorage tls ca`).",
                  highlight=False)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
