"""Start Granian with the registry app: prepare the data directory and schema once, then fork workers."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from rich.console import Console

from moorage.auth.bootstrap import bootstrap
from moorage.datadir import keep_new_files_private, make_private
from moorage.meta.migrate import upgrade
from moorage.services import build_services
from moorage.settings import Settings

# One line per message, whatever the terminal: operators grep these in logs.
console = Console(stderr=True, soft_wrap=True)


def prepare(settings: Settings) -> None:
    """Once per start, before workers fork: data directory, schema, and clean-up of abandoned uploads."""
    # Before anything is created: what this process writes is owner-only, and so is what the launcher
    # it execs into and every Granian worker write (they inherit the umask).
    keep_new_files_private()
    for warning in make_private(settings.data_dir).warnings():
        console.print(warning, markup=False, highlight=False, soft_wrap=True)
    context = build_services(settings)
    try:
        with context.store.setup_lock():
            upgrade(context.store)
            bootstrap(settings, context.store, console.print)
        purged = context.uploads.purge_stale(settings.upload_ttl_hours * 3600)
        if purged:
            console.print(f"moorage: removed {purged} upload(s) untouched for {settings.upload_ttl_hours:g} h")
    finally:
        context.store.dispose()


def _tls_files(settings: Settings) -> dict[str, Path]:
    """The certificate Granian serves: made (or extended with new names) before the workers start, so
    every worker reads the same finished files."""
    from moorage.cli.init import listen_names
    from moorage.node.ca_pin import pem_fingerprint
    from moorage.tls import ensure_server_certificate
    from moorage.tls.inspect import describe_file

    extra_dns, extra_ips = listen_names(settings.host)
    paths = ensure_server_certificate(settings.data_dir, [*settings.tls_hostnames, *extra_dns],
                                      [*settings.tls_ips, *extra_ips])
    described = describe_file(paths.cert)
    console.print(f"moorage: TLS certificate covers {', '.join(described.dns_names + described.ip_addresses)}; "
                  f"nodes must trust the CA at {paths.ca} (`moorage node-config --help`)", highlight=False)
    # The fingerprint lets each node fetch the CA from here and pin it: no file to copy around.
    fingerprint = pem_fingerprint(paths.ca.read_bytes())
    named = [*settings.tls_ips, *settings.tls_hostnames]
    host = named[0] if named else settings.host if settings.host not in ("0.0.0.0", "::", "") else "HOST"
    host = f"[{host}]" if ":" in host else host
    console.print(f"moorage: CA fingerprint {fingerprint}; on each node: moorage node-config --runtime containerd "
                  f"--registry {host}:{settings.port} --ca-fingerprint {fingerprint} --apply", highlight=False)
    return {"cert": paths.chain, "key": paths.key}


def _export(settings: Settings) -> None:
    """Workers build their settings from the environment, so pass the resolved values down."""
    for key, value in settings.model_dump(exclude={"config"}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, list | dict):
            text = json.dumps(value)
        else:
            text = str(value)
        os.environ[f"MOORAGE_{key.upper()}"] = text


def run(settings: Settings) -> None:
    prepare(settings)
    _export(settings)
    scheme = "http" if settings.plain_http else "https"
    workers = settings.worker_count
    console.print(f"moorage: serving {scheme}://{settings.listen} from {settings.data_dir} "
                  f"({workers} worker{'s' if workers != 1 else ''}, metadata {settings.database.split(':')[0]})")
    argv = [sys.executable, "-m", "moorage.launch", settings.host, str(settings.port), str(workers)]
    if not settings.plain_http:
        tls = _tls_files(settings)
        argv += [str(tls["cert"]), str(tls["key"]), "tls1.2" if settings.tls12 else "tls1.3"]
    sys.stdout.flush()
    sys.stderr.flush()
    # Start the server from a fresh interpreter: the supervisor that forks the workers then holds only
    # Granian, not the CLI, the migrations and everything prepare() imported (~60 MB less resident).
    os.execv(sys.executable, argv)
