"""Project quotas: how much a project may store, and refusing a push that would take it past that.

A project's usage is the size of the distinct content its repositories hold through manifests (each digest
once per project, however many images share it); ``moorage.meta.quotas`` keeps it exact in the transactions
that add and remove manifests, and the manifest PUT is where the limit is enforced without exception: its
transaction counts what the manifest adds and refuses it when that passes the limit.

Earlier, where the size is known before any byte is stored (a monolithic upload with ``Content-Length``, a
mount from another repository), and at the latest when an upload's blob is verified and about to be committed,
the same question is asked of the blob alone, so a push bound to be refused is refused before its bytes take
space. Those early answers are advisory (concurrent pushes may each fit alone); the manifest's is final.
"""

from __future__ import annotations

from moorage.core.errors import InvalidInput, QuotaExceeded
from moorage.meta.quotas import UNLIMITED, OverQuota, QuotaModel, project_of
from moorage.meta.store import MetaStore

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human(size: int) -> str:
    """A byte count as people read it: ``100 MiB``, ``42.1 MiB``, ``512 B``."""
    value = float(size)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            if unit == "B":
                return f"{size} B"
            text = f"{value:.1f}"
            return f"{text.removesuffix('.0')} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def exceeded(project: str, adding: int, used: int, hard: int) -> QuotaExceeded:
    return QuotaExceeded(
        f"adding {human(adding)} would exceed the project's limit of {human(hard)}; {human(used)} used "
        f"(project {project}: delete images it no longer needs and run garbage collection, or ask an "
        "administrator to raise its storage limit)",
        detail={"project": project, "adding": adding, "used": used, "limit": hard})


def refused(over: OverQuota) -> QuotaExceeded:
    """The domain's refusal for the store's."""
    return exceeded(over.project, over.adding, over.used, over.hard)


def storage_limit(value: int, where: str = "storage_limit") -> int:
    """A hard limit as given by a client: bytes, or -1 for none."""
    if value != UNLIMITED and value < 0:
        raise InvalidInput(f"{where} must be a number of bytes (0 or more), or -1 for no limit, not {value}")
    return value


class QuotaService:
    def __init__(self, store: MetaStore, model: QuotaModel) -> None:
        self.store = store
        self.model = model

    async def admit_blob(self, repo: str, digest: str, size: int) -> None:
        """Refuse a blob of ``size`` bytes for ``repo`` when counting it would pass its project's limit; a blob
        the project already counts adds nothing and is always admitted."""
        project = project_of(repo)
        if project is None:
            return
        found = await self.store.query(self.model.admission, project, digest)
        if found is None:
            return
        hard, used, counted = found
        if hard != UNLIMITED and not counted and used + size > hard:
            raise exceeded(project, size, used, hard)

    async def admit_mount(self, repo: str, source: str, digest: str) -> None:
        """As ``admit_blob``, for a blob mounted from ``source`` (its size is what ``source`` recorded); nothing
        to say when ``source`` lacks it: the mount falls back to an upload, checked in its turn."""
        if project_of(repo) is None:
            return
        size = await self.store.query(self.model.blob_size, source, digest)
        if size is not None:
            await self.admit_blob(repo, digest, size)
