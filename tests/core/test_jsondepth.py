"""JSON from clients with a bound on nesting: refused before the parser recurses, never a RecursionError."""

from __future__ import annotations

import json

import pytest

from moorage.core.jsondepth import MAX_DEPTH, TooDeeplyNested, loads

pytestmark = pytest.mark.fast


def nest(depth: int) -> str:
    return '{"a":[' * (depth // 2) + ("[]" if depth % 2 else "1") + "]}" * (depth // 2)


def test_the_limit_is_exact() -> None:
    assert loads(nest(MAX_DEPTH)) is not None
    with pytest.raises(TooDeeplyNested, match=f"deeper than {MAX_DEPTH} levels"):
        loads(nest(MAX_DEPTH + 1))
    assert loads("[" * 5 + "]" * 5, max_depth=5) == [[[[[]]]]]


@pytest.mark.parametrize("document", [
    b"[" * 100_000 + b"]" * 100_000,
    b"[" * 4_000_000,  # never closed: the parser would still recurse into it
    ("[" * 100_000).encode("utf-16"),  # json.loads reads UTF-16 too, so the scan must
    '["x\\"]", ' + "{" * 100 + "}" * 100 + "]",  # an escaped quote does not end the string
])
def test_deep_documents_are_refused(document: bytes | str) -> None:
    with pytest.raises(TooDeeplyNested):
        loads(document)


@pytest.mark.parametrize("document", [
    json.dumps({"text": "[" * 100_000}),
    json.dumps({"text": "\\" + "]" * 10 + '"' + "[" * 1000}),
    json.dumps(["{" * 70, ["}" * 70]]),
])
def test_brackets_inside_strings_are_text(document: str) -> None:
    assert loads(document) == json.loads(document)
    assert loads(document.encode()) == json.loads(document)


@pytest.mark.parametrize("document", [b"{not json", b'{"a": "\xff"}', b"9" * 5000, b'"' + b'\\"' * 1000])
def test_other_bad_input_is_the_usual_value_error(document: bytes) -> None:
    with pytest.raises(ValueError) as raised:
        loads(document)
    assert not isinstance(raised.value, TooDeeplyNested)
