"""CA and server certificates whose SANs cover every name and address the registry is reached by."""

from moorage.tls.certs import (
    ServerCertPaths,
    ensure_server_certificate,
    renew_server_certificate,
    server_paths,
    write_chain,
)

__all__ = ["ServerCertPaths", "ensure_server_certificate", "renew_server_certificate", "server_paths",
           "write_chain"]
