"""The distribution protocol suite: every test here runs against moorage on SQLite and again on PostgreSQL,
speaking the protocol by hand with the helpers of ``tests.support.oci``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.databases import moorage_on_each_database  # noqa: F401
from tests.support.moorage import MoorageServer
from tests.support.oci import OCI_INDEX, OCI_MANIFEST, assert_error, digest_of, image_manifest, push_blob, push_image

# The helpers live in tests.support.oci; the test modules here still import them from this conftest.
__all__ = ["OCI_INDEX", "OCI_MANIFEST", "assert_error", "digest_of", "image_manifest", "push_blob", "push_image"]


@pytest.fixture
def client(moorage: MoorageServer) -> Iterator[httpx.Client]:
    with moorage.client() as c:
        yield c


@pytest.fixture
def repo(moorage: MoorageServer) -> str:
    """A fresh repository name in the shared test project."""
    return moorage.project("library") + f"/r{uuid.uuid4().hex[:10]}"
