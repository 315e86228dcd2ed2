"""The real container clients and daemons, each private to a temporary directory.

Every wrapper runs the real binary. A failing command raises CommandFailed carrying argv, exit status,
stdout and stderr, because tests assert on what users see (docker's "unauthorized", podman's x509 text).
Pass ``check=False`` to get the Result back instead. A missing binary raises ToolMissing, which names the
Debian package: tests fail rather than skip, so CI cannot silently test less.

Nothing here touches the machine's own daemons or configuration: containerd and dockerd listen on unix
sockets under the work directory, podman and skopeo keep storage and credentials there too.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.images import ImageInfo, IndexInfo
from tests.support.procs import ManagedProcess, free_port, require_tool, unmount_under, wait_until

COMMAND_TIMEOUT = 300.0
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr together: where a client prints its error varies by client and version."""
        return self.stdout + self.stderr

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def json(self) -> Any:
        return json.loads(self.stdout)


class CommandFailed(AssertionError):
    """A client command exited non-zero. ``result.output`` holds what the user would have read."""

    def __init__(self, result: Result) -> None:
        self.result = result
        super().__init__(f"command failed with status {result.returncode}: {' '.join(result.argv)}\n"
                         f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}")

    @property
    def output(self) -> str:
        return self.result.output


def run(argv: Sequence[str], env: Mapping[str, str] | None = None, input: str | None = None,
        check: bool = True, timeout: float = COMMAND_TIMEOUT) -> Result:
    completed = subprocess.run([str(a) for a in argv], env=env, input=input, capture_output=True, text=True,
                               timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
    result = Result(list(map(str, argv)), completed.returncode, completed.stdout, completed.stderr)
    if check and not result.ok:
        raise CommandFailed(result)
    return result


def _remote_flags(side: str, tls_verify: bool, creds: str | None, cert_dir: Path | None) -> list[str]:
    """skopeo's per-side registry flags (``side`` is "src", "dest" or "" for single-image commands)."""
    prefix = f"--{side}-" if side else "--"
    flags = [f"{prefix}tls-verify={'true' if tls_verify else 'false'}"]
    if creds is not None:
        flags.append(f"{prefix}creds={creds}")
    if cert_dir is not None:
        flags.append(f"{prefix}cert-dir={cert_dir}")
    return flags


class Skopeo:
    """skopeo with its own auth file: copies between OCI layouts and registries, inspects, logs in."""

    def __init__(self, workdir: Path) -> None:
        self.binary = require_tool("skopeo", "skopeo")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.authfile = self.workdir / "auth.json"
        # podman refuses to pull when REGISTRY_AUTH_FILE names a file that does not exist yet.
        self.authfile.write_text('{"auths": {}}')
        self.env = {**os.environ, "REGISTRY_AUTH_FILE": str(self.authfile)}

    def run(self, *args: object, check: bool = True, input: str | None = None) -> Result:
        return run([self.binary, *map(str, args)], env=self.env, input=input, check=check)

    def copy(self, source: str, destination: str, *, all_images: bool = False, creds: str | None = None,
             tls_verify: bool = False, cert_dir: Path | None = None, authfile: Path | None = None,
             preserve_digests: bool = False, extra: Sequence[str] = (), check: bool = True) -> Result:
        """``skopeo copy SOURCE DESTINATION``; creds/TLS options apply to whichever side is ``docker://``."""
        argv: list[str] = ["copy"]
        if authfile is not None:
            argv.append(f"--authfile={authfile}")
        if all_images:
            argv.append("--all")
        if preserve_digests:
            argv.append("--preserve-digests")
        if source.startswith("docker://"):
            argv += _remote_flags("src", tls_verify, creds, cert_dir)
        if destination.startswith("docker://"):
            argv += _remote_flags("dest", tls_verify, creds, cert_dir)
        return self.run(*argv, *extra, source, destination, check=check)

    def push(self, image: ImageInfo | IndexInfo, reference: str, **options: Any) -> Result:
        """Push a layout image to ``host:port/repo:tag``, byte for byte (all platforms of an index)."""
        options.setdefault("all_images", isinstance(image, IndexInfo))
        options.setdefault("preserve_digests", True)
        return self.copy(image.ref, f"docker://{reference}", **options)

    def pull(self, reference: str, layout: Path, tag: str, **options: Any) -> Result:
        """Copy ``host:port/repo:tag`` (or ``@digest``) into the OCI layout ``layout`` as ``tag``."""
        return self.copy(f"docker://{reference}", f"oci:{layout}:{tag}", **options)

    def inspect(self, reference: str, *, raw: bool = False, config: bool = False, creds: str | None = None,
                tls_verify: bool = False, cert_dir: Path | None = None, authfile: Path | None = None,
                check: bool = True) -> Any:
        """``skopeo inspect docker://REF`` as parsed JSON (``raw``: the manifest itself; ``config``: the config)."""
        argv: list[str] = ["inspect", *_remote_flags("", tls_verify, creds, cert_dir)]
        if authfile is not None:
            argv.append(f"--authfile={authfile}")
        if raw:
            argv.append("--raw")
        if config:
            argv.append("--config")
        result = self.run(*argv, f"docker://{reference}", check=check)
        return result.json() if result.ok else result

    def list_tags(self, repository: str, *, creds: str | None = None, tls_verify: bool = False) -> list[str]:
        argv = ["list-tags", *_remote_flags("", tls_verify, creds, None), f"docker://{repository}"]
        return list(self.run(*argv).json()["Tags"])

    def delete(self, reference: str, *, creds: str | None = None, tls_verify: bool = False,
               check: bool = True) -> Result:
        return self.run("delete", *_remote_flags("", tls_verify, creds, None), f"docker://{reference}", check=check)

    def login(self, host: str, username: str, password: str, *, tls_verify: bool = False,
              cert_dir: Path | None = None, check: bool = True) -> Result:
        argv = ["login", "--username", username, "--password-stdin", f"--tls-verify={str(tls_verify).lower()}"]
        if cert_dir is not None:
            argv.append(f"--cert-dir={cert_dir}")
        return self.run(*argv, host, input=password, check=check)

    def logout(self, host: str, check: bool = True) -> Result:
        return self.run("logout", host, check=check)


class Podman:
    """podman as root with private storage, run dir and credentials (nothing under /var/lib/containers)."""

    def __init__(self, workdir: Path, storage_driver: str = "overlay") -> None:
        self.binary = require_tool("podman", "podman")
        self.workdir = Path(workdir)
        for sub in ("root", "run", "tmp"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        self.authfile = self.workdir / "auth.json"
        # podman refuses to pull when REGISTRY_AUTH_FILE names a file that does not exist yet.
        self.authfile.write_text('{"auths": {}}')
        registries = self.workdir / "registries.conf"
        # No search registries: a short name must never send a test to the internet.
        registries.write_text('unqualified-search-registries = []\nshort-name-mode = "disabled"\n')
        self.env = {**os.environ, "REGISTRY_AUTH_FILE": str(self.authfile),
                    "CONTAINERS_REGISTRIES_CONF": str(registries)}
        self.storage_driver = storage_driver
        if storage_driver == "overlay" and not self._works():
            # Kernels or filesystems without native overlay (e.g. overlay on overlay) still have vfs.
            self.storage_driver = "vfs"

    def close(self) -> None:
        """Release podman's storage: it keeps ``root/overlay`` mounted, which would block deleting the dir."""
        self.run("system", "prune", "--all", "--force", check=False)
        unmount_under(self.workdir)

    def _works(self) -> bool:
        return self.run("info", "--format", "{{.Store.GraphDriverName}}", check=False).ok

    @property
    def base(self) -> list[str]:
        return [self.binary, "--root", str(self.workdir / "root"), "--runroot", str(self.workdir / "run"),
                "--tmpdir", str(self.workdir / "tmp"), "--storage-driver", self.storage_driver,
                "--cgroup-manager", "cgroupfs", "--events-backend", "none"]

    def run(self, *args: object, check: bool = True, input: str | None = None) -> Result:
        return run([*self.base, *map(str, args)], env=self.env, input=input, check=check)

    @staticmethod
    def _remote(tls_verify: bool, creds: str | None, cert_dir: Path | None) -> list[str]:
        flags = [f"--tls-verify={str(tls_verify).lower()}"]
        if creds is not None:
            flags.append(f"--creds={creds}")
        if cert_dir is not None:
            flags.append(f"--cert-dir={cert_dir}")
        return flags

    def pull(self, reference: str, *, creds: str | None = None, tls_verify: bool = False,
             cert_dir: Path | None = None, check: bool = True) -> Result:
        return self.run("pull", "--quiet", *self._remote(tls_verify, creds, cert_dir), reference, check=check)

    def push(self, reference: str, destination: str | None = None, *, creds: str | None = None,
             tls_verify: bool = False, cert_dir: Path | None = None, check: bool = True) -> Result:
        target = [destination] if destination else []
        return self.run("push", *self._remote(tls_verify, creds, cert_dir), reference, *target, check=check)

    def login(self, host: str, username: str, password: str, *, tls_verify: bool = False,
              cert_dir: Path | None = None, check: bool = True) -> Result:
        argv = ["login", "--username", username, "--password-stdin", *self._remote(tls_verify, None, cert_dir)]
        return self.run(*argv, host, input=password, check=check)

    def logout(self, host: str, check: bool = True) -> Result:
        return self.run("logout", host, check=check)

    def tag(self, source: str, target: str) -> Result:
        return self.run("tag", source, target)

    def rmi(self, *references: str, check: bool = True) -> Result:
        return self.run("rmi", "--force", *references, check=check)

    def images(self) -> list[dict[str, Any]]:
        return list(self.run("images", "--format", "json").json() or [])

    def inspect(self, reference: str) -> dict[str, Any]:
        return dict(self.run("image", "inspect", reference).json()[0])

    def digest(self, reference: str) -> str:
        """The manifest digest podman recorded for a pulled image."""
        return str(self.inspect(reference)["Digest"])


def chain_id(diff_ids: Sequence[str]) -> str:
    """The OCI ChainID of a layer stack: the key of the snapshot an unpacked image's top layer lives in."""
    chain = diff_ids[0]
    for diff_id in diff_ids[1:]:
        chain = "sha256:" + hashlib.sha256(f"{chain} {diff_id}".encode()).hexdigest()
    return chain


def write_hosts_toml(hosts_dir: Path, host: str, *, ca: Path | None = None, skip_verify: bool = False,
                     plain_http: bool = False) -> Path:
    """Write ``HOSTS_DIR/HOST/hosts.toml`` (containerd's per-registry config) for ``ctr --hosts-dir``."""
    scheme = "http" if plain_http else "https"
    trust = ([f'ca = "{ca}"'] if ca is not None else []) + (["skip_verify = true"] if skip_verify else [])
    # The trust goes on the `server` fallback host too, as `moorage node-config` writes it.
    lines = [f'server = "{scheme}://{host}"', *trust, "", f'[host."{scheme}://{host}"]',
             '  capabilities = ["pull", "resolve", "push"]', *(f"  {t}" for t in trust)]
    path = Path(hosts_dir) / host / "hosts.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


class Containerd:
    """A private containerd: own root, state, socket and config; the CRI plugin is off.

    ``ctr`` commands go to its socket in namespace ``namespace``. Pulls unpack with ``snapshotter``
    (overlayfs, falling back to native where overlay mounts are not allowed).
    ctr speaks plain HTTP to every loopback host unless ``--hosts-dir`` has a hosts.toml whose server is
    ``https://…`` (see ``write_hosts_toml``): TLS against 127.x needs one.
    """

    def __init__(self, workdir: Path, namespace: str = "default") -> None:
        self.containerd = require_tool("containerd", "containerd")
        self.ctr_binary = require_tool("ctr", "containerd")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.socket = self.workdir / "containerd.sock"
        self.config_path = self.workdir / "config.toml"
        self.namespace = namespace
        self.snapshotter = "overlayfs"
        self.process: ManagedProcess | None = None

    def _config(self) -> str:
        w = self.workdir
        # Plugins that need hardware, kernel modules or a CNI setup we lack are switched off, so startup is
        # quick and quiet; the cri plugin would also try to own /etc/cni and a streaming port.
        disabled = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp",
                    "io.containerd.internal.v1.tracing"]
        return "\n".join([
            "version = 2",
            f'root = "{w / "root"}"',
            f'state = "{w / "state"}"',
            f"disabled_plugins = {json.dumps(disabled)}",
            "[grpc]",
            f'  address = "{self.socket}"',
            "[ttrpc]",
            f'  address = "{self.socket}.ttrpc"',
            "[debug]",
            '  address = ""',
            "[metrics]",
            '  address = ""',
            '[plugins."io.containerd.internal.v1.opt"]',
            f'  path = "{w / "opt"}"',
            "",
        ])

    @property
    def log_path(self) -> Path:
        return self.workdir / "containerd.log"

    def start(self) -> Containerd:
        self.config_path.write_text(self._config())
        self.process = ManagedProcess([self.containerd, "--config", str(self.config_path)], self.log_path).start()
        wait_until(lambda: self.ctr("version", check=False).ok, START_TIMEOUT, "containerd to answer on its socket",
                   process=self.process)
        plugins = self.ctr("plugins", "ls").stdout
        if not any(line.split()[1:2] == ["overlayfs"] and line.split()[-1] == "ok" for line in plugins.splitlines()
                   if line.strip()):
            self.snapshotter = "native"
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
        unmount_under(self.workdir)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def ctr(self, *args: object, check: bool = True, namespace: str | None = None) -> Result:
        argv = [self.ctr_binary, "--address", str(self.socket), "--namespace", namespace or self.namespace]
        return run([*argv, *map(str, args)], check=check)

    @staticmethod
    def _remote(plain_http: bool, user: str | None, hosts_dir: Path | None) -> list[str]:
        flags = ["--plain-http"] if plain_http else []
        if user is not None:
            flags += ["--user", user]
        if hosts_dir is not None:
            flags += ["--hosts-dir", str(hosts_dir)]
        return flags

    def pull(self, reference: str, *, plain_http: bool = True, user: str | None = None,
             hosts_dir: Path | None = None, platform: str | None = None, all_platforms: bool = False,
             check: bool = True) -> Result:
        """``ctr images pull``: fetches and unpacks for the local platform (or ``platform``)."""
        argv = ["images", "pull", "--snapshotter", self.snapshotter, *self._remote(plain_http, user, hosts_dir)]
        if platform is not None:
            argv += ["--platform", platform]
        if all_platforms:
            argv.append("--all-platforms")
        return self.ctr(*argv, reference, check=check)

    def push(self, remote: str, local: str | None = None, *, plain_http: bool = True, user: str | None = None,
             hosts_dir: Path | None = None, check: bool = True) -> Result:
        argv = ["images", "push", *self._remote(plain_http, user, hosts_dir), remote]
        return self.ctr(*argv, *([local] if local else []), check=check)

    def tag(self, source: str, target: str) -> Result:
        return self.ctr("images", "tag", "--force", source, target)

    def images(self) -> dict[str, str]:
        """reference → digest of what this namespace holds."""
        lines = self.ctr("images", "ls").stdout.splitlines()[1:]
        return {line.split()[0]: line.split()[2] for line in lines if line.strip()}

    def rm(self, *references: str, check: bool = True) -> Result:
        return self.ctr("images", "rm", "--sync", *references, check=check)

    def is_unpacked(self, image: ImageInfo) -> bool:
        """Whether the image's layers exist as a committed snapshot (i.e. the pull unpacked them)."""
        info = self.ctr("snapshots", "--snapshotter", self.snapshotter, "info", chain_id(image.diff_ids),
                        check=False)
        return info.ok


class DockerCli:
    """The docker CLI bound to one daemon (DOCKER_HOST) with its own config dir (credentials)."""

    def __init__(self, host: str, config_dir: Path) -> None:
        self.binary = require_tool("docker", "docker.io")
        self.config_dir = Path(config_dir)
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "DOCKER_HOST": host, "DOCKER_CONFIG": str(self.config_dir)}
        self.env.pop("DOCKER_CONTEXT", None)

    @property
    def config_json(self) -> Path:
        return self.config_dir / "config.json"

    def run(self, *args: object, check: bool = True, input: str | None = None) -> Result:
        return run([self.binary, *map(str, args)], env=self.env, input=input, check=check)

    def login(self, host: str, username: str, password: str, check: bool = True) -> Result:
        return self.run("login", "--username", username, "--password-stdin", host, input=password, check=check)

    def logout(self, host: str, check: bool = True) -> Result:
        return self.run("logout", host, check=check)

    def pull(self, reference: str, check: bool = True) -> Result:
        return self.run("pull", reference, check=check)

    def push(self, reference: str, check: bool = True) -> Result:
        return self.run("push", reference, check=check)

    def tag(self, source: str, target: str) -> Result:
        return self.run("tag", source, target)

    def rmi(self, *references: str, check: bool = True) -> Result:
        return self.run("rmi", "--force", *references, check=check)

    def inspect(self, reference: str) -> dict[str, Any]:
        return dict(self.run("image", "inspect", reference).json()[0])

    def repo_digests(self, reference: str) -> list[str]:
        """``name@sha256:…`` entries the daemon recorded for a pulled or pushed image."""
        return list(self.inspect(reference).get("RepoDigests") or [])


class Dockerd:
    """A private Docker engine on a unix socket under ``workdir``: no iptables, no bridge, own data root.

    ``daemon_config`` becomes its daemon.json (e.g. ``{"insecure-registries": ["127.0.0.2:5000"]}``);
    ``containerd_socket`` reuses a running containerd instead of the one dockerd would start itself.
    Docker reads trust anchors only from /etc/docker/certs.d (not configurable in 20.10); see ``trust_ca``.
    Beware: dockerd 20.10 always treats 127.0.0.0/8 as insecure (HTTPS without verification, then plain
    HTTP), even for names that resolve there, so no loopback registry can make docker fail on x509.
    """

    CERTS_D = Path("/etc/docker/certs.d")

    def __init__(self, workdir: Path, containerd_socket: Path | None = None,
                 daemon_config: dict[str, Any] | None = None) -> None:
        self.dockerd = require_tool("dockerd", "docker.io")
        require_tool("runc", "runc")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.socket = self.workdir / "docker.sock"
        self.containerd_socket = containerd_socket
        self.daemon_config = daemon_config or {}
        self.process: ManagedProcess | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "dockerd.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Dockerd:
        config_file = self.workdir / "daemon.json"
        config_file.write_text(json.dumps(self.daemon_config))
        argv = [self.dockerd, "--data-root", self.workdir / "root", "--exec-root", self.workdir / "exec",
                "-H", self.host, "--pidfile", self.workdir / "dockerd.pid", "--config-file", config_file,
                "--iptables=false", "--ip6tables=false", "--bridge=none", "--ip-masq=false"]
        if self.containerd_socket is not None:
            argv += ["--containerd", self.containerd_socket]
        self.process = ManagedProcess(list(map(str, argv)), self.log_path).start()
        probe = self.cli(self.workdir / "probe-config")
        wait_until(lambda: probe.run("version", check=False).ok, START_TIMEOUT, "dockerd to answer on its socket",
                   process=self.process)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=30)
            self.process = None
        unmount_under(self.workdir)

    def restart(self, daemon_config: dict[str, Any] | None = None) -> None:
        """Restart, optionally with a new daemon.json (dockerd reads insecure-registries only at start)."""
        self.stop()
        if daemon_config is not None:
            self.daemon_config = daemon_config
        self.start()

    def cli(self, config_dir: Path | None = None) -> DockerCli:
        """A docker CLI for this daemon; each distinct ``config_dir`` is a separate set of credentials."""
        return DockerCli(self.host, config_dir or self.workdir / "cli-config")

    @contextmanager
    def trust_ca(self, host: str, ca_pem: bytes | str) -> Iterator[Path]:
        """Make the daemon trust ``ca_pem`` for ``host`` (host:port) while the block runs.

        Writes /etc/docker/certs.d/HOST/ca.crt (the only place dockerd 20.10 looks) and removes that
        directory afterwards; use a host:port no other test uses so parallel runs cannot collide.
        """
        directory = self.CERTS_D / host
        directory.mkdir(parents=True, exist_ok=False)
        data = ca_pem.encode() if isinstance(ca_pem, str) else ca_pem
        (directory / "ca.crt").write_bytes(data)
        try:
            yield directory
        finally:
            shutil.rmtree(directory, ignore_errors=True)


class Distribution:
    """CNCF distribution (``docker-registry serve``): the reference registry, on 127.0.0.1 by default.

    ``users`` turns on htpasswd (bcrypt) basic auth; ``tls`` is (certificate, key) paths for HTTPS.
    """

    def __init__(self, workdir: Path, users: Mapping[str, str] | None = None,
                 tls: tuple[Path, Path] | None = None, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.binary = require_tool("docker-registry", "docker-registry")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.users = dict(users or {})
        self.tls = tls
        self.bind_host = host
        self.port = port or free_port(host)
        self.process: ManagedProcess | None = None

    @property
    def host(self) -> str:
        """``host:port``, the registry part of an image reference."""
        return f"{self.bind_host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "registry.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def _write_htpasswd(self) -> Path:
        htpasswd = require_tool("htpasswd", "apache2-utils")
        path = self.workdir / "htpasswd"
        lines = [run([htpasswd, "-Bbn", user, password]).stdout.strip() for user, password in self.users.items()]
        path.write_text("\n".join(lines) + "\n")
        return path

    def _config(self) -> dict[str, Any]:
        http: dict[str, Any] = {"addr": self.host, "secret": secrets.token_hex(16),
                                "headers": {"X-Content-Type-Options": ["nosniff"]}}
        if self.tls:
            http["tls"] = {"certificate": str(self.tls[0]), "key": str(self.tls[1])}
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "fields": {"service": "registry"}},
            "storage": {"filesystem": {"rootdirectory": str(self.workdir / "data")},
                        "delete": {"enabled": True}, "cache": {"blobdescriptor": "inmemory"}},
            "http": http,
        }
        if self.users:
            config["auth"] = {"htpasswd": {"realm": "distribution", "path": str(self._write_htpasswd())}}
        return config

    def start(self) -> Distribution:
        config_path = self.workdir / "config.yml"
        # JSON is YAML: no need for a YAML writer here.
        config_path.write_text(json.dumps(self._config(), indent=2))
        self.process = ManagedProcess([self.binary, "serve", str(config_path)], self.log_path).start()
        wait_until(self._ready, START_TIMEOUT, f"docker-registry on {self.host}", process=self.process)
        return self

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/v2/", timeout=1, verify=False).status_code in (200, 401)
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def creds(self, user: str) -> str:
        """``user:password`` for a configured user, as skopeo --creds and ctr --user want it."""
        return f"{user}:{self.users[user]}"
