"""credentialprovider.kubelet.k8s.io/v1 request/response/config shapes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import yaml

from moorage.kube.provider_protocol import (
    API_VERSION,
    AuthConfig,
    ProtocolError,
    ProviderSpec,
    build_response,
    cache_key,
    go_duration,
    parse_go_duration,
    parse_request,
    provider_config,
    provider_config_yaml,
)

pytestmark = pytest.mark.fast


def request(**extra: object) -> str:
    return json.dumps({"apiVersion": API_VERSION, "kind": "CredentialProviderRequest",
                       "image": "192.168.2.250:443/test-1/traefik:2.6.2", **extra})


def test_parse_minimal_and_token_request() -> None:
    req = parse_request(request())
    assert req.image == "192.168.2.250:443/test-1/traefik:2.6.2"
    assert req.service_account_token is None and req.service_account_annotations is None
    req = parse_request(request(serviceAccountToken="jwt", serviceAccountAnnotations={"a": "b"}))
    assert req.service_account_token == "jwt" and req.service_account_annotations == {"a": "b"}


@pytest.mark.parametrize(("body", "message"), [
    ("not json", "not valid JSON"),
    ("[]", "JSON object"),
    (json.dumps({"kind": "CredentialProviderRequest", "image": "x"}), "apiVersion"),
    (json.dumps({"apiVersion": "credentialprovider.kubelet.k8s.io/v2", "kind": "CredentialProviderRequest",
                 "image": "x"}), "apiVersion"),
    (request(kind="CredentialProviderResponse"), "kind"),
    (request(image=""), "image"),
    (request(image=5), "image"),
    (request(serviceAccountToken=1), "serviceAccountToken"),
    (request(serviceAccountAnnotations={"a": 1}), "serviceAccountAnnotations"),
])
def test_bad_requests(body: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_request(body)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (300, "5m0s"), (3600, "1h0m0s"), (90, "1m30s"), (1.5, "1.5s"), (0.25, "250ms"),
    (86400, "24h0m0s"), (3661, "1h1m1s"),
])
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(timedelta(seconds=seconds)) == text
    assert parse_go_duration(text) == timedelta(seconds=seconds)


def test_parse_go_duration_rejects_garbage() -> None:
    assert parse_go_duration("1h30m") == timedelta(minutes=90)
    for bad in ("", "5", "5 minutes", "m5"):
        with pytest.raises(ProtocolError):
            parse_go_duration(bad)


def test_build_response() -> None:
    resp = build_response({"reg:443/p/app": AuthConfig("robot$p+node", "t")}, "Image", timedelta(minutes=5))
    assert resp == {"apiVersion": API_VERSION, "kind": "CredentialProviderResponse", "cacheKeyType": "Image",
                    "cacheDuration": "5m0s",
                    "auth": {"reg:443/p/app": {"username": "robot$p+node", "password": "t"}}}
    assert "cacheDuration" not in build_response({}, "Global")
    with pytest.raises(ProtocolError, match="cacheKeyType"):
        build_response({}, "Repository")


def test_cache_keys() -> None:
    image = "192.168.2.250:443/test-1/traefik:2.6.2"
    assert cache_key(image, "Image") == "192.168.2.250:443/test-1/traefik"
    assert cache_key(image + "@sha256:" + "a" * 64, "Image") == "192.168.2.250:443/test-1/traefik"
    assert cache_key(image, "Registry") == "192.168.2.250:443"
    assert cache_key(image, "Global") == "global"


def test_provider_config_yaml() -> None:
    spec = ProviderSpec(name="moorage-credential-provider", match_images=["192.168.2.250:443", "*.corp.io"],
                        default_cache_duration="10m", args=["--ttl", "3600"],
                        env={"MOORAGE_PROVIDER_REGISTRY": "https://192.168.2.250:443"})
    doc = yaml.safe_load(provider_config_yaml([spec]))
    assert doc == {"apiVersion": "kubelet.config.k8s.io/v1", "kind": "CredentialProviderConfig",
                   "providers": [{"name": "moorage-credential-provider",
                                  "matchImages": ["192.168.2.250:443", "*.corp.io"],
                                  "defaultCacheDuration": "10m0s", "apiVersion": API_VERSION,
                                  "args": ["--ttl", "3600"],
                                  "env": [{"name": "MOORAGE_PROVIDER_REGISTRY",
                                           "value": "https://192.168.2.250:443"}]}]}
    with pytest.raises(ProtocolError, match="unique"):
        provider_config([spec, spec])
    with pytest.raises(ProtocolError, match="matchImages"):
        provider_config([ProviderSpec("x", [], "1m")])
    with pytest.raises(ProtocolError, match="plain executable"):
        provider_config([ProviderSpec("../x", ["a"], "1m")])
