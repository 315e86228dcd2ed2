"""What a node's container runtime needs in order to trust the registry — and nothing more.

The seed's node failed with ``x509: cannot validate certificate ...`` because its runtime had not
been told to trust the registry. Trust is per runtime and never travels with an ``imagePullSecret``:

- docker:      ``/etc/docker/certs.d/<host:port>/ca.crt`` — read on every connection, no restart.
- containerd:  ``/etc/containerd/certs.d/<host:port>/hosts.toml`` naming the CA. The CRI plugin only
  reads that directory when ``config_path`` is set under
  ``[plugins."io.containerd.grpc.v1.cri".registry]``; containerd 1.6/1.7 leave it empty, so the plan
  also edits ``config.toml`` in place (:mod:`moorage.node.runtimes.containerd`), which needs a restart.
  Once it is set, hosts files are read on every pull.
- CRI-O/podman: ``/etc/containers/certs.d/<host:port>/ca.crt`` plus a ``registries.conf.d`` drop-in
  marking the registry secure; CRI-O re-reads registries config on SIGHUP (``systemctl reload crio``).

``insecure`` setups (skip verification) are produced only on explicit request, with a warning.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography import x509

from moorage.node.runtimes.containerd import (
    CONFIG_FILE,
    RESTART,
    ConfigPathError,
    plan_config_path,
    registry_section,
)
from moorage.tls.files import atomic_write

Runtime = Literal["docker", "containerd", "crio"]
RUNTIMES: tuple[Runtime, ...] = ("docker", "containerd", "crio")

INSECURE_WARNING = (
    "--insecure turns off certificate verification for {registry}: anything that can intercept this "
    "node's traffic can impersonate the registry, collect the pull credentials the kubelet sends and "
    "serve altered images. It also hides the real fault (a CA the node does not trust, or a "
    "certificate without the right IP/DNS SANs). Prefer trusting the registry's CA: run this command "
    "without --insecure."
)


@dataclass(frozen=True)
class RegistryAddress:
    """``host[:port]`` as it appears in image references (the directory name runtimes look up)."""

    host: str
    port: int | None

    @classmethod
    def parse(cls, text: str) -> RegistryAddress:
        raw = text.strip()
        raw = re.sub(r"^[a-z]+://", "", raw).rstrip("/")
        if not raw or "/" in raw:
            raise ValueError(f"{text!r} is not HOST[:PORT]")
        match = re.fullmatch(r"\[([0-9a-fA-F:.]+)\](?::(\d+))?", raw)
        if match:
            host, port = match.group(1), match.group(2)
            ipaddress.IPv6Address(host)
        elif raw.count(":") > 1:
            raise ValueError(f"{text!r}: write an IPv6 registry as [ADDRESS]:PORT")
        else:
            host, _, port = raw.partition(":")
            if not re.fullmatch(r"[A-Za-z0-9.-]+", host):
                raise ValueError(f"{text!r}: {host!r} is not a host name or IPv4 address")
        if port is not None and port != "" and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"{text!r}: bad port {port!r}")
        return cls(host=host.lower(), port=int(port) if port else None)

    @property
    def host_ref(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def hostport(self) -> str:
        return f"{self.host_ref}:{self.port}" if self.port else self.host_ref

    def directory_names(self) -> list[str]:
        """``host:443`` and ``host`` are the same registry, but runtimes look up the name as written in
        the image reference; cover both spellings."""
        names = [self.hostport]
        if self.port == 443:
            names.append(self.host_ref)
        return names


@dataclass(frozen=True)
class NodeFile:
    """A file to place on the node; ``path`` is relative to the node's root (``etc/...``)."""

    path: str
    content: str
    mode: int = 0o644
    purpose: str = ""
    #: The file is the operator's own (an existing runtime config): keep a copy before replacing it.
    backup: bool = False


@dataclass
class RuntimePlan:
    runtime: Runtime
    registry: str
    root: Path
    insecure: bool
    files: list[NodeFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # restart_needed: the runtime must be restarted (not just reloaded) to see the change.
    # activate_command: what makes the runtime pick the change up; empty when nothing is needed.
    restart_needed: bool = False
    activate_command: str = ""
    #: containerd only: which release the plan was made for, and how that was told.
    containerd_version: str = ""

    def location(self, node_file: NodeFile) -> Path:
        return self.root / node_file.path

    def to_dict(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "registry": self.registry,
            "root": str(self.root),
            "insecure": self.insecure,
            "files": [{"path": str(self.location(f)), "mode": f"{f.mode:04o}", "purpose": f.purpose,
                       "content": f.content} for f in self.files],
            "notes": self.notes,
            "warnings": self.warnings,
            "restart_needed": self.restart_needed,
            "activate_command": self.activate_command,
            **({"containerd_version": self.containerd_version} if self.containerd_version else {}),
        }


def check_ca_pem(ca_pem: str) -> x509.Certificate:
    """Refuse anything that is not a CA certificate: a leaf in ``ca.crt`` fails only at pull time."""
    try:
        cert = x509.load_pem_x509_certificate(ca_pem.encode())
    except ValueError as exc:
        raise ValueError(f"the CA file is not a PEM certificate: {exc}") from None
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise ValueError("the CA file holds a certificate that is not a CA (basicConstraints CA:FALSE); "
                         "use <data-dir>/tls/ca.crt or `moorage tls ca`")
    return cert


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _docker(plan: RuntimePlan, reg: RegistryAddress, ca_pem: str | None) -> None:
    daemon_json = plan.root / "etc/docker/daemon.json"
    existing: dict[str, Any] = {}
    if daemon_json.is_file():
        try:
            existing = json.loads(daemon_json.read_text() or "{}")
        except ValueError:
            plan.warnings.append(f"{daemon_json} is not valid JSON; dockerd will refuse to start")
    listed = [r for r in existing.get("insecure-registries", []) if r in reg.directory_names()]
    if plan.insecure:
        merged = dict(existing)
        merged["insecure-registries"] = sorted({*existing.get("insecure-registries", []), reg.hostport})
        plan.files.append(NodeFile("etc/docker/daemon.json", json.dumps(merged, indent=2) + "\n",
                                   purpose="dockerd settings (existing keys kept)"))
        plan.activate_command = "systemctl reload docker  # insecure-registries is reloaded on SIGHUP"
        return
    assert ca_pem is not None
    for name in reg.directory_names():
        plan.files.append(NodeFile(f"etc/docker/certs.d/{name}/ca.crt", ca_pem,
                                   purpose=f"CA docker trusts for {name}"))
    plan.notes.append("dockerd reads certs.d on every connection: no restart needed.")
    if listed:
        plan.warnings.append(f"{daemon_json} still lists {', '.join(listed)} under insecure-registries; "
                             "remove it and run `systemctl reload docker` so TLS is verified again.")
    if reg.host.startswith("127."):
        plan.notes.append("dockerd treats 127.0.0.0/8 as insecure by default, so loopback pulls "
                          "skip verification regardless of certs.d.")


def _containerd(plan: RuntimePlan, reg: RegistryAddress, ca_pem: str | None) -> None:
    try:
        config = plan_config_path(plan.root)
    except ConfigPathError as exc:
        raise ValueError(str(exc)) from None
    plan.containerd_version = config.version.describe()
    certs_rel = config.certs_dir.relative_to(plan.root).as_posix() if config.certs_dir.is_relative_to(plan.root) \
        else None
    if certs_rel is None:
        raise ValueError(f"{config.config_file} sets config_path = {config.config_path!r}, outside the node root "
                         f"{plan.root}; write hosts.toml there by hand or pass the right --root")
    for name in reg.directory_names():
        server = f"https://{reg.hostport}"
        if plan.insecure:
            trust = "skip_verify = true"
        else:
            assert ca_pem is not None
            ca_rel = f"{certs_rel}/{name}/ca.crt"
            # Relative: containerd resolves it against the hosts.toml's own directory, so the file is right
            # on the node whatever --root it was written under (a DaemonSet writes under /host).
            trust = 'ca = "ca.crt"'
            plan.files.append(NodeFile(ca_rel, ca_pem, purpose=f"CA containerd trusts for {name}"))
        # containerd tries the [host] entries, then falls back to `server` as a host of its own: the
        # trust must be on both, or a failure on the first (say a 404) is reported as an x509 error
        # from the fallback, which is exactly the misdiagnosis moorage exists to prevent.
        lines = [f"server = {_toml_str(server)}", trust, "", f"[host.{_toml_str(server)}]",
                 '  capabilities = ["pull", "resolve"]', f"  {trust}"]
        plan.files.append(NodeFile(f"{certs_rel}/{name}/hosts.toml", "\n".join(lines) + "\n",
                                   purpose=f"containerd host config for {name}"))
    if config.new_text is not None:
        mode = config.config_file.stat().st_mode & 0o777 if config.config_file.is_file() else 0o644
        plan.files.append(NodeFile(CONFIG_FILE, config.new_text, mode=mode, backup=True,
                                   purpose="containerd config: the CRI plugin reads certs.d (other settings kept)"))
        plan.restart_needed, plan.activate_command = True, RESTART
    plan.notes.append(config.reason + ("" if config.new_text is None else
                                       " (containerd reads its own config only at start)."))
    if config.version.major is None and config.new_text is not None:
        plan.notes.append("containerd 2.x would read certs.d without this setting; setting it is harmless there.")
    registry = registry_section(_parsed(config.config_file))
    if registry.get("configs"):
        plan.warnings.append(f"{config.config_file} also uses the deprecated registry.configs table; move its "
                             "tls/auth settings into hosts.toml files (containerd ignores them beside config_path).")
    plan.notes.append(f"`ctr` does not use the CRI config: pass `--hosts-dir {config.certs_dir}` to test by hand.")


def _parsed(config_file: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(config_file.read_text()) if config_file.is_file() else {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _crio(plan: RuntimePlan, reg: RegistryAddress, ca_pem: str | None) -> None:
    if not plan.insecure:
        assert ca_pem is not None
        for name in reg.directory_names():
            plan.files.append(NodeFile(f"etc/containers/certs.d/{name}/ca.crt", ca_pem,
                                       purpose=f"CA CRI-O/podman trust for {name}"))
    safe_host = re.sub(r"[^A-Za-z0-9.-]", "_", reg.host)
    entries = [f"[[registry]]\nlocation = {_toml_str(name)}\ninsecure = {str(plan.insecure).lower()}\n"
               for name in reg.directory_names()]
    plan.files.append(NodeFile(f"etc/containers/registries.conf.d/moorage-{safe_host}.conf",
                               "\n".join(entries), purpose="registries.conf drop-in"))
    plan.notes.append("certs.d is read on every pull; CRI-O re-reads registries.conf.d on SIGHUP, podman "
                      "on every command.")
    plan.restart_needed = False
    plan.activate_command = "systemctl reload crio"


def plan_runtime_config(runtime: Runtime, registry: str, ca_pem: str | None, *, insecure: bool = False,
                        root: Path = Path("/")) -> RuntimePlan:
    """Everything ``runtime`` on a node rooted at ``root`` needs to trust ``registry`` (HOST:PORT)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    reg = RegistryAddress.parse(registry)
    if not insecure:
        if ca_pem is None:
            raise ValueError("a CA certificate is needed (--ca-file or --data-dir)")
        check_ca_pem(ca_pem)
        ca_pem = ca_pem if ca_pem.endswith("\n") else ca_pem + "\n"
    plan = RuntimePlan(runtime=runtime, registry=reg.hostport, root=root, insecure=insecure)
    if insecure:
        plan.warnings.append(INSECURE_WARNING.format(registry=reg.hostport))
    {"docker": _docker, "containerd": _containerd, "crio": _crio}[runtime](plan, reg, ca_pem)
    return plan


def apply_plan(plan: RuntimePlan) -> list[Path]:
    """Write the plan's files under its root, each replaced atomically; returns the files that changed.

    A file already holding the planned content is left alone (so a second run changes nothing), and an
    operator's file is copied to ``<name>.moorage-backup-<UTC time>`` before it is replaced.
    """
    written: list[Path] = []
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for node_file in plan.files:
        target = plan.location(node_file)
        new = node_file.content.encode()
        try:
            if target.read_bytes() == new:
                continue
            exists = True
        except FileNotFoundError:
            exists = False
        if node_file.backup and exists:
            backup = target.with_name(f"{target.name}.moorage-backup-{stamp}")
            shutil.copy2(target, backup)
            plan.notes.append(f"the previous {target.name} is kept as {backup}")
        atomic_write(target, new, mode=node_file.mode)
        written.append(target)
    return written
