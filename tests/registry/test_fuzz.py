"""Property-based fuzzing of the distribution API (``/v2/``) against a live moorage, on SQLite and PostgreSQL.

Whatever a client sends, every answer keeps the contract of the OCI Distribution spec v1.1.1: never a 5xx (and
``MoorageServer.stop`` finds no traceback in the log), every error the spec's JSON body with a known code and a
message, ``Docker-Distribution-API-Version`` on every answer. Beyond that each test holds the answer to an
oracle written from the specs (not from moorage's code): which names, tags, digests, ranges and manifests are
valid, and that a refused write leaves nothing behind and an accepted one serves exactly the bytes pushed.

Examples are derandomized, so every run tries the same inputs and CI is reproducible;
``MOORAGE_FUZZ_SCALE=10`` tries ten times as many (different ones) locally.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.registry.conftest import OCI_INDEX, OCI_MANIFEST, digest_of, push_blob, push_image
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer

SCALE = float(os.environ.get("MOORAGE_FUZZ_SCALE", "1"))


def fuzz(examples: int) -> settings:
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, derandomize=SCALE == 1,
                    database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                          HealthCheck.too_slow, HealthCheck.filter_too_much])


# -- the contract every answer keeps ------------------------------------------------------------------------
SPEC_CODES = frozenset({
    "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID", "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED",
    "DENIED", "UNSUPPORTED", "TOOMANYREQUESTS",
    # moorage's own, beside the spec's
    "PAGINATION_NUMBER_INVALID", "UNAVAILABLE"})


def _what(response: httpx.Response) -> str:
    return (f"{response.request.method} {response.request.url.raw_path[:300]!r} -> {response.status_code} "
            f"{response.content[:400]!r}")


def spec_answer(response: httpx.Response) -> httpx.Response:
    """``response`` keeps the contract; returned for chaining."""
    what = _what(response)
    assert response.status_code < 500, what
    assert response.headers.get("Docker-Distribution-API-Version") == "registry/2.0", what
    if response.status_code >= 400 and response.request.method != "HEAD":
        assert response.headers.get("content-type", "").startswith("application/json"), what
        body = response.json()
        assert isinstance(body, dict) and list(body) == ["errors"], what
        errors = body["errors"]
        assert isinstance(errors, list) and errors, what
        for error in errors:
            assert isinstance(error, dict) and {"code", "message"} <= set(error) <= {"code", "message", "detail"}, what
            assert error["code"] in SPEC_CODES, what
            assert isinstance(error["message"], str) and error["message"].strip(), what
    return response


def expect(response: httpx.Response, status: int | tuple[int, ...], *codes: str, given: object = "") -> httpx.Response:
    """The contract, and this status (one of these) with one of these codes (any, when none is given).
    ``given`` goes into the failure message: what was sent, when the URL does not say."""
    spec_answer(response)
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, f"expected {statuses} {codes}: {_what(response)} given {given!r}"
    if codes and response.status_code >= 400 and response.request.method != "HEAD":
        assert response.json()["errors"][0]["code"] in codes, f"expected {codes}: {_what(response)} given {given!r}"
    return response


class RawClient:
    """HTTP/1.1 sending the request target byte for byte: httpx resolves ``.`` and ``..`` segments before
    sending, and those are part of what is fuzzed. Answers come back as ``httpx.Response`` for the checks."""

    def __init__(self, server: MoorageServer) -> None:
        self.base = server.url
        self.connection = http.client.HTTPConnection(server.bind_host, server.port, timeout=60)
        token = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
        self.authorization = f"Basic {token}"

    def request(self, method: str, target: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> httpx.Response:
        for attempt in range(2):
            try:
                self.connection.request(method, target, body=body,
                                        headers={"Authorization": self.authorization, **(headers or {})})
                answer = self.connection.getresponse()
                content = answer.read()
                break
            except (http.client.RemoteDisconnected, ConnectionError):
                # A kept-alive connection the server had closed: one retry on a new one.
                self.connection.close()
                if attempt:
                    raise
        return httpx.Response(answer.status, headers=answer.getheaders(), content=content,
                              request=httpx.Request(method, self.base + target))

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def raw(moorage: MoorageServer) -> Iterator[RawClient]:
    client = RawClient(moorage)
    yield client
    client.close()


# -- the grammar, as the spec writes it ----------------------------------------------------------------------
SPEC_NAME = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*")
SPEC_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
# The algorithms the image spec registers, with their exact encodings.
SPEC_DIGEST = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")
# RFC 6838 type/subtype (restricted-name), as the image spec asks of every mediaType and artifactType.
RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
SPEC_MEDIA_TYPE = re.compile(rf"{RESTRICTED_NAME}/{RESTRICTED_NAME}(?:\s*;[ -~]*)?")
MAX_NAME = 255
ROUTE_WORDS = ("tags", "manifests", "blobs", "referrers", "uploads", "_catalog")
ZERO_DIGEST = "sha256:" + "0" * 64

HEX = "0123456789abcdef"
hex_text = st.text(HEX, min_size=1, max_size=140)
well_formed_digests = st.one_of(st.text(HEX, min_size=64, max_size=64).map("sha256:".__add__),
                                st.text(HEX, min_size=128, max_size=128).map("sha512:".__add__))
near_miss_digests = st.one_of(
    hex_text.filter(lambda h: len(h) not in (64, 128)).map("sha256:".__add__),  # wrong length
    st.text(HEX, min_size=64, max_size=64).filter(lambda h: h.upper() != h).map(lambda h: "sha256:" + h.upper()),
    st.tuples(st.sampled_from(["md5", "sha1", "sha384", "blake3", "sha256+b64", "SHA256", "sha-256", "sha_256",
                               "", "sha256:sha256"]), st.text(HEX, min_size=64, max_size=64))
    .map(lambda t: f"{t[0]}:{t[1]}"),
    st.text(HEX, min_size=64, max_size=64).map("sha512:".__add__),  # sha512 of the wrong length
    st.text(HEX, min_size=128, max_size=128).map("sha256:".__add__),
    st.tuples(st.sampled_from(["sha256::", ":", "sha256;", "sha256 :", "sha256:\n", "sha256%3A", "sha256:0x"]),
              st.text(HEX, min_size=64, max_size=64)).map("".join),
)
digest_texts = st.one_of(well_formed_digests, near_miss_digests, st.text(max_size=30))
tags_128 = st.integers(120, 135).map(lambda n: "t" * n)
references = st.one_of(st.from_regex(SPEC_TAG, fullmatch=True), tags_128, well_formed_digests, near_miss_digests,
                       st.text(max_size=40), st.sampled_from([".", "..", "-x", ".x", "a:b", "%41", "latest\n"]))


def big(text: str) -> int:
    """A decimal that may be thousands of digits long, capped far beyond any blob (int() of the whole
    text would trip Python's conversion limit in the test itself)."""
    text = text.lstrip("0") or "0"
    return int(text) if len(text) < 30 else 10 ** 30


# -- names ------------------------------------------------------------------------------------------------------
_components = st.one_of(
    st.from_regex(r"[a-z0-9]{1,6}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,4}){0,2}", fullmatch=True),
    st.sampled_from(["", ".", "..", "...", "%2e%2e", "%2F", "%00", "%ff", "%", "%zz", "A", "a__b", "a___b", "a--b",
                     "_a", "a_", "a.", "é", "\u0130", "a\nb", "a\tb", "a b", "a?b", "a#b", "a;b", "a\x00b", "\uff41"]),
    st.text(max_size=10),
    st.text(st.sampled_from("a\x00\n\r\t\x7f/"), min_size=1, max_size=4),  # control characters
)
names = st.one_of(
    st.lists(_components, min_size=1, max_size=5).map("/".join),
    st.lists(_components, min_size=1, max_size=3).map(lambda parts: "/".join(["library", *parts])),
    st.text(max_size=60),
    st.integers(1, 3000).map(lambda n: "library/" + "a" * n),  # around and far past the 255-character limit
)


@fuzz(150)
@given(name=names, safe=st.sampled_from(["/", "", "/%."]))
def test_any_repository_name(raw: RawClient, name: str, safe: str) -> None:
    """Whatever the name, each endpoint answers with a spec error; an invalid one is NAME_INVALID everywhere."""
    path = quote(name, safe=safe)
    # The oracle holds when the server sees exactly ``name`` under each route: no escapes left for it to decode,
    # no route's own words inside.
    exact = ("%" not in name or "%" not in safe) and not any(word in name for word in ROUTE_WORDS)
    valid = SPEC_NAME.fullmatch(name) is not None and len(name) <= MAX_NAME
    answers = [
        raw.request("GET", f"/v2/{path}/tags/list"),
        raw.request("GET", f"/v2/{path}/manifests/latest"),
        raw.request("HEAD", f"/v2/{path}/manifests/latest"),
        raw.request("PUT", f"/v2/{path}/manifests/latest", b"{}", {"Content-Type": OCI_MANIFEST}),
        raw.request("DELETE", f"/v2/{path}/manifests/latest"),
        raw.request("GET", f"/v2/{path}/blobs/{ZERO_DIGEST}"),
        raw.request("GET", f"/v2/{path}/referrers/{ZERO_DIGEST}"),
        raw.request("POST", f"/v2/{path}/blobs/uploads/", b""),
    ]
    started = answers[-1]
    if started.status_code == 202:
        spec_answer(raw.request("DELETE", started.headers["Location"]))
    for answer in answers:
        spec_answer(answer)
        if not exact:
            continue
        if valid:
            assert answer.status_code != 400 or answer.json()["errors"][0]["code"] != "NAME_INVALID", _what(answer)
        else:
            expect(answer, 400, "NAME_INVALID")


# -- references and digests ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Image:
    repo: str
    digest: str
    body: bytes
    blob: str


@pytest.fixture
def image(client: httpx.Client, repo: str) -> Image:
    digest, body = push_image(client, repo, "v1")
    return Image(repo, digest, body, push_blob(client, repo, b"a blob of the image's repository"))


def _still_there(client: httpx.Client, image: Image) -> None:
    assert client.get(f"/v2/{image.repo}/manifests/v1").content == image.body
    assert client.head(f"/v2/{image.repo}/blobs/{image.blob}").status_code == 200


@fuzz(120)
@given(reference=references)
def test_any_manifest_reference(raw: RawClient, client: httpx.Client, image: Image, reference: str) -> None:
    """Fetching or deleting what no manifest is called is MANIFEST_UNKNOWN; pushing under a valid tag works,
    under anything else is refused and leaves nothing to fetch."""
    assume(reference not in ("v1", image.digest))
    url = f"/v2/{image.repo}/manifests/{quote(reference, safe='')}"
    routable = reference != "" and "/" not in reference
    unknown = (404, "MANIFEST_UNKNOWN") if routable else (404,)
    for method in ("GET", "HEAD", "DELETE"):
        expect(raw.request(method, url), *unknown)

    pushed = raw.request("PUT", url, image.body, {"Content-Type": OCI_MANIFEST})
    if not routable:
        expect(pushed, (404, 405))
    elif SPEC_TAG.fullmatch(reference):
        expect(pushed, 201)
        assert raw.request("GET", url).content == image.body
        expect(raw.request("DELETE", url), 202)
    else:
        # A digest that is not the body's, or no valid reference at all.
        expect(pushed, 400, "DIGEST_INVALID", "MANIFEST_INVALID")
        expect(raw.request("GET", url), *unknown)
    _still_there(client, image)


@fuzz(120)
@given(digest=digest_texts, artifact_type=st.one_of(st.none(), st.text(max_size=20),
                                                    st.sampled_from(["\x00", "application/x\x00", "a\nb"])))
def test_any_digest(raw: RawClient, client: httpx.Client, image: Image, digest: str,
                    artifact_type: str | None) -> None:
    """A malformed digest is DIGEST_INVALID, a well-formed unknown one BLOB_UNKNOWN, on every blob endpoint; the
    referrers of any well-formed digest are an index (empty here); nothing is deleted by a digest it is not."""
    assume(digest not in (image.digest, image.blob))
    blob_url = f"/v2/{image.repo}/blobs/{quote(digest, safe='')}"
    routable = digest != "" and "/" not in digest
    well_formed = SPEC_DIGEST.fullmatch(digest) is not None
    for method in ("GET", "HEAD", "DELETE"):
        answer = raw.request(method, blob_url)
        if not routable:
            expect(answer, (404, 405))
        elif well_formed:
            expect(answer, 404, "BLOB_UNKNOWN")
        else:
            expect(answer, 400, "DIGEST_INVALID")
    query = f"?artifactType={quote(artifact_type, safe='')}" if artifact_type is not None else ""
    referrers = raw.request("GET", f"/v2/{image.repo}/referrers/{quote(digest, safe='')}{query}")
    if not routable:
        expect(referrers, (404, 405))
    elif well_formed:
        assert expect(referrers, 200).json()["manifests"] == []
    else:
        expect(referrers, 400, "DIGEST_INVALID")
    # A mount of it from anywhere either links nothing (a new session instead) or is refused as malformed.
    mounted = raw.request("POST", f"/v2/{image.repo}/blobs/uploads/?mount={quote(digest, safe='')}"
                                  f"&from={quote(artifact_type or image.repo, safe='')}", b"")
    expect(mounted, (202, 400), "DIGEST_INVALID")
    if mounted.status_code == 202:
        expect(raw.request("DELETE", mounted.headers["Location"]), 204)
    _still_there(client, image)


@fuzz(80)
@given(upload_id=st.one_of(st.text(max_size=70), st.uuids().map(str),
                           st.sampled_from(["..", ".", "%2e%2e", "0", "\x00", "a\x00b", "\n"])),
       digest=st.one_of(well_formed_digests, near_miss_digests))
def test_any_upload_session_id(raw: RawClient, repo: str, upload_id: str, digest: str) -> None:
    """No session is called anything the registry did not hand out: BLOB_UPLOAD_UNKNOWN, whatever the method."""
    url = f"/v2/{repo}/blobs/uploads/{quote(upload_id, safe='')}"
    routable = upload_id != "" and "/" not in upload_id
    for method, body in (("GET", None), ("HEAD", None), ("PATCH", b"abc"), ("DELETE", None)):
        answer = raw.request(method, url, body)
        expect(answer, 404, "BLOB_UPLOAD_UNKNOWN") if routable else expect(answer, (404, 405))
    closed = raw.request("PUT", f"{url}?digest={quote(digest, safe='')}", b"abc")
    if not routable:
        expect(closed, (404, 405))
    elif SPEC_DIGEST.fullmatch(digest):
        expect(closed, 404, "BLOB_UPLOAD_UNKNOWN")
    else:
        expect(closed, (400, 404), "DIGEST_INVALID", "BLOB_UPLOAD_UNKNOWN")


# -- ranges ---------------------------------------------------------------------------------------------------------
BLOB = bytes(range(256)) * 4 + b"end"  # 1027 bytes, every offset recognisable
_numbers = st.one_of(st.integers(0, 1100).map(str), st.integers(0, 10 ** 25).map(str),
                     st.sampled_from(["", "0", "00", "0001", "1026", "1027", "1028", "9" * 5000, "0" * 5000 + "7"]))
_byte_ranges = st.builds(lambda first, last: f"{first}-{last}", _numbers, _numbers)
range_headers = st.one_of(
    _byte_ranges.map("bytes=".__add__),
    st.lists(_byte_ranges, min_size=2, max_size=4).map(lambda parts: "bytes=" + ",".join(parts)),
    st.tuples(st.sampled_from(["Bytes=", "bytes = ", "bytes=\t", "items=", "bytes:", "=", "bytes", "bytes=-",
                               "bytes=--1", "bytes=1--2", "bytes=+1-2", "bytes=1-2-3", "bytes=0x10-",
                               "bytes=\u0661-\u0662", "bytes=1.0-2"]),
              st.sampled_from(["", "5", "0-1", ",0-1"])).map("".join),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=30),
)


def _expected_range(header: str, size: int) -> tuple[int, int] | str | None:
    """What RFC 9110 asks for the canonical single range ``bytes=first-last``: (start, end inclusive), "416", or
    None for any other text (the registry may serve the range or ignore it)."""
    match = re.fullmatch(r"bytes=([0-9]*)-([0-9]*)", header)
    if match is None or header == "bytes=-":
        return None
    first, last = match.groups()
    if first:
        start = big(first)
        if start >= size or (last and big(last) < start):
            return "416"  # past the end, or (as the distribution conformance suite asks) ending before it starts
        return start, min(big(last), size - 1) if last else size - 1
    suffix = big(last)
    return "416" if suffix == 0 or size == 0 else (max(size - suffix, 0), size - 1)


@pytest.fixture
def blobs(client: httpx.Client, repo: str) -> dict[str, bytes]:
    """Blob URLs of ``repo`` and their content: one of 1027 bytes and an empty one."""
    return {f"/v2/{repo}/blobs/{push_blob(client, repo, data)}": data for data in (BLOB, b"")}


@fuzz(150)
@given(header=range_headers)
def test_any_range(client: httpx.Client, blobs: dict[str, bytes], header: str) -> None:
    """A canonical single range is served (206, exactly those bytes) or refused (416 with the size); anything
    else is served as a range or ignored, never an error; HEAD ignores ranges."""
    header = header.strip(" \t")
    assume(header)
    for url, data in blobs.items():
        answer = spec_answer(client.get(url, headers={"Range": header.encode()}))
        expected = _expected_range(header, len(data))
        if expected == "416" or answer.status_code == 416:
            assert expected in ("416", None), _what(answer)
            expect(answer, 416)
            assert answer.headers["Content-Range"] == f"bytes */{len(data)}"
        elif isinstance(expected, tuple) or answer.status_code == 206:
            expect(answer, (206,) if expected else (200, 206))
            if answer.status_code == 206 and not answer.headers["content-type"].startswith("multipart/"):
                start, end = (int(n) for n in re.fullmatch(r"bytes (\d+)-(\d+)/\d+",
                                                           answer.headers["Content-Range"]).groups())
                assert expected is None or expected == (start, end), (header, expected, answer.headers)
                assert answer.content == data[start:end + 1]
        else:
            expect(answer, 200)
            assert answer.content == data
        head = expect(client.head(url, headers={"Range": header.encode()}), 200)
        assert head.headers["Content-Length"] == str(len(data))


# -- listings --------------------------------------------------------------------------------------------------------
TAGS = ["A", "_b", "a", "a-1", "a.1", "b" * 128, "latest", "v1", "v10", "v2"]


@pytest.fixture
def tagged(client: httpx.Client, repo: str) -> str:
    _, body = push_image(client, repo)
    for tag in TAGS:
        assert client.put(f"/v2/{repo}/manifests/{tag}", content=body,
                          headers={"Content-Type": OCI_MANIFEST}).status_code == 201
    return repo


_counts = st.one_of(st.integers(-5, 15).map(str), st.integers(0, 10 ** 30).map(str),
                    st.sampled_from(["", "+1", " 1", "1 ", "1.0", "0x10", "1e3", "\u0663", "\uff11", "\u00b2",
                                     "9" * 5000, "0" * 300 + "3", "-0", "NaN"]),
                    st.text(max_size=8))
_lasts = st.one_of(st.none(), st.sampled_from(TAGS), st.text(max_size=20), st.sampled_from(["\x00", "a\x00", "~"]))


def _pages(client: httpx.Client, url: str, key: str) -> list[str]:
    """Every item, following the Link headers as a client would."""
    items: list[str] = []
    for _ in range(50):
        page = expect(client.get(url), 200)
        items += page.json()[key]
        link = page.headers.get("Link")
        if not link:
            return items
        url = link[1:link.index(">")]
    raise AssertionError(f"pagination of {url} does not end")


@fuzz(100)
@given(n=st.one_of(st.none(), _counts), last=_lasts)
def test_any_page_size_and_last(client: httpx.Client, tagged: str, n: str | None, last: str | None) -> None:
    """``n`` is a non-negative decimal or PAGINATION_NUMBER_INVALID; a page holds at most n names, all of them
    the repository's; following Link from any valid ``n`` yields every tag once."""
    params = {k: v for k, v in (("n", n), ("last", last)) if v is not None}
    valid_n = n is None or n == "" or re.fullmatch(r"[0-9]+", n) is not None
    for url, key, everything in ((f"/v2/{tagged}/tags/list", "tags", set(TAGS)), ("/v2/_catalog", "repositories",
                                                                                    None)):
        answer = client.get(url, params=params)
        if not valid_n:
            expect(answer, 400, "PAGINATION_NUMBER_INVALID")
            continue
        found = expect(answer, 200).json()[key]
        assert len(found) == len(set(found)), found
        if n:
            assert len(found) <= big(n), (n, found)
        if everything is not None:
            assert set(found) <= everything, found
            if last is None:
                assert set(found) == everything or (n and len(found) == big(n)), found
    if valid_n and n and 0 < big(n) <= len(TAGS):
        walked = _pages(client, f"/v2/{tagged}/tags/list?n={n}", "tags")
        assert sorted(walked) == sorted(TAGS), walked


# -- headers -----------------------------------------------------------------------------------------------------------
header_values = st.one_of(
    st.sampled_from([OCI_MANIFEST, OCI_INDEX, "application/json", "*/*", "application/*", "", "text/html",
                     f"{OCI_MANIFEST}; charset=utf-8", f"{OCI_MANIFEST.upper()}", f"{OCI_MANIFEST};q=0",
                     "application/vnd.docker.distribution.manifest.v2+json",
                     "application/vnd.docker.distribution.manifest.v1+prettyjws", f"{OCI_INDEX}, {OCI_MANIFEST}",
                     ",,,", ";", "a/b;c=\"d,e\""]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40),
)


@fuzz(100)
@given(accept=st.lists(header_values, max_size=3), content_type=header_values)
def test_any_accept_and_content_type(client: httpx.Client, image: Image, accept: list[str],
                                     content_type: str) -> None:
    """A fetch serves the manifest exactly or MANIFEST_UNKNOWN; a push under any Content-Type is stored exactly or
    refused as MANIFEST_INVALID, with nothing left under its tag."""
    accept = [value.strip(" \t") for value in accept if value.strip(" \t")]
    content_type = content_type.strip(" \t")
    headers = [("Accept", value.encode()) for value in accept]
    url = f"/v2/{image.repo}/manifests/v1"
    for method in ("GET", "HEAD"):
        answer = expect(client.request(method, url, headers=headers), (200, 404), "MANIFEST_UNKNOWN")
        if OCI_MANIFEST in accept or not accept:
            assert answer.status_code == 200, _what(answer)
        if answer.status_code == 200:
            assert answer.headers["Content-Type"] == OCI_MANIFEST
            assert answer.headers["Docker-Content-Digest"] == image.digest
            if method == "GET":
                assert answer.content == image.body
    tag = f"ct{uuid.uuid4().hex[:8]}"
    pushed = client.put(f"/v2/{image.repo}/manifests/{tag}", content=image.body,
                        headers={"Content-Type": content_type.encode()} if content_type else {})
    if expect(pushed, (201, 400), "MANIFEST_INVALID").status_code == 201:
        fetched = expect(client.get(f"/v2/{image.repo}/manifests/{tag}"), 200)
        assert fetched.content == image.body and fetched.headers["Content-Type"] == OCI_MANIFEST
    else:
        expect(client.get(f"/v2/{image.repo}/manifests/{tag}"), 404, "MANIFEST_UNKNOWN")


def _raw_exchange(server: MoorageServer, head: bytes, body: bytes, hang_up: bool) -> bytes:
    """Send ``head`` + ``body`` on a fresh connection (half-closing it after, when ``hang_up``); the first answer."""
    with socket.create_connection((server.bind_host, server.port), timeout=30) as sock:
        sock.sendall(head + body)
        if hang_up:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk
        return received


@fuzz(40)
@given(sent=st.integers(0, 3000), declared=st.integers(0, 3000))
def test_content_length_that_does_not_match_the_body(moorage: MoorageServer, client: httpx.Client, repo: str,
                                                     sent: int, declared: int) -> None:
    """A chunk is exactly the Content-Length bytes that arrive: a body cut short (the client hangs up) adds
    nothing to the upload, a longer one adds only the declared bytes."""
    data = bytes(range(256)) * 12
    started = expect(client.post(f"/v2/{repo}/blobs/uploads/"), 202)
    location = started.headers["Location"]
    try:
        token = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
        head = (f"PATCH {location} HTTP/1.1\r\nHost: {moorage.host}\r\nAuthorization: Basic {token}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n")
        answer = _raw_exchange(moorage, head.encode(), data[:sent], hang_up=sent < declared)
        status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/1.1 ") else b""
        assert not status.startswith(b"5"), answer
        # Nobody is left to read an answer to a body cut short; 499 is what the log then says.
        assert status in ((b"202",) if sent >= declared else (b"400", b"499", b"")), answer
        progress = expect(client.get(location), 204)
        held = declared if sent >= declared else 0
        assert progress.headers["Range"] == f"0-{max(held - 1, 0)}", (sent, declared, progress.headers)
        done = client.put(location, params={"digest": digest_of(data[:held])})
        expect(done, 201)
        assert client.get(f"/v2/{repo}/blobs/{digest_of(data[:held])}").content == data[:held]
    finally:
        client.delete(location)


# -- manifest bodies ---------------------------------------------------------------------------------------------------
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
MAX_MANIFEST = 4 * 1024 * 1024
MAX_DEPTH = 64


@dataclass(frozen=True)
class Known:
    """A placeholder for a digest known only once the test runs (a pushed blob or manifest)."""

    what: str  # "config", "layer" or "child"


@dataclass(frozen=True)
class Present:
    """What the repository holds, for the judge."""

    blobs: frozenset[str]
    manifests: frozenset[str]
    digests: dict[str, str]
    sizes: dict[str, int]


def _descriptor_verdict(value: Any) -> str:
    if not isinstance(value, dict):
        return "invalid"
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not SPEC_MEDIA_TYPE.fullmatch(media_type):
        return "invalid"
    if not isinstance(digest, str) or not SPEC_DIGEST.fullmatch(digest):
        return "invalid"
    if type(size) is not int or not 0 <= size < 2 ** 63:  # int64, as the image spec types it
        return "invalid"
    return "valid"


def judge(document: Any, content_type: str | None, present: Present) -> str:
    """What the specs make of ``document`` pushed with ``content_type``: "valid", "invalid", "missing" (it names
    blobs or manifests the repository lacks) or "either" (the specs leave it to the registry)."""
    if not isinstance(document, dict):
        return "invalid"
    if type(document.get("schemaVersion")) is not int or document["schemaVersion"] != 2:
        return "invalid"
    declared = document.get("mediaType")
    # null for an optional field reads as absent (as Go's parser reads it), here as for the fields below
    if declared is not None and not isinstance(declared, str):
        return "invalid"
    if declared and content_type and declared != content_type:
        return "invalid"
    media_type = declared or content_type or (OCI_INDEX if "manifests" in document else OCI_MANIFEST)
    verdicts: list[str] = []
    wanted_blobs: list[str] = []
    wanted_manifests: list[str] = []
    if media_type in (OCI_MANIFEST, DOCKER_MANIFEST):
        config, layers = document.get("config"), document.get("layers")
        if not isinstance(layers, list):
            return "invalid"
        verdicts += [_descriptor_verdict(d) for d in [config, *layers]]
        if "invalid" in verdicts:
            return "invalid"
        wanted_blobs += [config["digest"]] + [d["digest"] for d in layers if d["mediaType"] != FOREIGN_LAYER]
    elif media_type in (OCI_INDEX, DOCKER_LIST):
        children = document.get("manifests")
        if not isinstance(children, list):
            return "invalid"
        verdicts += [_descriptor_verdict(d) for d in children]
        if "invalid" in verdicts:
            return "invalid"
        wanted_manifests += [d["digest"] for d in children]
    else:
        return "invalid"
    artifact_type = document.get("artifactType")
    if artifact_type is not None and (not isinstance(artifact_type, str)
                                      or not SPEC_MEDIA_TYPE.fullmatch(artifact_type)):
        return "invalid"
    annotations = document.get("annotations")
    if annotations is not None and (not isinstance(annotations, dict)
                                    or not all(isinstance(v, str) for v in annotations.values())):
        return "invalid"
    either = False
    if "subject" in document:
        if document["subject"] is None:
            either = True  # null for an optional field: absent to some parsers, an error to others
        elif _descriptor_verdict(document["subject"]) == "invalid":
            return "invalid"
    if any(d not in present.blobs for d in wanted_blobs) or any(d not in present.manifests
                                                                 for d in wanted_manifests):
        return "missing"
    return "either" if either else "valid"


_junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=False,
                                                                                  allow_infinity=False),
              st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)
def _mostly(values: list[Any]) -> st.SearchStrategy[Any]:
    """One of ``values`` two times in three, else any JSON at all."""
    return st.one_of(st.sampled_from(values), st.sampled_from(values), _junk)


_media_types = _mostly([
    OCI_CONFIG, OCI_LAYER, FOREIGN_LAYER, OCI_MANIFEST, "application/vnd.example.thing.v1+json",
    "text/plain; charset=utf-8", "no-slash", "a/b/c", "", " ", "application/\x00", "application/\ud800",
    "application/é", "APPLICATION/JSON", "application/", "/json", "a" * 130 + "/b"])
_digests = st.one_of(st.sampled_from([Known("config"), Known("layer"), Known("child")]), well_formed_digests,
                     near_miss_digests, _junk)
_sizes = st.one_of(st.integers(0, 10 ** 6), _mostly([-1, 0, 2 ** 63 - 1, 2 ** 63, 10 ** 40, 2.0, 1e3, True, "1"]))
_schema_versions = _mostly([2, 1, 3, "2", 2.0, True, None, -2, 2 ** 64])


_descriptors = st.fixed_dictionaries({"mediaType": _media_types, "digest": _digests, "size": _sizes})


# Where a mutation lands, and what it sets there.
_PATHS: dict[tuple[Any, ...], st.SearchStrategy[Any]] = {
    ("schemaVersion",): _schema_versions,
    ("mediaType",): _mostly([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, "",
                             "application/vnd.oci.artifact.manifest.v1+json",
                             "application/vnd.docker.distribution.manifest.v1+json"]),
    ("config",): st.one_of(_junk, _descriptors),
    ("config", "mediaType"): _media_types,
    ("config", "digest"): _digests,
    ("config", "size"): _sizes,
    ("layers",): st.one_of(_junk, st.lists(_descriptors, max_size=2)),
    ("layers", 0, "mediaType"): _media_types,
    ("layers", 0, "digest"): _digests,
    ("layers", 0, "size"): _sizes,
    ("manifests",): st.one_of(_junk, st.lists(_descriptors, max_size=2)),
    ("manifests", 0, "digest"): _digests,
    ("manifests", 0, "mediaType"): _media_types,
    ("manifests", 0, "size"): _sizes,
    ("subject",): st.one_of(_junk, st.fixed_dictionaries({"mediaType": st.just(OCI_MANIFEST),
                                                          "digest": well_formed_digests, "size": st.just(10)})),
    ("subject", "digest"): _digests,
    ("artifactType",): _media_types,
    ("annotations",): st.one_of(_junk, st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3)),
    ("annotations", "k"): st.one_of(st.text(max_size=10), st.sampled_from(["\x00", "\ud800", "a\udfffb"]), _junk),
    ("x-extra",): _junk,
}
_paths = sorted(_PATHS, key=repr)
_set = st.sampled_from(_paths).flatmap(lambda path: st.tuples(st.just("set"), st.just(path), _PATHS[path]))
mutations = st.lists(st.one_of(_set, _set, _set, st.tuples(st.just("delete"), st.sampled_from(_paths), st.none())),
                     min_size=1, max_size=3)
# Damage done to the serialized bytes, each with the verdict it forces ("valid" leaves the judge's).
encodings = st.one_of(
    st.sampled_from(["plain", "plain", "plain", "indent", "duplicate-key", "invalid-utf8", "encoded-surrogate",
                     "bom", "utf16", "nan", "infinity", "trailing-garbage", "trailing-newline", "truncated",
                     "too-large"]),
    st.integers(1, 80).map(lambda depth: f"deep-{depth}"),
    st.sampled_from(["deep-100", "deep-100000"]),
)


def _resolve(value: Any, present: Present) -> Any:
    if isinstance(value, Known):
        return present.digests[value.what]
    if isinstance(value, dict):
        return {k: _resolve(v, present) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, present) for v in value]
    return value


def _mutate(document: dict[str, Any], mutation: tuple[str, tuple[Any, ...], Any], present: Present) -> None:
    action, path, value = mutation
    parent: Any = document
    for key in path[:-1]:
        if (isinstance(parent, dict) and key in parent) or (isinstance(parent, list) and isinstance(key, int)
                                                            and key < len(parent)):
            parent = parent[key]
        else:
            return
    last = path[-1]
    if isinstance(parent, dict):
        if action == "set":
            parent[last] = _resolve(value, present)
        else:
            parent.pop(last, None)
    elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
        if action == "set":
            parent[last] = _resolve(value, present)
        else:
            del parent[last]


def _serialize(document: Any, encoding: str) -> tuple[bytes, str]:
    """The bytes of ``document`` as ``encoding`` spells them, and the verdict that forces ("" for none)."""
    text = json.dumps(document, indent=2 if encoding == "indent" else None)
    if encoding in ("plain", "indent", "trailing-newline") or not isinstance(document, dict) or not document:
        return (text + "\n").encode() if encoding == "trailing-newline" else text.encode(), ""
    inner = text[:-1]
    if encoding == "duplicate-key":
        key = next(iter(document))
        return f'{inner}, {json.dumps(key)}: {json.dumps(document[key])}}}'.encode(), "invalid"
    if encoding == "invalid-utf8":
        return inner.encode() + b', "x-note": "a\xffb"}', "invalid"
    if encoding == "encoded-surrogate":
        return inner.encode() + b', "x-note": "a\xed\xa0\x80b"}', "invalid"
    if encoding == "bom":
        return b"\xef\xbb\xbf" + text.encode(), "invalid"
    if encoding == "utf16":
        return text.encode("utf-16"), "invalid"
    if encoding in ("nan", "infinity"):
        return f'{inner}, "x-number": {"NaN" if encoding == "nan" else "-Infinity"}}}'.encode(), "invalid"
    if encoding == "trailing-garbage":
        return text.encode() + b" {}", "invalid"
    if encoding == "truncated":
        return text.encode()[:len(text) // 2], "invalid"
    if encoding == "too-large":
        return f'{inner}, "x-pad": "{"a" * MAX_MANIFEST}"}}'.encode(), "too-large"
    depth = int(encoding.removeprefix("deep-"))
    # The document itself is one level; its "x-deep" array nests ``depth`` more.
    return f'{inner}, "x-deep": {"[" * depth}{"]" * depth}}}'.encode(), "" if depth + 1 <= MAX_DEPTH else "invalid"


@pytest.fixture
def present(client: httpx.Client, repo: str) -> Present:
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"layer bytes"
    child, child_body = push_image(client, repo, "child")
    digests = {"config": push_blob(client, repo, config), "layer": push_blob(client, repo, layer), "child": child}
    return Present(blobs=frozenset({digests["config"], digests["layer"]}), manifests=frozenset({child}),
                   digests=digests, sizes={"config": len(config), "layer": len(layer), "child": len(child_body)})


def _base(kind: str, present: Present) -> Any:
    """A valid document of ``kind``: an image, an artifact (an image with artifactType, subject and
    annotations) or an index."""
    d, s = present.digests, present.sizes
    if kind == "index":
        return {"schemaVersion": 2, "mediaType": OCI_INDEX,
                "manifests": [{"mediaType": OCI_MANIFEST, "digest": d["child"], "size": s["child"]}]}
    image = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
             "config": {"mediaType": OCI_CONFIG, "digest": d["config"], "size": s["config"]},
             "layers": [{"mediaType": OCI_LAYER, "digest": d["layer"], "size": s["layer"]}]}
    if kind == "artifact":
        image.update({"artifactType": "application/vnd.example.sbom.v1+json", "annotations": {"k": "v"},
                      "subject": {"mediaType": OCI_MANIFEST, "digest": d["child"], "size": s["child"]}})
    return image


@fuzz(400)
@given(base=st.sampled_from(["image", "artifact", "index", "junk"]), junk=_junk, mutations=mutations,
       encoding=encodings, header=st.sampled_from(["base", "base", "none"]),
       by=st.sampled_from(["tag", "tag", "digest", "wrong-digest"]))
def test_any_manifest_body(client: httpx.Client, repo: str, present: Present, base: str, junk: Any,
                           mutations: list[tuple[str, tuple[Any, ...], Any]], encoding: str, header: str,
                           by: str) -> None:
    """A manifest is stored exactly when the specs make it valid; otherwise it is refused with MANIFEST_INVALID
    (413 when too large), MANIFEST_BLOB_UNKNOWN when it names what the repository lacks, DIGEST_INVALID when the
    URL's digest is not the body's, and nothing of it can be fetched afterwards."""
    document = json.loads(json.dumps(junk if base == "junk" else _base(base, present)))
    for mutation in mutations if isinstance(document, dict) else []:
        _mutate(document, mutation, present)
    body, forced = _serialize(document, encoding)
    content_type = {"image": OCI_MANIFEST, "artifact": OCI_MANIFEST, "index": OCI_INDEX}.get(base) \
        if header == "base" else None
    verdict = forced or judge(document, content_type, present)
    digest = digest_of(body)
    tag = f"m{uuid.uuid4().hex[:10]}"
    reference = {"tag": tag, "digest": digest, "wrong-digest": digest_of(body + b" ")}[by]
    pushed = client.put(f"/v2/{repo}/manifests/{reference}", content=body,
                        headers={"Content-Type": content_type} if content_type else {})
    given = (verdict, content_type, body[:600])
    if verdict == "too-large":
        expect(pushed, 413, "MANIFEST_INVALID", given=given)
    elif by == "wrong-digest":
        expect(pushed, 400, "DIGEST_INVALID", given=given)
    elif verdict == "invalid":
        expect(pushed, 400, "MANIFEST_INVALID", "DIGEST_INVALID", given=given)
    elif verdict == "missing":
        expect(pushed, 400, "MANIFEST_BLOB_UNKNOWN", given=given)
    elif verdict == "valid":
        expect(pushed, 201, given=given)
    else:
        expect(pushed, (201, 400), "MANIFEST_INVALID", given=given)

    fetched = [client.get(f"/v2/{repo}/manifests/{digest}"), client.get(f"/v2/{repo}/blobs/{digest}")]
    if by == "tag":
        fetched.append(client.get(f"/v2/{repo}/manifests/{tag}"))
    if pushed.status_code == 201:
        assert pushed.headers["Docker-Content-Digest"] == digest
        for answer in fetched:
            assert expect(answer, 200).content == body
            assert answer.headers["Docker-Content-Digest"] == digest
        subject = document.get("subject")
        if isinstance(subject, dict):
            assert pushed.headers["OCI-Subject"] == subject["digest"]
            listed = expect(client.get(f"/v2/{repo}/referrers/{subject['digest']}"), 200).json()["manifests"]
            assert digest in [d["digest"] for d in listed]
        expect(client.delete(f"/v2/{repo}/manifests/{digest}"), 202)
    else:
        # Nothing partially written: not under the tag, not under its digest, not as a blob.
        expect(fetched[0], 404, "MANIFEST_UNKNOWN")
        expect(fetched[1], 404, "BLOB_UNKNOWN")
        if by == "tag":
            expect(fetched[2], 404, "MANIFEST_UNKNOWN")


# -- chunked uploads ---------------------------------------------------------------------------------------------------
_content_ranges = st.one_of(
    st.sampled_from(["right", "right", "right", "bytes right", "bytes=right", "right/*", "right/total", "none",
                     "stream", "overlap", "skip", "length+1", "inverted", "huge-start", "huge-end", "negative"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20).map("garbage:".__add__),
)
chunks = st.lists(st.tuples(st.binary(max_size=700), _content_ranges), max_size=6)


def _content_range(mode: str, offset: int, size: int) -> str | None:
    """The Content-Range ``mode`` writes for ``size`` bytes sent when the upload holds ``offset``."""
    end = offset + size - 1
    ranges = {"right": f"{offset}-{end}", "bytes right": f"bytes {offset}-{end}",
              "bytes=right": f"bytes={offset}-{end}",
              "right/*": f"{offset}-{end}/*", "right/total": f"{offset}-{end}/{offset + size}",
              "overlap": f"{max(offset - 1, 0)}-{max(offset - 1, 0) + size - 1}", "skip": f"{offset + 1}-{end + 1}",
              "length+1": f"{offset}-{end + 1}", "inverted": f"{end + 5}-{offset}",
              "huge-start": f"{'9' * 5000}-{'9' * 5000}", "huge-end": f"{offset}-{'9' * 5000}",
              "negative": f"-{offset + 1}-{end}"}
    if mode.startswith("garbage:"):
        return mode.removeprefix("garbage:")
    return ranges.get(mode)


_SPEC_CHUNK_RANGE = re.compile(r"([0-9]+)-([0-9]+)")
# Forms clients send beside the spec's ``<start>-<end>``: a registry may take them or refuse them as malformed.
_LENIENT_CHUNK_RANGE = re.compile(r"(?:bytes[ =])?([0-9]+)-([0-9]+)(?:/(?:[0-9]+|\*))?")


def _chunk_verdict(content_range: str | None, offset: int, size: int) -> tuple[int, ...]:
    """The statuses the spec allows for ``size`` bytes sent with ``content_range`` when the upload holds
    ``offset``: 202 taken, 416 out of order, 400 malformed (or naming another length than is sent)."""
    if content_range is None:
        return (202,)
    match = _SPEC_CHUNK_RANGE.fullmatch(content_range) or _LENIENT_CHUNK_RANGE.fullmatch(content_range)
    if match is None:
        return (400,)
    start, end = big(match.group(1)), big(match.group(2))
    if end < start:
        verdict: tuple[int, ...] = (400,)
    elif end - start + 1 != size:
        verdict = (400,) if start == offset else (400, 416)
    else:
        verdict = (202,) if start == offset else (416,)
    return verdict if _SPEC_CHUNK_RANGE.fullmatch(content_range) else (*verdict, 400)


def _start(client: httpx.Client, repo: str) -> str:
    return str(expect(client.post(f"/v2/{repo}/blobs/uploads/"), 202).headers["Location"])


@fuzz(120)
@given(chunks=chunks, last=st.binary(max_size=300),
       closing=st.sampled_from(["right", "right", "right-sha512", "wrong", "malformed", "none", "last-wrong-range"]))
def test_any_sequence_of_chunks(client: httpx.Client, repo: str, chunks: list[tuple[bytes, str]], last: bytes,
                                closing: str) -> None:
    """Chunks with right and wrong Content-Range, then the closing PUT: the upload holds exactly the chunks it
    acknowledged, and the blob is then served with exactly those bytes under its digest, or the registry says why
    not; no content is ever served under a digest it does not have."""
    location = _start(client, repo)
    held = b""
    try:
        for data, mode in chunks:
            value = _content_range(mode, len(held), len(data))
            headers = {"Content-Type": "application/octet-stream"}
            if value is not None:
                headers["Content-Range"] = value
            content: Any = iter([data[:len(data) // 2], data[len(data) // 2:]]) if mode == "stream" else data
            answer = client.patch(location, content=content, headers=headers)
            expect(answer, _chunk_verdict(value, len(held), len(data)), "BLOB_UPLOAD_INVALID", "SIZE_INVALID",
                   given=(value, len(held), len(data)))
            if answer.status_code == 202:
                held += data
                location = answer.headers["Location"]
            if answer.status_code in (202, 416):
                assert answer.headers["Range"] == f"0-{max(len(held) - 1, 0)}", (mode, answer.headers)
            progress = expect(client.get(location), 204)
            assert progress.headers["Range"] == f"0-{max(len(held) - 1, 0)}", (mode, progress.headers)

        whole = held + last
        digest = {"right": digest_of(whole), "right-sha512": digest_of(whole, "sha512"),
                  "wrong": digest_of(b"never pushed:" + whole), "malformed": "sha256:" + digest_of(whole)[7:].upper(),
                  "none": None, "last-wrong-range": digest_of(whole)}[closing]
        headers = {"Content-Range": f"{len(held) + 1}-{len(whole)}"} if closing == "last-wrong-range" and last else {}
        closed = client.put(location, params={"digest": digest} if digest else {}, content=last, headers=headers)
        if closing in ("right", "right-sha512") or (closing == "last-wrong-range" and not last):
            expect(closed, 201)
            assert closed.headers["Docker-Content-Digest"] == digest
            served = expect(client.get(f"/v2/{repo}/blobs/{digest}"), 200)
            assert served.content == whole, "a blob must be served with exactly the bytes pushed"
            assert expect(client.head(f"/v2/{repo}/blobs/{digest}"), 200).headers["Content-Length"] == str(len(whole))
            expect(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
        elif closing == "wrong":
            expect(closed, 400, "DIGEST_INVALID")
            expect(client.get(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
            expect(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
        elif closing == "malformed":
            expect(closed, 400, "DIGEST_INVALID")
        elif closing == "none":
            expect(closed, 400, "BLOB_UPLOAD_INVALID")
        else:
            expect(closed, 416, "BLOB_UPLOAD_INVALID")
            progress = expect(client.get(location), 204)
            assert progress.headers["Range"] == f"0-{max(len(held) - 1, 0)}", "a refused chunk must add nothing"
    finally:
        client.delete(location)  # sessions count against the account's cap; most are already gone (404)
