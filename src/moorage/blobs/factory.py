"""The blob driver the settings ask for (``storage_backend``)."""

from __future__ import annotations

from moorage.blobs.driver import BlobDriver
from moorage.blobs.filesystem import FilesystemDriver
from moorage.meta.store import MetaStore
from moorage.meta.upload_locks import UploadLocks
from moorage.settings import Settings, SettingsError


def build_driver(settings: Settings, store: MetaStore | None = None) -> BlobDriver:
    """``store``: the metadata store whose locks hold upload sessions across processes (a server needs it; a
    command that makes its own uploads alone does not)."""
    if settings.storage_backend == "filesystem":
        return FilesystemDriver(settings.data_dir)
    if not settings.s3_bucket:
        raise SettingsError("s3_bucket: storage_backend = s3 needs a bucket; set s3_bucket (MOORAGE_S3_BUCKET)")
    from moorage.blobs.s3 import S3Config, S3Driver  # boto3 is imported only where S3 is used
    locks = UploadLocks(store).try_lock if store is not None else None
    return S3Driver(S3Config(bucket=settings.s3_bucket, endpoint=settings.s3_endpoint, region=settings.s3_region,
                             path_style=settings.s3_path_style, prefix=settings.s3_prefix,
                             redirect=settings.s3_redirect, access_key=settings.s3_access_key_id,
                             secret_key=settings.s3_secret_access_key), locks=locks)
