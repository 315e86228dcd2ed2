"""Name the real cause of an image pull failure from the text of a kubelet event or a runtime error.

The operator in the seed scenario read ``x509: cannot validate certificate for 192.168.2.250 because
it doesn't contain any IP SANs`` and concluded that every node must ``docker login``. ``explain``
maps such text to the cause in ``moorage.node.causes`` and renders its fix with the IP, registry,
image and runtime taken from the message itself, so the answer is the command to run, not a hint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from moorage.core.reference import DOCKER_HUB, split_image, split_registry
from moorage.node.causes import CAUSES, Cause

NOT_RECOGNISED = "not-recognised"

# Where each runtime looks for a registry's CA; quoted in every TLS explanation.
_TRUST_STORES = {
    "containerd": "containerd reads /etc/containerd/certs.d/{registry}/hosts.toml (`ca = ...`), "
                  "only when `config_path` is set in /etc/containerd/config.toml",
    "docker": "dockerd reads /etc/docker/certs.d/{registry}/ca.crt",
    "crio": "CRI-O, podman and skopeo read /etc/containers/certs.d/{registry}/ca.crt",
}
_ANY_TRUST_STORE = ("containerd: /etc/containerd/certs.d/{registry}/hosts.toml (with `config_path` set); "
                    "docker: /etc/docker/certs.d/{registry}/ca.crt; CRI-O/podman: "
                    "/etc/containers/certs.d/{registry}/ca.crt")

# Phrases that only one runtime's client library prints; they tell which trust store applies.
_RUNTIME_MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("containerd", re.compile(r"failed to pull and unpack image|failed to resolve reference|"
                              r"failed to do request|pulling from host \S+ failed|^ctr: ", re.M)),
    ("docker", re.compile(r"Error response from daemon|pull access denied for |no matching manifest for")),
    ("crio", re.compile(r"pinging container registry|initializing source docker://|reading manifest \S+ in |"
                         r"Error parsing image name|Trying to pull |no image found in manifest list")),
)

_IMAGE_PATTERNS = tuple(re.compile(p) for p in (
    r"(?:Failed to pull image|failed to pull and unpack image|failed to resolve reference|"
    r"Back-off pulling image|Error parsing image name|Pulling image) \"(?:docker://)?(?P<image>[^\"]+)\"",
    r"initializing source docker://(?P<image>[^\s:\"]+(?::\d+)?/[^\s:\"]+(?::[\w][\w.-]*)?(?:@\S+)?)",
    r"reading manifest (?P<tag>[^\s]+) in (?P<repo>[^\s:\"]+(?::\d+)?/[^\s:\"]+)",
    r"pull access denied for (?P<image>[^\s,]+)",
    r"manifest for (?P<image>\S+) not found",
    r"Trying to pull (?P<image>\S+?)\.\.\.",
))
_URL = re.compile(r"\b(?:Get|Head|GET|HEAD|Post|POST|Put|PUT|Patch|PATCH) \"?(?P<scheme>https?)://"
                  r"(?P<netloc>[^/\s\"]+)")
_REGISTRY_HINTS = tuple(re.compile(p) for p in (
    r"pinging container registry (?P<registry>[^\s:]+(?::\d+)?)",
    r"pulling from host (?P<registry>\S+) failed",
    r"host=\"?(?P<registry>[^\s\"]+)",
))
_DIAL = re.compile(r"dial tcp (?P<address>[^\s:]+:\d+|\[[^\]]+\]:\d+)")


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """One cause found in a message, with its fix rendered for the message's registry and image."""

    cause: str
    summary: str
    why: str
    fix: tuple[str, ...]
    evidence: str = ""
    facts: dict[str, str] = field(default_factory=dict)

    @property
    def recognised(self) -> bool:
        return self.cause != NOT_RECOGNISED

    def to_dict(self) -> dict[str, Any]:
        return {"cause": self.cause, "summary": self.summary, "why": self.why, "fix": list(self.fix),
                "evidence": self.evidence, "facts": dict(self.facts)}


class _Facts(dict[str, str]):
    """Facts for templates; one the message did not reveal renders as a visible ``<placeholder>``."""

    def __missing__(self, key: str) -> str:
        return f"<{key.replace('_', ' ')}>"


def explain(message: str) -> list[Diagnosis]:
    """Every cause ``message`` shows, most specific first; one ``not-recognised`` answer if none."""
    text = _unescape(message)
    facts = _message_facts(text)
    found: list[tuple[Cause, re.Match[str]]] = []
    for cause in CAUSES:
        match = _first_match(cause, text)
        if match is not None:
            found.append((cause, match))
    found = _drop_superseded(found)
    if not found:
        return [_not_recognised(facts)]
    found.sort(key=lambda item: (item[0].rank, item[1].start()))
    return [_diagnose(cause, match, facts) for cause, match in found]


def _unescape(message: str) -> str:
    # Runtimes log through logrus, which quotes the error: msg="... Get \"https://...\": x509: ...".
    return message.replace('\\"', '"').strip()


def _first_match(cause: Cause, text: str) -> re.Match[str] | None:
    matches = [m for m in (p.search(text) for p in cause.patterns) if m is not None]
    return min(matches, key=lambda m: m.start()) if matches else None


def _drop_superseded(found: list[tuple[Cause, re.Match[str]]]) -> list[tuple[Cause, re.Match[str]]]:
    """Drop wrappers when a real cause is present, and fallbacks when their family has a specific one."""
    if any(not c.wrapper for c, _ in found):
        found = [(c, m) for c, m in found if not c.wrapper]
    specific_families = {c.family for c, _ in found if not c.fallback}
    return [(c, m) for c, m in found if not (c.fallback and c.family in specific_families)]


def _message_facts(text: str) -> dict[str, str]:
    """The image, registry, runtime and network address the message mentions, as far as it says."""
    facts: dict[str, str] = {}
    for pattern in _IMAGE_PATTERNS:
        match = pattern.search(text)
        if match is None:
            continue
        groups = match.groupdict()
        image = groups.get("image") or f"{groups['repo']}:{groups['tag']}"
        facts["image"] = image
        break
    if "image" in facts:
        registry, repository = _split_image(facts["image"])
        facts["registry"] = registry
        facts["repository"] = repository
        facts["project"] = repository.split("/", 1)[0] if "/" in repository else "library"
    url = _URL.search(text)
    if url is not None:
        netloc = url.group("netloc")
        facts["scheme"] = url.group("scheme")
        facts.setdefault("registry", netloc)
        facts.setdefault("address", netloc if ":" in netloc.lstrip("[").split("]")[-1]
                         else f"{netloc}:{443 if url.group('scheme') == 'https' else 80}")
    for pattern in _REGISTRY_HINTS:
        match = pattern.search(text)
        if match is not None:
            facts.setdefault("registry", match.group("registry"))
    dial = _DIAL.search(text)
    if dial is not None:
        facts["address"] = dial.group("address")
    for runtime, marker in _RUNTIME_MARKERS:
        if marker.search(text):
            facts["runtime"] = runtime
            break
    return facts


def _split_image(image: str) -> tuple[str, str]:
    """``(registry, repository)`` by the docker rule: a first component with '.' or ':' is a host."""
    registry, path = split_registry(split_image(image)[0])
    return registry or DOCKER_HUB, path


def _diagnose(cause: Cause, match: re.Match[str], message_facts: dict[str, str]) -> Diagnosis:
    captured = {k: v for k, v in match.groupdict().items() if v}
    facts = _Facts({**cause.defaults, **message_facts, **captured})
    if "registry" not in facts and "ip" in facts:
        facts["registry"] = facts["ip"]
    if "repository" in captured and "project" not in message_facts:
        facts["project"] = captured["repository"].split("/", 1)[0]
    facts.setdefault("runtime", "<containerd|docker|crio>")
    registry = facts["registry"]
    store = _TRUST_STORES.get(facts["runtime"], _ANY_TRUST_STORE)
    facts["trust_store"] = store.format(registry=registry)
    # Report only what the message said (plus the registry derived from it), not template defaults.
    said = {**message_facts, **captured, "registry": registry}
    public = {k: v for k, v in said.items() if not v.startswith("<")}
    return Diagnosis(
        cause=cause.id,
        summary=cause.summary.format_map(facts),
        why=cause.why.format_map(facts),
        fix=tuple(step.format_map(facts) for step in cause.fix),
        evidence=match.group(0),
        facts=public,
    )


def _not_recognised(message_facts: dict[str, str]) -> Diagnosis:
    facts = _Facts(message_facts)
    return Diagnosis(
        cause=NOT_RECOGNISED,
        summary="moorage does not recognise this message as a known image pull failure.",
        why=("Paste the complete 'Failed to pull image' event message (kubectl describe pod) or the "
             "runtime's own error line."),
        fix=("On the node that fails: `moorage doctor {image}` (checks DNS, TCP, TLS trust, "
             "credentials and the tag, step by step)".format_map(facts),
             "`kubectl describe pod <pod>` and run `moorage explain` on the 'Failed to pull image' event"),
        facts=dict(message_facts),
    )
