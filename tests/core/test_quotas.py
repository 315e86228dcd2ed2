"""How a quota's refusal reads, and which limits a client may set."""

from __future__ import annotations

import pytest

from moorage.core.errors import Denied, InvalidInput
from moorage.core.quotas import exceeded, human, storage_limit
from moorage.meta.quotas import project_of

pytestmark = pytest.mark.fast

MiB = 1024 * 1024


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 B"), (512, "512 B"), (1024, "1 KiB"), (1536, "1.5 KiB"), (100 * MiB, "100 MiB"),
    (int(42.1 * MiB), "42.1 MiB"), (int(71.3 * MiB), "71.3 MiB"), (3 * 1024 * MiB, "3 GiB"),
])
def test_sizes_read_as_people_write_them(size: int, text: str) -> None:
    assert human(size) == text


def test_the_refusal_carries_the_numbers_and_what_to_do() -> None:
    error = exceeded("team-a", int(42.1 * MiB), int(71.3 * MiB), 100 * MiB)
    assert isinstance(error, Denied)
    assert error.message.startswith("adding 42.1 MiB would exceed the project's limit of 100 MiB; 71.3 MiB used")
    assert "team-a" in error.message and "garbage collection" in error.message
    assert error.detail == {"project": "team-a", "adding": int(42.1 * MiB), "used": int(71.3 * MiB),
                            "limit": 100 * MiB}


def test_a_limit_is_bytes_or_minus_one_for_none() -> None:
    assert storage_limit(-1) == -1
    assert storage_limit(0) == 0
    assert storage_limit(10 * MiB) == 10 * MiB
    with pytest.raises(InvalidInput, match="-1 for no limit"):
        storage_limit(-2)


def test_a_repository_is_in_the_project_its_first_segment_names() -> None:
    assert project_of("team-a/app") == "team-a"
    assert project_of("team-a/tools/app") == "team-a"
    assert project_of("app") is None
