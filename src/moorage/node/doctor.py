"""``moorage doctor``: run on a node, find the first thing that stops a pull, name it and its fix.

The kubelet reports every failure as ``ErrImagePull``; the seed's operator read an x509 error and
concluded that every node must ``docker login``. The doctor walks the pull the way the runtime on
*this* node does it — reference, DNS, TCP, TLS against this runtime's trust store, scheme, ``/v2/``,
the credential the kubelet would pick, the pull token, the manifest — and stops at the first failure.
Findings use the cause ids and fix texts of :mod:`moorage.node.causes` (shared with ``explain``), so a
cause reads the same whether it was diagnosed from a message or found by probing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from moorage.client.auth import Credentials
from moorage.core.reference import ImageReference, InvalidReference, parse_image_reference
from moorage.kube.keyring import KeyringEntry, KeyringError
from moorage.node.causes import BY_ID, Cause
from moorage.node.checks import credentials as creds
from moorage.node.checks import network, registry, tlscheck
from moorage.node.checks.trust import RuntimeTrust, detect_runtime, runtime_trust
from moorage.node.explain import Diagnosis
from moorage.node.runtime_config import Runtime

Status = Literal["pass", "fail", "skip"]
RuntimeChoice = Literal["auto", "docker", "containerd", "crio"]

STEPS: tuple[tuple[str, str], ...] = (
    ("reference", "image reference parses"),
    ("resolve", "registry name resolves"),
    ("connect", "registry port answers"),
    ("tls", "TLS certificate trusted by the runtime, SANs cover the host, not expired"),
    ("scheme", "runtime and registry speak the same scheme (HTTPS vs plain HTTP)"),
    ("api", "/v2/ answers"),
    ("credentials", "credential the kubelet would pick"),
    ("token", "pull access granted"),
    ("manifest", "manifest exists"),
)
_TITLES = dict(STEPS)

# Causes only the doctor can find (explain never sees them as messages).
_DOCTOR_CAUSES: dict[str, Cause] = {c.id: c for c in (
    Cause(
        id="no-credentials", rank=19, family="auth", patterns=(),
        summary="The kubelet would send no credentials for {image}: no pull secret or node config key matches "
                "{registry}.",
        why=("The kubelet picks credentials by matching each `auths` key against the image: the host, the port "
             "(`{registry}` needs the same port in the key: `10.0.0.5` does not match `10.0.0.5:443`) and a "
             "path prefix must all match, and the Secret must be in the pod's namespace with type "
             "kubernetes.io/dockerconfigjson. With no match the pull goes out anonymously and the private "
             "project {project} refuses it. `docker login` on the node is not the fix: the pod's pull secret is."),
        fix=("`moorage pull-secret {project} --apply --namespace <pod namespace>` (a pull-only robot, written as a "
             "Secret keyed by {registry} exactly as the image spells it)",
             "Or re-create the Secret with the right server: `moorage secret create <name> --server {registry} "
             "--username <user> --password-stdin`"),
    ),
    Cause(
        id="bad-pull-secret", rank=19, family="auth", patterns=(),
        summary="The pull secret cannot be parsed: the kubelet fails every pull that uses it.",
        why="{detail}",
        fix=("Re-create it with `moorage secret create <name> --server {registry} --username <user> "
             "--password-stdin` (no hand-made base64)",),
    ),
    Cause(
        id="containerd-config-path", rank=14, family="tls", patterns=(),
        summary="containerd on this node does not read the registry trust in certs.d: its CRI config sets no "
                "config_path, so pulls of {image} fail with x509: certificate signed by unknown authority.",
        why=("{config_problem}. containerd 1.6/1.7 (Debian 12 ships 1.6) read hosts.toml files only when "
             "`config_path` is set under [plugins.\"io.containerd.grpc.v1.cri\".registry] in config.toml, and "
             "read that file only when they start; 2.x read /etc/containerd/certs.d by default. An "
             "imagePullSecret never carries trust, and `ctr --hosts-dir` tests pass while the kubelet's pulls fail."),
        fix=("`moorage node-config --runtime containerd --registry {registry} --ca-fingerprint <sha256 printed by "
             "moorage serve> --apply --restart{root_flag}`: writes the trust and sets config_path in config.toml "
             "in place (a backup kept), then restarts containerd",
             "Or by hand: add `config_path = \"/etc/containerd/certs.d\"` under "
             "[plugins.\"io.containerd.grpc.v1.cri\".registry] in /etc/containerd/config.toml, then "
             "`systemctl restart containerd`"),
    ),
    Cause(
        id="not-a-registry", rank=28, family="registry", patterns=(),
        summary="{address} answers, but not as an OCI/Docker registry: GET /v2/ returned {status}.",
        why=("Every runtime starts a pull with GET /v2/, which a registry answers with 200 or 401 plus a "
             "WWW-Authenticate challenge. Another service (or a proxy path) is listening at this address."),
        fix=("Point the image at the registry's own host:port, or fix the proxy in front of it",),
    ),
    Cause(
        id="token-service-error", rank=29, family="auth", patterns=(),
        summary="The registry's token service failed: {detail}.",
        why="The runtime cannot get a pull token, whatever the credentials; the registry side must be fixed.",
        fix=("Check the registry's log (`moorage serve` output) for the token service error",),
    ),
    Cause(
        id="registry-error", rank=29, family="registry", patterns=(),
        summary="The registry answered the manifest request for {image} with {status}: {detail}.",
        why="The registry itself failed to serve the manifest.",
        fix=("Check the registry's log (`moorage serve` output)",),
    ),
)}


class _Facts(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return f"<{key.replace('_', ' ')}>"


@dataclass
class StepResult:
    id: str
    status: Status
    detail: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return _TITLES[self.id]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "status": self.status, "detail": self.detail,
                "facts": self.facts}


@dataclass
class DoctorReport:
    image: str
    runtime: Runtime
    runtime_reason: str
    root: str
    steps: list[StepResult] = field(default_factory=list)
    finding: Diagnosis | None = None
    notes: list[str] = field(default_factory=list)
    trust: RuntimeTrust | None = None

    @property
    def ok(self) -> bool:
        return self.finding is None

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "ok": self.ok, "runtime": self.runtime, "runtime_reason": self.runtime_reason,
                "root": self.root, "steps": [s.to_dict() for s in self.steps],
                "finding": self.finding.to_dict() if self.finding else None, "notes": self.notes,
                "trust": self.trust.to_dict() if self.trust else None}


@dataclass(frozen=True)
class DoctorOptions:
    image: str
    secret: Path | None = None
    docker_config: Path | None = None
    runtime: RuntimeChoice = "auto"
    root: Path = Path("/")
    timeout: float = 5.0


@dataclass
class _Inputs:
    """The credential files, read before any probing so a bad path is a usage error, not a finding."""

    secret: dict[str, Any] | None
    docker_config: list[KeyringEntry]
    node_entries: list[KeyringEntry]
    consulted: list[str]


def load_inputs(options: DoctorOptions) -> _Inputs:
    """Raises :class:`creds.CredentialInputError` for unreadable ``--secret``/``--docker-config`` files."""
    secret = creds.load_secret(options.secret) if options.secret else None
    docker_config = creds.load_docker_config(options.docker_config) if options.docker_config else []
    try:
        node_entries, paths = creds.node_file_entries(options.root)
    except KeyringError as exc:
        raise creds.CredentialInputError(f"a node credential file is broken: {exc}") from None
    consulted = ([f"secret {options.secret}"] if options.secret else []) + \
        ([f"file {options.docker_config}"] if options.docker_config else []) + [f"file {p}" for p in paths]
    return _Inputs(secret, docker_config, node_entries, consulted)


def _diagnosis(cause_id: str, facts: dict[str, str], evidence: str = "", extra_fix: tuple[str, ...] = ()
               ) -> Diagnosis:
    cause = BY_ID.get(cause_id) or _DOCTOR_CAUSES[cause_id]
    values = _Facts({**cause.defaults, **facts})
    # The doctor is already running: drop fix steps that only say "run the doctor".
    fixes = [step.format_map(values) for step in cause.fix if "moorage doctor" not in step]
    fixes += [step.format_map(values) for step in extra_fix]
    return Diagnosis(cause=cause.id, summary=cause.summary.format_map(values), why=cause.why.format_map(values),
                     fix=tuple(fixes), evidence=evidence,
                     facts={k: v for k, v in facts.items() if not str(v).startswith("<")})


class _Run:
    """One doctor run: the steps so far, and the facts findings are rendered with."""

    def __init__(self, options: DoctorOptions, inputs: _Inputs) -> None:
        self.options = options
        self.inputs = inputs
        runtime, reason = ((options.runtime, f"--runtime {options.runtime}") if options.runtime != "auto"
                           else detect_runtime(options.root))
        self.report = DoctorReport(image=options.image, runtime=runtime, runtime_reason=reason,
                                   root=str(options.root))
        self.facts: dict[str, str] = {"image": options.image, "runtime": runtime}

    def passed(self, step: str, detail: str, **facts: Any) -> None:
        self.report.steps.append(StepResult(step, "pass", detail, facts))

    def skipped(self, step: str, detail: str) -> None:
        self.report.steps.append(StepResult(step, "skip", detail))

    def failed(self, step: str, cause: str, detail: str, evidence: str = "", extra_fix: tuple[str, ...] = (),
               **facts: Any) -> DoctorReport:
        self.report.steps.append(StepResult(step, "fail", detail, facts))
        self.report.finding = _diagnosis(cause, self.facts, evidence or detail, extra_fix)
        return self.report


def run_doctor(options: DoctorOptions, inputs: _Inputs | None = None) -> DoctorReport:
    """Check everything a pull of ``options.image`` needs on this node, stopping at the first failure."""
    run = _Run(options, inputs or load_inputs(options))
    try:
        ref = parse_image_reference(options.image)
    except InvalidReference as exc:
        return run.failed("reference", "invalid-reference", str(exc))
    run.facts.update(image=ref.original, registry=ref.registry, repository=ref.repository, project=ref.project)
    run.passed("reference", f"registry {ref.registry}, repository {ref.repository}, "
                            f"{'digest ' + ref.digest if ref.digest else 'tag ' + str(ref.tag)}",
               registry=ref.registry, repository=ref.repository, tag=ref.tag, digest=ref.digest)
    trust = runtime_trust(run.report.runtime, ref.registry, options.root)
    run.report.trust = trust
    run.report.notes += trust.notes
    run.facts["trust_store"] = trust.trust_store
    port = ref.port or (443 if trust.scheme == "https" else 80)
    address = _network(run, ref, port)
    if address is None:
        return run.report
    base_url = _transport(run, ref, trust, address)
    if base_url is None:
        return run.report
    return _registry_steps(run, ref, trust, base_url)


def _network(run: _Run, ref: ImageReference, port: int) -> tuple[str, int] | None:
    timeout = run.options.timeout
    run.facts.update(hostname=ref.host, address=network.hostport(ref.host, port))
    resolved = network.resolve(ref.host, port)
    if isinstance(resolved, network.NetworkFailure):
        run.failed("resolve", resolved.cause, resolved.message)
        return None
    run.passed("resolve", f"{ref.host} → {', '.join(a for a, _ in resolved)}",
               addresses=[a for a, _ in resolved])
    connected = network.connect(resolved, timeout)
    if isinstance(connected, network.NetworkFailure):
        run.facts["address"] = connected.address
        run.failed("connect", connected.cause, connected.message)
        return None
    run.passed("connect", f"{network.hostport(*connected)} accepts TCP connections")
    return connected


def _transport(run: _Run, ref: ImageReference, trust: RuntimeTrust, address: tuple[str, int]) -> str | None:
    """Steps 4 and 5; returns the base URL the runtime would use, or None after a finding."""
    probe = tlscheck.probe_protocol(address, ref.host, run.options.timeout)
    netloc = "registry-1.docker.io" if ref.registry == "docker.io" else ref.registry
    run.facts["ip"] = ref.host
    if trust.scheme == "http":
        run.skipped("tls", f"{trust.runtime} is configured to use plain HTTP for {ref.registry}")
        if probe.protocol == "tls":
            run.failed("scheme", "plain-http-client-to-https-server",
                       f"{trust.runtime} speaks plain HTTP to {ref.registry} ({', '.join(trust.sources)}), "
                       "but the registry only speaks TLS", evidence="the server completed a TLS handshake")
            return None
        run.passed("scheme", f"the registry answers plain HTTP ({probe.detail})")
        return f"http://{netloc}"
    if probe.protocol == "http":
        if trust.http_fallback:
            run.skipped("tls", "the registry speaks plain HTTP; the runtime treats it as insecure")
            run.passed("scheme", f"{trust.runtime} falls back to plain HTTP for this insecure registry")
            return f"http://{netloc}"
        run.skipped("tls", f"the registry does not speak TLS ({probe.detail})")
        run.failed("scheme", "http-response-to-https-client",
                   f"{trust.runtime} uses HTTPS for {ref.registry}, but the registry answered the TLS handshake "
                   "with plain HTTP", evidence="http: server gave HTTP response to HTTPS client")
        return None
    if probe.protocol != "tls" or probe.leaf_der is None:
        run.facts["tls_error"] = probe.detail
        run.failed("tls", "tls-other", f"TLS handshake with {ref.registry} failed: {probe.detail}")
        return None
    verdict = tlscheck.check_tls(address, ref.host, probe.leaf_der, trust, run.options.timeout)
    run.report.notes += verdict.notes
    cert = verdict.certificate
    assert cert is not None
    cert_facts: dict[str, Any] = {"subject": cert.subject, "issuer": cert.issuer, "dns_names": cert.dns_names,
                  "ip_addresses": cert.ip_addresses, "not_after": cert.not_after,
                  "ca_files": [str(p) for p in trust.ca_files]}
    if not verdict.ok:
        run.facts.update(verdict.facts)
        if trust.ignored and trust.config_problem and verdict.cause == "tls-unknown-authority":
            # The trust is on the node, but this containerd never reads it: name that, not the CA.
            run.facts.update(config_problem=trust.config_problem,
                             root_flag="" if str(trust.root) == "/" else f" --root {trust.root}")
            run.failed("tls", "containerd-config-path", f"{verdict.message}: {trust.config_problem} (not read: "
                       f"{', '.join(str(p) for p in trust.ignored)})", evidence=verdict.message, **cert_facts)
            return None
        _tls_failure(run, ref, trust, verdict, cert_facts)
        return None
    anchors = ", ".join(str(p) for p in trust.ca_files) or "the system CA bundle"
    detail = (f"certificate for {', '.join(cert.dns_names + cert.ip_addresses)}, issued by {cert.issuer}, "
              f"valid until {cert.not_after[:10]}; trusted via {anchors}")
    if trust.skip_verify:
        detail = f"not verified: {trust.runtime} skips verification for {ref.registry}"
    run.passed("tls", detail, **cert_facts)
    run.passed("scheme", f"HTTPS answered with {probe.detail}")
    return f"https://{netloc}"


def _tls_failure(run: _Run, ref: ImageReference, trust: RuntimeTrust, verdict: tlscheck.TlsVerdict,
                 cert_facts: dict[str, Any]) -> None:
    extra: tuple[str, ...] = ()
    if verdict.cause in ("tls-unknown-authority", "tls-missing-ip-san", "tls-missing-dns-san"):
        root = "" if str(trust.root) == "/" else f" --root {trust.root}"
        extra = (f"Exactly, on this node: `moorage node-config --runtime {trust.runtime} --registry {ref.registry} "
                 f"--ca-file ca.crt --apply{root}` with ca.crt from `moorage tls ca` on the registry host (the CA "
                 f"that must be trusted is {verdict.certificate.issuer if verdict.certificate else 'its issuer'})",)
    looked = ", ".join(str(p) for p in trust.ca_files) or "no registry CA configured"
    detail = verdict.message
    if verdict.also:
        detail += " (also: " + "; ".join(verdict.also) + ")"
    detail += f"; {trust.runtime} trusts: {looked} + system CAs"
    if trust.config_problem:
        # Installing the CA alone would not be enough here: say so now, not after the next failed pull.
        detail += f"; and {trust.config_problem}"
        extra += ("containerd here reads no certs.d until config_path is set in config.toml: `moorage node-config "
                  "--apply` sets it (editing the file in place, a backup kept); restart containerd after",)
    run.failed("tls", verdict.cause or "tls-other", detail, evidence=verdict.message, extra_fix=extra,
               **cert_facts)


def _client(trust: RuntimeTrust, timeout: float) -> httpx.Client:
    # The certificate was judged the Go way already; this context only keeps the chain check on.
    ctx, _ = tlscheck.verification_context(trust, verify=not trust.skip_verify)
    return httpx.Client(verify=ctx, timeout=timeout, follow_redirects=True)


def _registry_steps(run: _Run, ref: ImageReference, trust: RuntimeTrust, base_url: str) -> DoctorReport:
    try:
        with _client(trust, run.options.timeout) as client:
            return _api_and_auth(run, ref, client, base_url)
    except httpx.TransportError as exc:
        step = next(sid for sid, _ in STEPS if sid not in {s.id for s in run.report.steps})
        run.facts["tls_error"] = str(exc)
        return run.failed(step, "connection-dropped", f"{base_url}: {exc or type(exc).__name__}")


def _api_and_auth(run: _Run, ref: ImageReference, client: httpx.Client, base_url: str) -> DoctorReport:
    pinged = registry.ping(client, base_url)
    if pinged.status == 200 or (pinged.status == 401 and pinged.challenges):
        how = "no authentication required" if pinged.status == 200 else \
            ", ".join(f"{c.scheme} realm={c.realm}" for c in pinged.challenges)
        run.passed("api", f"GET {base_url}/v2/ → {pinged.status} ({how})", status=pinged.status)
    else:
        run.facts["status"] = str(pinged.status)
        return run.failed("api", "not-a-registry", f"GET {base_url}/v2/ → {pinged.status}"
                          + (" without a WWW-Authenticate challenge" if pinged.status == 401 else ""))
    inputs = run.inputs
    try:
        choice = creds.choose(ref.original, inputs.secret, inputs.docker_config, inputs.node_entries,
                              inputs.consulted)
    except KeyringError as exc:
        run.facts["detail"] = str(exc)
        return run.failed("credentials", "bad-pull-secret", str(exc))
    run.report.notes += choice.notes
    if choice.matches:
        first = choice.matches[0]
        more = f" (then {len(choice.matches) - 1} more)" if len(choice.matches) > 1 else ""
        run.passed("credentials", f"the kubelet would send {first.describe()}{more}",
                   candidates=choice.describe(), consulted=choice.consulted)
        return _token_and_manifest(run, ref, client, base_url, pinged, choice)
    anonymous = registry.pull_access(client, base_url, pinged, ref.repository, None)
    if anonymous.granted:
        run.passed("credentials", "the kubelet would send no credentials; this registry allows anonymous pulls "
                                  f"of {ref.repository} ({anonymous.message})", candidates=[],
                   consulted=choice.consulted)
        run.passed("token", anonymous.message)
        return _manifest(run, ref, client, base_url, anonymous.header)
    misses = creds.near_misses(choice.considered, ref.original)
    detail = f"the kubelet would send no credentials for {choice.repository}: " + (
        "; ".join(misses) if misses else f"none configured (looked in {', '.join(choice.consulted)})")
    return run.failed("credentials", "no-credentials", detail, evidence=anonymous.message,
                      candidates=[], near_misses=misses, consulted=choice.consulted)


def _token_and_manifest(run: _Run, ref: ImageReference, client: httpx.Client, base_url: str,
                        pinged: registry.Ping, choice: creds.CredentialChoice) -> DoctorReport:
    attempts: list[tuple[str, registry.PullAuth]] = []
    # The kubelet tries each matching credential in turn until a pull succeeds.
    for match in choice.matches:
        outcome = registry.pull_access(client, base_url, pinged, ref.repository,
                                       Credentials(match.username, match.password))
        attempts.append((match.describe(), outcome))
        if outcome.granted:
            run.passed("token", f"{outcome.message} (credential: {match.describe()})", **outcome.details)
            return _manifest(run, ref, client, base_url, outcome.header)
    failure = attempts[0][1]
    first = choice.matches[0]
    run.facts.update(username=first.username, key=first.raw_key, source=str(first.source),
                     detail=failure.message)
    detail = "; ".join(f"{w}: {o.message}" for w, o in attempts)
    extra: tuple[str, ...] = ()
    if failure.cause == "unauthorized":
        extra = (f"The credential the kubelet sends is user {first.username!r} under key {first.raw_key!r} from "
                 f"{first.source}: its password is wrong or the account is disabled/expired — re-create it with "
                 f"`moorage secret create <name> --server {ref.registry} --username {first.username} "
                 "--password-stdin`",)
    elif failure.cause == "denied":
        extra = (f"Or give {first.username!r} a role on project {ref.project} (Guest is enough to pull; "
                 f"Harbor API: POST /api/v2.0/projects/{ref.project}/members)",)
    return run.failed("token", failure.cause or "unauthorized", detail, evidence=failure.message,
                      extra_fix=extra, **failure.details)


def _manifest(run: _Run, ref: ImageReference, client: httpx.Client, base_url: str,
              authorization: str | None) -> DoctorReport:
    head = registry.head_manifest(client, base_url, ref.repository, ref.reference, authorization)
    if head.status == 200:
        run.passed("manifest", f"{ref.repository}:{ref.reference} → {head.digest} ({head.media_type})",
                   digest=head.digest, media_type=head.media_type)
        return run.report
    run.facts.update(status=str(head.status), detail=head.error or f"HTTP {head.status}")
    if head.status == 404:
        tags = _tags(client, base_url, ref.repository, authorization)
        extra = (f"Tags {ref.repository} has: {', '.join(tags[:20])}" if tags
                 else f"The repository {ref.repository} has no tags (or does not exist)",)
        return run.failed("manifest", "not-found", f"HEAD {ref.repository}/manifests/{ref.reference} → 404 "
                          f"({head.error or 'not found'})", extra_fix=extra, tags=tags)
    if head.status in (401, 403):
        return run.failed("manifest", "denied", f"HEAD {ref.repository}/manifests/{ref.reference} → "
                          f"{head.status} ({head.error})")
    return run.failed("manifest", "registry-error", f"HEAD {ref.repository}/manifests/{ref.reference} → "
                      f"{head.status} ({head.error})")


def _tags(client: httpx.Client, base_url: str, repository: str, authorization: str | None) -> list[str]:
    headers = {"Authorization": authorization} if authorization else {}
    try:
        response = client.get(f"{base_url}/v2/{repository}/tags/list", headers=headers)
        tags = response.json().get("tags") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return []
    return sorted(str(t) for t in tags) if isinstance(tags, list) else []
