"""What a node's container runtime needs in order to trust the registry — and nothing more.

The seed's node failed with ``x509: cannot validate certificate ...`` because its runtime had not
been told to trust the registry. Trust is per runtime and never travels with an ``imagePullSecret``:

- docker:      ``/etc/docker/certs.d/<host:port>/ca.crt`` — read on every connection, no restart.
- containerd:  ``/etc/containerd/certs.d/<host:port>/hosts.toml`` naming the CA. The CRI plugin only
  reads that directory when ``config_path`` is set under
  ``[plugins."io.containerd.grpc.v1.cri".registry]``; containerd 1.6 leaves it empty, and changing
  it needs a restart. Once it is set, hosts files are read on every pull.
- CRI-O/podman: ``/etc/containers/certs.d/<host:port>/ca.crt`` plus a ``registries.conf.d`` drop-in
  marking the registry secure; CRI-O re-reads registries config on SIGHUP (``systemctl reload crio``).

``insecure`` setups (skip verification) are produced only on explicit request, with a warning.
"""

from __future__ import annotations

import ipaddress
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography import x509

from moorage.tls.files import atomic_write

Runtime = Literal["docker", "containerd", "crio"]
RUNTIMES: tuple[Runtime, ...] = ("docker", "containerd", "crio")
CRI_PLUGIN = "io.containerd.grpc.v1.cri"

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


def containerd_config_snippet(certs_dir: str = "/etc/containerd/certs.d") -> str:
    return f'[plugins."{CRI_PLUGIN}".registry]\n  config_path = "{certs_dir}"\n'


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


def _containerd_status(plan: RuntimePlan, certs_dir: Path) -> None:
    config_file = plan.root / "etc/containerd/config.toml"
    wanted = {str(certs_dir), "/etc/containerd/certs.d"} if str(plan.root) == "/" else {str(certs_dir)}
    snippet = containerd_config_snippet(str(certs_dir))
    restart = "systemctl restart containerd"
    if not config_file.is_file():
        plan.notes.append(f"{config_file} does not exist, so the CRI plugin does not read "
                          f"{certs_dir} (containerd 1.6 leaves config_path empty). Add:\n{snippet}"
                          f"then `{restart}`.")
        plan.restart_needed, plan.activate_command = True, restart
        return
    try:
        config = tomllib.loads(config_file.read_text())
    except (tomllib.TOMLDecodeError, OSError) as exc:
        plan.warnings.append(f"cannot read {config_file}: {exc}")
        return
    plugins = config.get("plugins", {})
    cri = plugins.get(CRI_PLUGIN) or plugins.get("cri") or {}
    registry = cri.get("registry", {}) if isinstance(cri, dict) else {}
    config_path = str(registry.get("config_path", ""))
    if set(config_path.split(":")) & wanted:
        plan.notes.append(f"{config_file} already sets config_path = {config_path!r}: containerd reads "
                          "hosts.toml on every pull, no restart needed.")
    else:
        shown = repr(config_path) if config_path else "not set"
        plan.notes.append(f"{config_file}: config_path is {shown}, so the CRI plugin (what the kubelet "
                          f"uses) ignores {certs_dir}. Set:\n{snippet}then `{restart}` (containerd "
                          "reads its own config only at start).")
        plan.restart_needed, plan.activate_command = True, restart
    if registry.get("mirrors") or registry.get("configs"):
        plan.warnings.append(f"{config_file} also uses the deprecated registry.mirrors/configs tables; "
                             "containerd refuses config_path together with mirrors — move them to "
                             "hosts.toml files.")


def _containerd(plan: RuntimePlan, reg: RegistryAddress, ca_pem: str | None) -> None:
    certs_dir = plan.root / "etc/containerd/certs.d"
    for name in reg.directory_names():
        server = f"https://{reg.hostport}"
        if plan.insecure:
            trust = "skip_verify = true"
        else:
            assert ca_pem is not None
            ca_rel = f"etc/containerd/certs.d/{name}/ca.crt"
            trust = f"ca = {_toml_str(str(plan.root / ca_rel))}"
            plan.files.append(NodeFile(ca_rel, ca_pem, purpose=f"CA containerd trusts for {name}"))
        # containerd tries the [host] entries, then falls back to `server` as a host of its own: the
        # trust must be on both, or a failure on the first (say a 404) is reported as an x509 error
        # from the fallback, which is exactly the misdiagnosis moorage exists to prevent.
        lines = [f"server = {_toml_str(server)}", trust, "", f"[host.{_toml_str(server)}]",
                 '  capabilities = ["pull", "resolve"]', f"  {trust}"]
        plan.files.append(NodeFile(f"etc/containerd/certs.d/{name}/hosts.toml", "\n".join(lines) + "\n",
                                   purpose=f"containerd host config for {name}"))
    _containerd_status(plan, certs_dir)
    plan.notes.append(f"`ctr` does not use the CRI config: pass `--hosts-dir {certs_dir}` to test by hand.")


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
    """Write the plan's files under its root; each file is replaced atomically."""
    written: list[Path] = []
    for node_file in plan.files:
        target = plan.location(node_file)
        atomic_write(target, node_file.content.encode(), mode=node_file.mode)
        written.append(target)
    return written
