"""The catalogue of image-pull failure causes that ``moorage explain`` recognises.

Each cause pairs the exact phrases the Go programs print (kubelet, containerd, dockerd, CRI-O,
podman, skopeo — the phrases come from Go's ``crypto/x509``, ``net``, ``net/http``, the containerd
resolver, containers/image and the registry's error codes) with what the failure means and the
command that fixes it. Patterns carry named groups; what they capture becomes a fact that the
summary and fix templates use, so the fix names the operator's real IP, registry and image.

Templates are ``str.format`` strings. Facts the message did not reveal render as ``<name>``
placeholders (see ``moorage.node.explain``), so a template may name any fact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_IPV4 = r"\d{1,3}(?:\.\d{1,3}){3}"
_IPV6 = r"[0-9A-Fa-f]*:[0-9A-Fa-f:]+"
_IP = rf"(?:{_IPV4}|{_IPV6})"

# Said once, used by every TLS cause: the misdiagnosis the seed scenario is about.
_CREDENTIALS_NEVER_FIX_TLS = (
    "Credentials play no part in this: the TLS handshake fails before any username or token is sent, "
    "so an imagePullSecret, a robot account or `docker login` on the node can never fix it (and "
    "`docker login` fails with the very same x509 error). Trust comes only from the container "
    "runtime's own trust store on each node: {trust_store}. A node where the same pull works has "
    "either that CA installed or the registry listed as insecure (verification switched off)."
)

_TRUST_FIX = ("On every node that pulls from {registry}: `moorage node-config --runtime {runtime} --apply` "
              "(installs the registry CA in the runtime's trust store for {registry})")


@dataclass(frozen=True, slots=True)
class Cause:
    """One reason a pull fails, how to recognise it, and how to fix it.

    ``rank`` orders diagnoses: lower is more specific and comes first. A ``wrapper`` (kubelet's
    ErrImagePull / ImagePullBackOff) only says *that* a pull failed, and a ``fallback`` only says
    roughly *where*; both are dropped when a more specific cause of the same message is found.
    """

    id: str
    rank: int
    summary: str
    why: str
    fix: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    family: str
    wrapper: bool = False
    fallback: bool = False
    #: Facts a cause implies regardless of what the message says (e.g. a default fix hint).
    defaults: dict[str, str] = field(default_factory=dict)


def _p(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


CAUSES: tuple[Cause, ...] = (
    Cause(
        id="tls-missing-ip-san",
        rank=10,
        family="tls",
        summary="The registry's TLS certificate has no IP SAN for {ip}, the address the node connected to.",
        why=("Go TLS clients (containerd, dockerd, CRI-O, podman, skopeo) accept a certificate for an IP "
             "address only if that exact IP is listed in its Subject Alternative Names; the Common Name is "
             "ignored. The image (or `docker login`) names the registry by IP, so the certificate must carry "
             "`IP:{ip}`. Go checks the name before the issuer, so once the IP is added the node must also "
             "trust the CA that signed the certificate. " + _CREDENTIALS_NEVER_FIX_TLS),
        fix=("`moorage tls renew --ip {ip}` (re-issues the server certificate with {ip} in its SANs; add one "
             "`--ip`/`--hostname` for every other address or name nodes use to reach the registry)",
             _TRUST_FIX,
             "Or pull by a hostname that the certificate already names, instead of by IP."),
        patterns=_p(
            rf"x509: cannot validate certificate for (?P<ip>{_IP}) because it doesn't contain any IP SANs",
            rf"x509: certificate is valid for (?P<valid_for>[^\"\n]+?), not (?P<ip>{_IP})\b",
        ),
    ),
    Cause(
        id="tls-missing-dns-san",
        rank=11,
        family="tls",
        summary="The registry's TLS certificate does not name {hostname}, the host name the node connected to.",
        why=("Go TLS clients accept a certificate for a host name only if the name is one of its DNS "
             "Subject Alternative Names (wildcards cover exactly one label). The certificate is valid for "
             "{valid_for}. " + _CREDENTIALS_NEVER_FIX_TLS),
        fix=("`moorage tls renew --hostname {hostname}` (re-issues the server certificate with {hostname} in "
             "its SANs; keep every other name and `--ip` nodes use)",
             _TRUST_FIX,
             "Or pull by a name the certificate already carries ({valid_for})."),
        patterns=_p(
            rf"x509: certificate is valid for (?P<valid_for>[^\"\n]+?), not (?!{_IP}\b)(?P<hostname>[^\s\"]+)",
            r"x509: certificate is not valid for any names, but wanted to match (?P<hostname>[^\s\"]+)",
        ),
        defaults={"valid_for": "no names"},
    ),
    Cause(
        id="tls-legacy-common-name",
        rank=12,
        family="tls",
        summary="The registry's TLS certificate names the server only in its Common Name and has no SANs.",
        why=("Since Go 1.15 a certificate's Common Name is never used as a host name: it needs Subject "
             "Alternative Names (harbor#16971). Old self-made certificates (`openssl req` without "
             "`subjectAltName`) fail like this in every current runtime. " + _CREDENTIALS_NEVER_FIX_TLS),
        fix=("`moorage tls renew --ip <registry IP> --hostname <registry name>` (re-issues the certificate with "
             "SANs for every address and name nodes use)",
             _TRUST_FIX),
        patterns=_p(r"x509: certificate relies on legacy Common Name field, use SANs instead"),
    ),
    Cause(
        id="tls-unknown-authority",
        rank=13,
        family="tls",
        summary="The node does not trust the CA that signed the registry's certificate ({registry}).",
        why=("The certificate names the registry correctly, but its issuer is not in the trust store the "
             "runtime uses, typically a private CA (or a self-signed certificate) that was never installed "
             "on this node. containerd reads `ca` from `certs.d/<host:port>/hosts.toml` only when "
             "`config_path` is set in config.toml (containerd#6485), and a `ca` set under a mirror's "
             "`[host]` entry does not apply to the `server` entry. " + _CREDENTIALS_NEVER_FIX_TLS),
        fix=(_TRUST_FIX,
             "Check from the node: `moorage doctor {image}` (shows which CA the registry presents and "
             "whether this node's runtime trusts it)"),
        patterns=_p(r"x509: certificate signed by unknown authority",
                    r"x509: certificate is not trusted"),
    ),
    Cause(
        id="tls-expired",
        rank=14,
        family="tls",
        summary="The registry's TLS certificate is outside its validity period (now {now} is {relation} {bound}).",
        why=("Go rejects a certificate before its NotBefore or after its NotAfter time. 'after' means the "
             "certificate (or its CA) has expired; 'before' means it is not valid yet — usually this node's "
             "clock is behind (check NTP) or the certificate was issued with a future start time. "
             "Credentials and imagePullSecrets do not affect this."),
        fix=("If it expired: `moorage tls renew --ip <registry IP> --hostname <registry name>` and restart the "
             "registry with the new certificate",
             "If the node's clock is wrong: fix time sync on the node (`timedatectl`, chrony/ntp)",
             "If the CA itself was replaced: " + _TRUST_FIX),
        patterns=_p(r"x509: certificate has expired or is not yet valid(?:: current time (?P<now>\S+) is "
                    r"(?P<relation>after|before) (?P<bound>[^\s\"]+))?"),
        defaults={"now": "the node's time", "relation": "outside", "bound": "the certificate's validity"},
    ),
    Cause(
        id="http-response-to-https-client",
        rank=15,
        family="tls",
        summary="The client spoke HTTPS to {registry}, but the registry serves plain HTTP.",
        why=("Runtimes use HTTPS for every registry unless told otherwise. A registry started without TLS "
             "answers the TLS handshake with a plain HTTP response, which Go reports as 'server gave HTTP "
             "response to HTTPS client' (or 'first record does not look like a TLS handshake' when the "
             "reply is not even HTTP). Credentials do not change the scheme."),
        fix=("Serve HTTPS: issue a certificate with `moorage tls renew --ip <registry IP> --hostname <registry "
             "name>`, restart the registry with `moorage serve --tls`, then `moorage node-config --runtime "
             "{runtime} --apply` on every node",
             "Or, on a trusted lab network only, declare {registry} plain HTTP in the runtime: containerd "
             "`certs.d/{registry}/hosts.toml` with `server = \"http://{registry}\"`; docker "
             "`\"insecure-registries\": [\"{registry}\"]` in /etc/docker/daemon.json; CRI-O/podman "
             "`insecure = true` for {registry} in /etc/containers/registries.conf"),
        patterns=_p(r"http: server gave HTTP response to HTTPS client",
                    r"tls: first record does not look like a TLS handshake"),
    ),
    Cause(
        id="plain-http-client-to-https-server",
        rank=16,
        family="tls",
        summary="The client spoke plain HTTP to {registry}, but the registry only serves HTTPS.",
        why=("The runtime was told the registry is plain HTTP (containerd treats localhost/127.0.0.1 and "
             "`server = \"http://...\"` hosts that way, docker its insecure-registries, `ctr --plain-http`) "
             "but the registry speaks TLS. Go's TLS server answers such a request with '400 Bad Request: "
             "Client sent an HTTP request to an HTTPS server'; containerd shows only the 400."),
        fix=("Use HTTPS: set `server = \"https://{registry}\"` in containerd's `certs.d/{registry}/hosts.toml` "
             "(or drop `--plain-http` / the insecure-registries entry) and trust the CA with "
             "`moorage node-config --runtime {runtime} --apply`",),
        patterns=_p(r"Client sent an HTTP request to an HTTPS server",
                    r"malformed HTTP response \"\\x15\\x03",
                    r"failed with status code \[manifests [^\]]*\]: 400 Bad Request"),
    ),
    Cause(
        id="tls-other",
        rank=40,
        family="tls",
        fallback=True,
        summary="The TLS connection to {registry} failed: {tls_error}.",
        why=("The registry's certificate or TLS setup was rejected. This happens before credentials are "
             "sent, so imagePullSecrets and `docker login` do not help."),
        fix=("`moorage doctor {image}` on the failing node (shows the certificate chain, its SANs and "
             "whether the runtime trusts it)", _TRUST_FIX),
        patterns=_p(r"(?P<tls_error>(?:x509|tls): [^\"\n]+)"),
    ),
    Cause(
        id="pull-secret-missing",
        rank=18,
        family="auth",
        summary="The pod names image pull secret(s) {secrets} that do not exist in its namespace.",
        why=("A Secret is namespaced: the kubelet can only use a pull secret from the pod's own namespace "
             "(kubernetes#20786). With the secret missing, the pull goes out without credentials and a "
             "private project answers 401."),
        fix=("`moorage pull-secret {project} --apply --namespace <pod namespace>` (creates the "
             "dockerconfigjson Secret from a pull-only robot and attaches it to the namespace's service "
             "account)",),
        patterns=_p(r"Unable to retrieve some image pull secrets \((?P<secrets>[^)]*)\)"),
    ),
    Cause(
        id="denied",
        rank=20,
        family="auth",
        summary="The registry refused the pull of {repository}: the credentials have no pull permission there.",
        why=("'denied' / 403 / 'insufficient_scope' is an authorization failure: the registry knows who is "
             "asking (or that nobody is) and that identity may not pull this repository. The account (or "
             "robot) in the pull secret needs a role on the project ({project}); a private project refuses "
             "anonymous pulls. Docker also prints 'pull access denied ... repository does not exist' when "
             "the repository is simply missing, so check the name too."),
        fix=("Grant pull on the project: a robot with pull permission on {project}, then "
             "`moorage pull-secret {project} --apply` in the pod's namespace",
             "Check the repository and tag exist: `moorage doctor {image}`"),
        patterns=_p(r"denied: requested access to the resource is denied",
                    r"pull access denied(?: for (?P<repository>[^\s,]+))?",
                    r"insufficient_scope",
                    r"\b403 Forbidden",
                    r"unauthorized to access repository: (?P<repository>[^,\s]+), action: (?:pull|push|delete)"),
    ),
    Cause(
        id="unauthorized",
        rank=21,
        family="auth",
        summary="The registry rejected the pull as unauthenticated: no credentials, or wrong ones, for {registry}.",
        why=("401 / 'authentication required' means the registry did not accept who was asking. The kubelet "
             "passes the credentials from the pod's imagePullSecrets (and the node's config.json) to the "
             "runtime; none matched {registry} — the secret is missing, in another namespace, keyed by a "
             "different host:port than the image (10.0.0.5:443 is not 10.0.0.5), of the wrong type, or its "
             "password/robot secret expired. `docker login` on the node is not needed when the secret is right."),
        fix=("`moorage pull-secret {project} --apply` (a pull-only robot for {project}, written as a correct "
             "kubernetes.io/dockerconfigjson Secret keyed by {registry}, attached to the namespace's service "
             "account)",
             "If a robot is used: check it is not disabled or expired, and refresh its secret"),
        patterns=_p(r"unauthorized: (?:authentication required|incorrect username or password)",
                    r"\b401 Unauthorized",
                    r"failed to authorize: failed to fetch (?:anonymous|oauth) token",
                    r"no basic auth credentials",
                    r"\bunauthorized:"),
    ),
    Cause(
        id="not-found",
        rank=22,
        family="registry",
        summary="The registry has no image {image}: the tag or the repository does not exist.",
        why=("The registry answered, accepted the credentials, and reported the manifest (tag or digest) or "
             "the repository unknown. Typical causes: a typo in the tag, an image pushed to another project, "
             "or a tag deleted by retention. Credentials or TLS settings are not the problem."),
        fix=("`moorage doctor {image}` (lists the tags the repository has and the closest matches)",
             "Push the image, or fix the image reference in the pod spec"),
        patterns=_p(r"manifest unknown",
                    r"manifest for (?P<image>[^\s]+) not found",
                    r"failed to resolve reference \"[^\"]+\": (?P<image>[^\s\"]+): not found",
                    r"name unknown|repository name not known to registry",
                    r"repository does not exist"),
    ),
    Cause(
        id="wrong-platform",
        rank=23,
        family="registry",
        summary="The image {image} has no variant for this node's platform {platform}.",
        why=("The tag is a multi-platform index (or a single-platform image) that lists no manifest for the "
             "node's OS/architecture, e.g. an amd64-only image on an arm64 node."),
        fix=("`moorage doctor {image}` (lists the platforms the tag provides)",
             "Build and push the image for this platform (e.g. `docker buildx build --platform "
             "linux/amd64,linux/arm64 --push`), or schedule the pod on matching nodes with a "
             "`kubernetes.io/arch` nodeSelector"),
        patterns=_p(r"no match for platform in manifest",
                    r"no matching manifest for (?P<platform>\S+) in the manifest list entries",
                    r"no image found in (?:manifest list|image index) for architecture "
                    r"\"?(?P<platform>[^\s\",]+)"),
        defaults={"platform": "(the node's OS/architecture)"},
    ),
    Cause(
        id="too-many-requests",
        rank=24,
        family="registry",
        summary="The registry rate-limited the pull (429 Too Many Requests) at {registry}.",
        why=("The registry, or the upstream behind a proxy-cache project (e.g. Docker Hub's pull rate limit "
             "for anonymous pulls), refused more requests for now. Retries by many nodes make it worse."),
        fix=("Pull through your own registry: push the image to a moorage project (or use a proxy-cache "
             "project) and point the pod at it",
             "Authenticate upstream pulls (`moorage pull-secret {project} --apply`) to get the higher limit"),
        patterns=_p(r"\b429 Too Many Requests", r"toomanyrequests", r"pull rate limit"),
    ),
    Cause(
        id="connection-refused",
        rank=30,
        family="network",
        summary="Nothing accepts connections at {address}: the registry is down or listens elsewhere.",
        why=("The node reached the host but no process listens on that port (or a firewall rejected it). "
             "Check the port in the image reference: `host:443` and `host:5000` are different registries "
             "to the runtime."),
        fix=("Check the registry runs and listens on {address}: `moorage doctor {image}`",
             "Fix the port in the image reference if the registry listens on another one"),
        patterns=_p(r"dial tcp (?P<address>[^\s:]+(?::\d+)?|\[[^\]]+\]:\d+): connect: connection refused"),
    ),
    Cause(
        id="io-timeout",
        rank=31,
        family="network",
        summary="The connection to {address} timed out: the node cannot reach the registry.",
        why=("No answer within the client's timeout: a firewall dropping packets, a wrong IP, routing "
             "between the node and the registry, or a proxy (HTTPS_PROXY without NO_PROXY for the registry) "
             "in the way. Credentials and certificates are not involved yet."),
        fix=("From the node: `moorage doctor {image}` (tests TCP, TLS and auth step by step)",
             "Check the runtime's proxy settings: add {registry} to NO_PROXY for containerd/dockerd/CRI-O"),
        patterns=_p(r"dial tcp (?P<address>\S+?): i/o timeout",
                    r"net/http: TLS handshake timeout",
                    r"Client\.Timeout exceeded while awaiting headers",
                    r"context deadline exceeded"),
    ),
    Cause(
        id="unreachable",
        rank=32,
        family="network",
        summary="The node has no route to {address}.",
        why="The node's network cannot reach the registry's address at all (wrong IP, routing, or a "
            "firewall that rejects with 'no route').",
        fix=("Check the registry address and the node's routes: `moorage doctor {image}`",),
        patterns=_p(r"dial tcp (?P<address>\S+?): connect: (?:no route to host|network is unreachable)"),
    ),
    Cause(
        id="no-such-host",
        rank=33,
        family="network",
        summary="The node cannot resolve the registry host name {hostname}.",
        why=("DNS on the node (the runtime resolves with the node's /etc/resolv.conf and /etc/hosts, not "
             "the cluster DNS used by pods) has no record for the name."),
        fix=("Add a DNS record for {hostname} (or an /etc/hosts entry on every node), or use a name the "
             "nodes resolve; keep that name in the certificate (`moorage tls renew --hostname {hostname}`)",),
        patterns=_p(r"lookup (?P<hostname>[^\s:]+)(?: on (?P<dns_server>\S+?))?: no such host",
                    r"lookup (?P<hostname>[^\s:]+)(?: on \S+?)?: (?:server misbehaving|"
                    r"Temporary failure in name resolution)"),
    ),
    Cause(
        id="connection-dropped",
        rank=34,
        family="network",
        fallback=True,
        summary="The connection to the registry was cut off mid-request.",
        why=("The registry (or a load balancer/proxy in front of it) closed the connection: a crash, a "
             "request body limit, an idle timeout on a long layer download, or a TLS/plain-HTTP mismatch "
             "at a proxy."),
        fix=("`moorage doctor {image}` from the node, and check the registry's and proxy's logs",),
        patterns=_p(r"connection reset by peer", r"unexpected EOF", r": EOF\b"),
    ),
    Cause(
        id="invalid-reference",
        rank=25,
        family="spec",
        summary="The image reference in the pod spec is not a valid image name.",
        why=("Image names are lowercase; a registry with a port needs the form host:port/path:tag; a scheme "
             "(https://) or a trailing slash is not allowed."),
        fix=("Write the image as `{registry}/<project>/<repository>:<tag>`, e.g. "
             "`192.168.2.250:443/test-1/traefik:2.6.2`",),
        patterns=_p(r"invalid reference format", r"InvalidImageName"),
    ),
    Cause(
        id="image-never-pull",
        rank=26,
        family="spec",
        summary="imagePullPolicy is Never and the image is not on this node.",
        why="With `imagePullPolicy: Never` the kubelet never pulls; the image must already be on every node.",
        fix=("Use `imagePullPolicy: IfNotPresent`, or preload the image on the node",),
        patterns=_p(r"is not present with pull policy of Never", r"ErrImageNeverPull"),
    ),
    Cause(
        id="disk-full",
        rank=27,
        family="node",
        summary="The node ran out of disk space while storing or unpacking the image.",
        why="The runtime's image store (e.g. /var/lib/containerd) is full.",
        fix=("Free space on the node: `crictl rmi --prune`, or raise the kubelet's image GC thresholds",),
        patterns=_p(r"no space left on device"),
    ),
    Cause(
        id="image-pull-backoff",
        rank=90,
        family="kubelet",
        wrapper=True,
        summary="The kubelet is waiting before it retries a pull of {image} that failed before.",
        why=("ImagePullBackOff / 'Back-off pulling image' carries no cause of its own: it is the retry "
             "delay after an ErrImagePull. The real cause is in the earlier 'Failed to pull image' event "
             "for the same pod."),
        fix=("`kubectl describe pod <pod>` (or `kubectl get events --field-selector reason=Failed`) and "
             "run `moorage explain` on the 'Failed to pull image ...' message",
             "Or, on the node the pod is scheduled to: `moorage doctor {image}`"),
        patterns=_p(r"Back-off pulling image \"(?P<image>[^\"]+)\"", r"ImagePullBackOff"),
    ),
    Cause(
        id="err-image-pull",
        rank=91,
        family="kubelet",
        wrapper=True,
        summary="The kubelet's pull of {image} failed; the runtime's own error text is needed to say why.",
        why=("ErrImagePull only says that the runtime failed. The 'Failed to pull image' event message "
             "ends with the runtime's error (after 'rpc error: code = ... desc ='), which names the cause."),
        fix=("`kubectl describe pod <pod>` and run `moorage explain` on the full 'Failed to pull image' "
             "message",
             "Or, on the node the pod is scheduled to: `moorage doctor {image}`"),
        patterns=_p(r"Failed to pull image \"(?P<image>[^\"]+)\"", r"ErrImagePull"),
    ),
)

BY_ID: dict[str, Cause] = {cause.id: cause for cause in CAUSES}
