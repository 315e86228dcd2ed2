"""The distribution protocol suite: every test here runs against moorage on SQLite, again on PostgreSQL, and the
blob and upload tests a third time on PostgreSQL with the blobs in S3, speaking the protocol by hand with the
helpers of ``tests.support.oci``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.databases import moorage_on_each_store, moorage_on_postgresql_s3  # noqa: F401
from tests.support.moorage import MoorageServer
from tests.support.oci import OCI_INDEX, OCI_MANIFEST, assert_error, digest_of, image_manifest, push_blob, push_image

# The helpers live in tests.support.oci; the test modules here still import them from this conftest.
__all__ = ["OCI_INDEX", "OCI_MANIFEST", "assert_error", "digest_of", "image_manifest", "push_blob", "push_image"]


#: Where object storage changes what the server does: blob reads, uploads, chunks. Everything else in this suite is
#: metadata, which the PostgreSQL run already covers; running it a third time would cost CI minutes for nothing new.
ON_OBJECT_STORAGE = ("test_blobs.py", "test_uploads.py", "test_fuzz.py::test_any_sequence_of_chunks")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        on_s3 = "[postgresql_s3" in item.nodeid and item.nodeid.startswith("tests/registry/")
        (dropped if on_s3 and not any(part in item.nodeid for part in ON_OBJECT_STORAGE) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def client(moorage: MoorageServer) -> Iterator[httpx.Client]:
    with moorage.client() as c:
        yield c


@pytest.fixture
def repo(moorage: MoorageServer) -> str:
    """A fresh repository name in the shared test project."""
    return moorage.project("library") + f"/r{uuid.uuid4().hex[:10]}"
