"""What one container runtime on a node trusts for one registry, read from the node's own files.

Trust never travels with an ``imagePullSecret``: each runtime has its own store, and a CA installed
for docker does nothing for containerd. For the registry ``host:port`` as the image spells it:

- containerd: ``<config_path>/<host:port>/hosts.toml`` (``server``, ``ca``, ``skip_verify``, and the same
  keys under ``[host."<url>"]``), else docker-style ``*.crt`` files in that directory, else
  ``<config_path>/_default``. The CRI plugin reads ``config_path`` from ``/etc/containerd/config.toml``;
  containerd 1.6/1.7 leave it empty (certs.d ignored), 2.x default to ``/etc/containerd/certs.d``. Which
  release runs is told by :mod:`moorage.node.runtimes.versions`; when it cannot be told, 1.x is assumed,
  so a node that would fail is never passed.
  The deprecated ``registry.configs."<host>".tls`` table is read too. System roots always apply.
- docker: ``/etc/docker/certs.d/<host:port>/*.crt`` plus system roots; a registry listed in
  ``insecure-registries`` of ``daemon.json`` (or inside 127.0.0.0/8, insecure by default) skips
  verification and falls back to plain HTTP.
- CRI-O/podman (containers/image): ``/etc/containers/certs.d`` and ``/etc/docker/certs.d``, plus
  system roots; ``insecure = true`` in ``registries.conf``/``registries.conf.d`` turns verification off.
"""

from __future__ import annotations

import ipaddress
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from moorage.node.runtime_config import RUNTIMES, Runtime
from moorage.node.runtimes.containerd import CERTS_DIR, CONFIG_FILE, node_path, registry_section
from moorage.node.runtimes.versions import containerd_version

Scheme = Literal["https", "http"]
SYSTEM_BUNDLES = ("etc/ssl/certs/ca-certificates.crt", "etc/pki/tls/certs/ca-bundle.crt", "etc/ssl/cert.pem")
# Where `runtime auto` looks, in preference order (containerd is what most clusters run today).
_MARKERS: tuple[tuple[Runtime, tuple[str, ...]], ...] = (
    ("containerd", ("etc/containerd/config.toml", "etc/containerd/certs.d")),
    ("crio", ("etc/crio", "etc/containers/certs.d", "etc/containers/registries.conf.d")),
    ("docker", ("etc/docker/daemon.json", "etc/docker/certs.d")),
)


@dataclass
class RuntimeTrust:
    """How ``runtime`` connects to ``registry``: scheme, extra CAs, whether it verifies at all."""

    runtime: Runtime
    registry: str
    root: Path
    scheme: Scheme = "https"
    ca_files: list[Path] = field(default_factory=list)
    skip_verify: bool = False
    #: The runtime retries over plain HTTP when HTTPS fails (docker/containers-image "insecure").
    http_fallback: bool = False
    #: Files that were read to decide this (for the report).
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: A human sentence naming where this runtime looks for the registry's CA.
    trust_store: str = ""
    #: containerd: which release, and how that was told ("cannot tell, assuming 1.x" included).
    runtime_version: str = ""
    #: Why the runtime as configured reads no certs.d at all (containerd < 2.0 without config_path).
    config_problem: str = ""
    #: Trust directories that exist for this registry but that the runtime does not read.
    ignored: list[Path] = field(default_factory=list)

    @property
    def system_bundles(self) -> list[Path] | None:
        """The node's system CA bundles; None means "this machine's defaults" (``--root /``)."""
        if str(self.root) == "/":
            return None
        return [self.root / rel for rel in SYSTEM_BUNDLES if (self.root / rel).is_file()]

    def to_dict(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "registry": self.registry, "scheme": self.scheme,
                "ca_files": [str(p) for p in self.ca_files], "skip_verify": self.skip_verify,
                "http_fallback": self.http_fallback, "sources": self.sources, "notes": self.notes,
                "trust_store": self.trust_store, "runtime_version": self.runtime_version,
                "config_problem": self.config_problem, "ignored": [str(p) for p in self.ignored]}


def detect_runtime(root: Path) -> tuple[Runtime, str]:
    """The runtime whose configuration exists under ``root``, and the file that gave it away."""
    for runtime, markers in _MARKERS:
        for marker in markers:
            if (root / marker).exists():
                return runtime, f"found {root / marker}"
    return "containerd", f"no runtime configuration under {root}; assuming containerd"


def _crt_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.crt") if p.is_file()) if directory.is_dir() else []


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def runtime_trust(runtime: Runtime, registry: str, root: Path) -> RuntimeTrust:
    """Read the node's configuration for ``runtime`` and say how it would connect to ``registry``."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}")
    trust = RuntimeTrust(runtime=runtime, registry=registry, root=root)
    {"containerd": _containerd, "docker": _docker, "crio": _crio}[runtime](trust)
    return trust


# ---- containerd ---------------------------------------------------------------------------------

def _containerd(trust: RuntimeTrust) -> None:
    root, registry = trust.root, trust.registry
    config_file = root / CONFIG_FILE
    default_dir = root / CERTS_DIR
    section: dict[str, Any] = {}
    config_version: int | None = None
    if config_file.is_file():
        trust.sources.append(str(config_file))
        try:
            parsed = tomllib.loads(config_file.read_text())
            section = registry_section(parsed)
            config_version = int(parsed.get("version", 1))
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError, TypeError, ValueError) as exc:
            trust.notes.append(f"cannot read {config_file}: {exc}; containerd would refuse to start")
    version = containerd_version(root, config_version)
    trust.runtime_version = version.describe()
    config_path = section.get("config_path")
    if isinstance(config_path, str) and config_path:
        dirs = [node_path(root, p, config_file.parent) for p in config_path.split(":") if p]
    elif version.reads_certs_d_by_default and config_path is None:
        dirs = [default_dir, root / "etc/docker/certs.d"]
        trust.notes.append(f"{version.describe()} reads {default_dir} by default.")
    else:
        dirs = []
        state = ("does not exist" if not config_file.is_file() else
                 "sets config_path = \"\"" if config_path == "" else "sets no config_path")
        trust.config_problem = (f"{config_file} {state}, so the CRI plugin (what the kubelet pulls through) of "
                                f"{version.describe()} ignores {default_dir}")
    read = " and ".join(str(d / registry / "hosts.toml") for d in dirs) or "no certs.d (config_path is not set)"
    trust.trust_store = f"containerd reads {read} (`ca = ...`, `skip_verify`), plus the system CA bundle"
    _containerd_legacy_tls(trust, section, config_file)
    for directory in dirs:
        for candidate in (directory / registry, directory / "_default"):
            if candidate.is_dir():
                _containerd_hosts_dir(trust, candidate)
                return
    ignored = default_dir / registry
    if not dirs and ignored.is_dir():
        trust.ignored.append(ignored)
        trust.notes.append(f"{ignored} exists but is not read: config_path is not set.")


def _containerd_legacy_tls(trust: RuntimeTrust, section: dict[str, Any], config_file: Path) -> None:
    configs = section.get("configs")
    entry = configs.get(trust.registry) if isinstance(configs, dict) else None
    tls = entry.get("tls") if isinstance(entry, dict) else None
    if not isinstance(tls, dict):
        return
    if tls.get("ca_file"):
        trust.ca_files.append(node_path(trust.root, str(tls["ca_file"]), config_file.parent))
    if tls.get("insecure_skip_verify") is True:
        trust.skip_verify = True
    trust.notes.append(f"{config_file} uses the deprecated registry.configs.\"{trust.registry}\".tls table.")


def _containerd_hosts_dir(trust: RuntimeTrust, directory: Path) -> None:
    hosts_toml = directory / "hosts.toml"
    if not hosts_toml.is_file():
        crts = _crt_files(directory)
        if crts:
            trust.sources.append(str(directory))
            trust.ca_files += crts
        return
    trust.sources.append(str(hosts_toml))
    try:
        doc = tomllib.loads(hosts_toml.read_text())
    except (tomllib.TOMLDecodeError, OSError) as exc:
        trust.notes.append(f"cannot parse {hosts_toml}: {exc}; containerd fails every pull from this registry")
        return
    server = str(doc.get("server") or f"https://{trust.registry}").rstrip("/")
    trust.scheme = "http" if server.startswith("http://") else "https"
    trust.ca_files += [node_path(trust.root, ca, directory) for ca in _as_list(doc.get("ca"))]
    if doc.get("skip_verify") is True:
        trust.skip_verify = True
    hosts = found if isinstance(found := doc.get("host"), dict) else {}
    mirrors = []
    for url, host_cfg in hosts.items():
        if not isinstance(host_cfg, dict):
            continue
        if url.rstrip("/") == server:
            trust.ca_files += [node_path(trust.root, ca, directory) for ca in _as_list(host_cfg.get("ca"))]
            if host_cfg.get("skip_verify") is True:
                trust.skip_verify = True
        else:
            mirrors.append(url)
    if mirrors:
        trust.notes.append(f"{hosts_toml} also lists mirror host(s) {', '.join(mirrors)}, tried before the "
                           f"server; a `ca` set under a mirror does not apply to {server} (containerd#7118).")
    if trust.scheme == "http":
        trust.notes.append(f"{hosts_toml} declares the registry plain HTTP (server = {server!r}).")


# ---- docker -------------------------------------------------------------------------------------

def _docker_insecure(entries: list[str], registry: str, host: str) -> str | None:
    for entry in entries:
        if entry.rstrip("/") in (registry, f"http://{registry}", f"https://{registry}"):
            return entry
        try:
            network = ipaddress.ip_network(entry, strict=False)
            if "/" in entry and ipaddress.ip_address(host) in network:
                return entry
        except ValueError:
            continue
    return None


def _docker(trust: RuntimeTrust) -> None:
    root, registry = trust.root, trust.registry
    certs_dir = root / "etc/docker/certs.d" / registry
    trust.trust_store = f"dockerd reads {certs_dir}/*.crt, plus the system CA bundle"
    daemon_json = root / "etc/docker/daemon.json"
    insecure: list[str] = []
    if daemon_json.is_file():
        trust.sources.append(str(daemon_json))
        try:
            insecure = _as_list(json.loads(daemon_json.read_text() or "{}").get("insecure-registries"))
        except (ValueError, AttributeError, OSError) as exc:
            trust.notes.append(f"{daemon_json} is not valid JSON ({exc}); dockerd refuses to start")
    host = registry.rsplit(":", 1)[0].strip("[]") if ":" in registry.rsplit("]", 1)[-1] else registry.strip("[]")
    # dockerd always adds 127.0.0.0/8 to the insecure ranges.
    matched = _docker_insecure([*insecure, "127.0.0.0/8"], registry, host)
    if matched is not None:
        trust.skip_verify, trust.http_fallback = True, True
        origin = "the built-in 127.0.0.0/8 range" if matched == "127.0.0.0/8" and matched not in insecure \
            else f"insecure-registries ({matched!r}) in {daemon_json}"
        trust.notes.append(f"dockerd treats {registry} as insecure through {origin}: it does not verify the "
                           "certificate and falls back to plain HTTP.")
    crts = _crt_files(certs_dir)
    if crts:
        trust.sources.append(str(certs_dir))
        trust.ca_files += crts


# ---- CRI-O / podman -----------------------------------------------------------------------------

def _registries_conf_insecure(trust: RuntimeTrust) -> None:
    root = trust.root
    files = [root / "etc/containers/registries.conf"]
    conf_d = root / "etc/containers/registries.conf.d"
    if conf_d.is_dir():
        files += sorted(conf_d.glob("*.conf"))
    for conf in files:
        if not conf.is_file():
            continue
        try:
            doc = tomllib.loads(conf.read_text())
        except (tomllib.TOMLDecodeError, OSError) as exc:
            trust.notes.append(f"cannot parse {conf}: {exc}; CRI-O/podman refuse every pull")
            continue
        for entry in doc.get("registry", []) if isinstance(doc.get("registry"), list) else []:
            location = str(entry.get("prefix") or entry.get("location") or "")
            if location.rstrip("/") != trust.registry:
                continue
            trust.sources.append(str(conf))
            if entry.get("insecure") is True:
                trust.skip_verify, trust.http_fallback = True, True
                trust.notes.append(f"{conf} marks {trust.registry} insecure: no certificate verification, "
                                   "plain HTTP allowed.")


def _crio(trust: RuntimeTrust) -> None:
    dirs = [trust.root / "etc/containers/certs.d" / trust.registry, trust.root / "etc/docker/certs.d" / trust.registry]
    trust.trust_store = (f"CRI-O, podman and skopeo read {dirs[0]}/*.crt (and {dirs[1]}), plus the system "
                         "CA bundle")
    for directory in dirs:
        crts = _crt_files(directory)
        if crts:
            trust.sources.append(str(directory))
            trust.ca_files += crts
    _registries_conf_insecure(trust)
