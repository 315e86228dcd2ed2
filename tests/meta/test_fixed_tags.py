"""An immutable tag is decided in the push's own transaction: a push that passed the rule check before another
first push of the same tag committed still cannot move the tag that push created."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from moorage.meta.migrate import upgrade
from moorage.meta.registry import NewManifest, RegistryModel, TagTaken
from moorage.meta.store import MetaStore

pytestmark = pytest.mark.fast


def image(registry: RegistryModel, repo: str, name: bytes) -> NewManifest:
    layer = "sha256:" + hashlib.sha256(name).hexdigest()
    assert registry.link_blob(repo, layer, len(name))
    content = b'{"layers":["' + layer.encode() + b'"]}'
    return NewManifest("sha256:" + hashlib.sha256(content).hexdigest(), "application/vnd.oci.image.manifest.v1+json",
                       None, None, None, content, (layer,), ())


def test_a_fixed_tag_is_created_once_and_never_moved(tmp_path: Path) -> None:
    store = MetaStore(f"sqlite:///{tmp_path / 'moorage.db'}")
    upgrade(store)
    registry = RegistryModel(store)
    first, second = image(registry, "team/app", b"first"), image(registry, "team/app", b"second")
    # Both pushes found no "release" when their rule check ran; the first to write creates it.
    registry.put_manifest("team/app", first, ["release"], fixed=["release"])
    with pytest.raises(TagTaken) as taken:
        registry.put_manifest("team/app", second, ["release"], fixed=["release"])
    assert taken.value.tag == "release"
    held = registry.manifest_by_tag("team/app", "release")
    assert held is not None and held.digest == first.digest
    assert registry.manifest_by_digest("team/app", second.digest) is None, "the refused push left nothing"
    # The same content again is no move; and a tag no rule holds moves as before.
    registry.put_manifest("team/app", first, ["release"], fixed=["release"])
    registry.put_manifest("team/app", second, ["release"])
    assert registry.manifest_by_tag("team/app", "release").digest == second.digest  # type: ignore[union-attr]
