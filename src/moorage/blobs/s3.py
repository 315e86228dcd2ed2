"""Content store in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, SeaweedFS, GCS's S3 API).

Layout under ``s3_prefix``: ``blobs/<alg>/<2 hex>/<hex>`` for committed content, and per upload
``_uploads/<id>/data`` (its multipart upload, completed only once the digest is verified) plus
``_uploads/<id>/tail-<offset>-<random>`` objects.

An upload streams into multipart parts of ``PART_SIZE`` bytes, so a process holds one part per upload at
most and nothing on local disk. S3 refuses parts under 5 MiB except the last, so what a chunk leaves
over that is too small for a part (a chunked push with small chunks) is kept as a *tail* object and
read back by the next chunk: never more than ``MIN_PART`` bytes, never the whole prefix. The multipart
upload's id, its parts and the tail's key are the upload's ``state`` (JSON), saved by the caller with
the session's offset, so the next chunk may arrive at any replica or after a restart.

The client is boto3 (botocore): AWS's own, maintained, thread-safe and working with every S3-compatible
server; its calls block, and the server makes them on worker threads (``remote``). aiobotocore tracks
botocore's private internals with a pinned version and obstore lacks multipart part-level control
(UploadPart with our own part numbers), which resumable uploads across replicas need.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import anyio.to_thread

from moorage.blobs.driver import Body, Chunks, Redirect
from moorage.core.errors import BlobStoreUnavailable, Unavailable

log = logging.getLogger("moorage.blobs.s3")

MiB = 1024 * 1024
#: Size of every part but the last. 10,000 parts (S3's most) make a largest blob of 160 GiB.
PART_SIZE = 16 * MiB
#: S3's smallest part other than the last.
MIN_PART = 5 * MiB
# A blob GET reads the object this much at a time: Granian queues up to four chunks per response, so
# this is what one stream holds (the filesystem's streams hold 128-512 KiB the same way).
_READ_SIZE = 256 * 1024
# DeleteObjects takes at most this many keys per request.
_DELETE_BATCH = 1000
#: How long a presigned GET URL is valid (distribution uses 20 minutes too).
PRESIGN_SECONDS = 20 * 60
# Server-side copies up to this size are one CopyObject; S3 refuses larger ones (5 GiB), which are copied
# part by part.
_COPY_THRESHOLD = 4 * 1024 * MiB


@dataclass(frozen=True, slots=True)
class S3Config:
    bucket: str
    endpoint: str = ""
    region: str = ""
    path_style: bool = False
    prefix: str = ""
    redirect: bool = False
    #: Empty: boto3's own lookup (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, instance roles).
    access_key: str = ""
    secret_key: str = field(default="", repr=False)


def make_client(config: S3Config) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:  # pragma: no cover - the s3 extra is not installed
        raise RuntimeError("storage_backend = s3 needs boto3: pip install 'moorage[s3]'") from None
    credentials = ({"aws_access_key_id": config.access_key, "aws_secret_access_key": config.secret_key}
                   if config.access_key else {})
    session = boto3.session.Session(**credentials)
    return session.client(
        "s3", endpoint_url=config.endpoint or None, region_name=config.region or None,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if config.path_style else "auto"},
            retries={"mode": "standard", "max_attempts": 5},
            # One connection per concurrent stream or part; the default 10 would queue a pull storm.
            max_pool_connections=128,
            # S3-compatible servers other than AWS often reject the CRC headers newer botocores add by default.
            request_checksum_calculation="when_required", response_checksum_validation="when_required"))


def _status(exc: Exception) -> int:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _is_missing(exc: Exception) -> bool:
    return _status(exc) == 404 or _code(exc) in ("NoSuchKey", "NoSuchUpload", "404", "NotFound")


@contextlib.contextmanager
def _unavailable(what: str) -> Iterator[None]:
    """Turn the client's failures (unreachable, refused, misconfigured) into the domain's 503, logged with
    their cause; the message never carries credentials (botocore's errors do not)."""
    from botocore.exceptions import BotoCoreError, ClientError
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        log.warning("object storage failed to %s: %s", what, exc)
        raise BlobStoreUnavailable() from exc


@contextlib.contextmanager
def _unavailable_database() -> Iterator[None]:
    import sqlalchemy.exc
    try:
        yield
    except sqlalchemy.exc.OperationalError as exc:
        log.warning("cannot lock an upload in the metadata database: %s", getattr(exc, "orig", exc))
        raise Unavailable() from exc


@dataclass
class _State:
    mpu: str | None = None
    parts: list[tuple[int, str, int]] = field(default_factory=list)  # part number, ETag, size
    tail: str | None = None
    tail_size: int = 0
    #: Earlier chunks' tails, consumed since: deleted with the upload, found without listing the bucket.
    spent: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, raw: bytes | None) -> _State:
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(data.get("mpu"), [tuple(p) for p in data.get("parts", [])],  # type: ignore[misc]
                   data.get("tail"), int(data.get("tail_size", 0)), list(data.get("spent", [])))

    def dump(self) -> bytes:
        return json.dumps({"mpu": self.mpu, "parts": self.parts, "tail": self.tail, "tail_size": self.tail_size,
                           "spent": self.spent}, separators=(",", ":")).encode()

    @property
    def size(self) -> int:
        return sum(p[2] for p in self.parts) + self.tail_size


class _UploadWriter:
    """One chunk appended to an upload: whole parts go up as they fill; the rest becomes the tail at close."""

    def __init__(self, driver: S3Driver, upload_id: str, offset: int, state: _State) -> None:
        self.driver = driver
        self.upload_id = upload_id
        self.offset = offset
        self._state = state
        self.buffer = bytearray()
        self.loaded = False
        self.dropped = False
        self.closed = False

    @property
    def state(self) -> bytes | None:
        return self._state.dump()

    def _load_tail(self) -> None:
        # The first byte of a chunk: the part being filled starts with the previous chunk's tail.
        self.loaded = True
        state = self._state
        if state.tail is not None:
            self.buffer += self.driver.get_bytes(state.tail)
            if len(self.buffer) != state.tail_size:
                raise BlobStoreUnavailable("the upload's stored tail has changed size; start the upload again")
            # From here the tail's bytes go into a part or the next tail; it stays until the upload is dropped, in
            # case this chunk fails and the saved state (which still names it) is used again.
            state.spent.append(state.tail)
            state.tail, state.tail_size = None, 0

    def write(self, data: bytes) -> int:
        if not self.loaded:
            self._load_tail()
        self.buffer += data
        while len(self.buffer) >= PART_SIZE:
            self._put_part(PART_SIZE)
        return len(data)

    def _put_part(self, size: int) -> None:
        state = self._state
        if state.mpu is None:
            state.mpu = self.driver.create_multipart(self.upload_id)
        number = len(state.parts) + 1
        with memoryview(self.buffer) as view:
            body = bytes(view[:size])  # one copy (a slice of the bytearray would be a second)
        etag = self.driver.upload_part(self.upload_id, state.mpu, number, body)
        del self.buffer[:size]
        state.parts.append((number, etag, size))
        state.tail, state.tail_size = None, 0

    def truncate(self, size: int) -> int:
        self.dropped = True  # the session keeps its saved state: the parts written past it are never listed
        self.buffer = bytearray()
        return size

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.dropped or not self.loaded:
            return
        state = self._state
        if len(self.buffer) >= MIN_PART:
            self._put_part(len(self.buffer))
        elif self.buffer:
            # Each chunk's own name: a retry of this chunk racing it (on another replica) never overwrites the
            # tail the winner's saved state names.
            key = self.driver.tail_key(self.upload_id, sum(p[2] for p in state.parts) + len(self.buffer))
            self.driver.put_bytes(key, bytes(self.buffer))
            state.tail, state.tail_size = key, len(self.buffer)
        self.buffer = bytearray()


class _ObjectReader(io.RawIOBase):
    """A GET's body as a readable file (closing it returns the connection)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return bytes(self.stream.read(None if size < 0 else size))

    def close(self) -> None:
        if not self.closed:
            self.stream.close()
        super().close()


class S3Driver:
    remote = True

    def __init__(self, config: S3Config, client: Any | None = None,
                 locks: Callable[[str], Callable[[], None] | None] | None = None) -> None:
        self.config = config
        #: Upload locks shared by every process and replica (``moorage.meta.upload_locks``); without them, this
        #: process's own.
        self.locks = locks
        self.bucket = config.bucket
        self.prefix = config.prefix.strip("/") + "/" if config.prefix.strip("/") else ""
        self.client = client or make_client(config)
        self._locks: set[str] = set()
        self._locks_guard = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Driver(bucket={self.bucket!r}, prefix={self.prefix!r})"

    # -- keys -------------------------------------------------------------------------------------------
    def blob_key(self, digest: str) -> str:
        algorithm, _, hexpart = digest.partition(":")
        return f"{self.prefix}blobs/{algorithm}/{hexpart[:2]}/{hexpart}"

    def _upload_prefix(self, upload_id: str) -> str:
        return f"{self.prefix}_uploads/{upload_id}/"

    def _data_key(self, upload_id: str) -> str:
        return self._upload_prefix(upload_id) + "data"

    def tail_key(self, upload_id: str, end: int) -> str:
        return f"{self._upload_prefix(upload_id)}tail-{end}-{secrets.token_hex(6)}"

    # -- small object operations (the writer's) ---------------------------------------------------------
    def get_bytes(self, key: str) -> bytes:
        with _unavailable("read an upload's tail"):
            return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def put_bytes(self, key: str, data: bytes) -> None:
        with _unavailable("store an upload's tail"):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def create_multipart(self, upload_id: str) -> str:
        with _unavailable("start a multipart upload"):
            created = self.client.create_multipart_upload(Bucket=self.bucket, Key=self._data_key(upload_id),
                                                          ContentType="application/octet-stream")
        return str(created["UploadId"])

    def upload_part(self, upload_id: str, mpu: str, number: int, body: bytes) -> str:
        with _unavailable("upload a part"):
            answer = self.client.upload_part(Bucket=self.bucket, Key=self._data_key(upload_id), UploadId=mpu,
                                             PartNumber=number, Body=body)
        return str(answer["ETag"])

    def _head(self, key: str) -> int | None:
        from botocore.exceptions import ClientError
        with _unavailable("look up an object"):
            try:
                return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
            except ClientError as exc:
                if _is_missing(exc):
                    return None
                raise

    # -- the driver interface ---------------------------------------------------------------------------
    def stat(self, digest: str) -> int | None:
        return self._head(self.blob_key(digest))

    async def body(self, digest: str, byte_range: tuple[int, int] | None, redirect: bool) -> Body:
        key = self.blob_key(digest)
        if redirect and self.config.redirect:
            # Signing is local arithmetic: no request to the store, so a HEAD-free redirect.
            return Redirect(self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=PRESIGN_SECONDS))
        answer = await anyio.to_thread.run_sync(self._get, key, byte_range)
        return Chunks(int(answer["ContentLength"]), _stream(answer["Body"]))

    def _get(self, key: str, byte_range: tuple[int, int] | None) -> Any:
        from botocore.exceptions import ClientError
        extra = {"Range": f"bytes={byte_range[0]}-{byte_range[1]}"} if byte_range is not None else {}
        with _unavailable("read a blob"):
            try:
                return self.client.get_object(Bucket=self.bucket, Key=key, **extra)
            except ClientError as exc:
                if _is_missing(exc):
                    raise FileNotFoundError(key) from None
                raise

    def read_small(self, digest: str, limit: int) -> bytes | None:
        try:
            answer = self._get(self.blob_key(digest), (0, limit))
        except FileNotFoundError:
            return None
        with contextlib.closing(answer["Body"]) as stream:
            return bytes(stream.read())

    def open_upload(self, upload_id: str, offset: int, state: bytes | None) -> _UploadWriter:
        loaded = _State.load(state)
        if loaded.size != offset:
            # Only an upload begun before the switch to object storage (or a foreign row) gets here.
            from moorage.core.errors import UploadInvalid
            raise UploadInvalid(f"the upload's stored parts hold {loaded.size} bytes, not the {offset} acknowledged; "
                                "start the upload again")
        return _UploadWriter(self, upload_id, offset, loaded)

    def try_lock_upload(self, upload_id: str) -> Callable[[], None] | None:
        if self.locks is not None:
            with _unavailable_database():
                return self.locks(upload_id)
        # Within this process only (a command working alone, such as migrate-storage).
        with self._locks_guard:
            if upload_id in self._locks:
                return None
            self._locks.add(upload_id)

        def release() -> None:
            with self._locks_guard:
                self._locks.discard(upload_id)
        return release

    def _seal(self, upload_id: str, state: _State) -> str | None:
        """Complete the multipart upload (its tail as the last part); returns the key now holding the upload's
        bytes, or None when it is empty. Repeatable: a completed upload is found by its object."""
        if state.mpu is None:
            return state.tail
        key = self._data_key(upload_id)
        if self._head(key) is not None:
            return key
        parts = list(state.parts)
        if state.tail is not None:
            number = len(parts) + 1
            parts.append((number, self.upload_part(upload_id, state.mpu, number, self.get_bytes(state.tail)),
                          state.tail_size))
        with _unavailable("complete a multipart upload"):
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=state.mpu,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag, _ in parts]})
        return key

    def read_upload(self, upload_id: str, state: bytes | None) -> BinaryIO:
        key = self._seal(upload_id, _State.load(state))
        if key is None:
            return io.BytesIO(b"")
        return _ObjectReader(self._get(key, None)["Body"])  # type: ignore[return-value]

    def commit_upload(self, upload_id: str, digest: str, state: bytes | None) -> None:
        target = self.blob_key(digest)
        loaded = _State.load(state)
        if loaded.mpu is None:
            # Small (under one part): a copy costs what a look costs, and copying the same bytes again is harmless.
            with _unavailable("publish a blob"):
                if loaded.tail is None:
                    self.client.put_object(Bucket=self.bucket, Key=target, Body=b"")
                else:
                    self.client.copy_object(Bucket=self.bucket, Key=target,
                                            CopySource={"Bucket": self.bucket, "Key": loaded.tail})
            return
        if self._head(target) is not None:
            return  # only verified content is ever put under a digest: the same bytes are there already
        source = self._seal(upload_id, loaded)
        with _unavailable("publish a blob"):
            if source is None:
                self.client.put_object(Bucket=self.bucket, Key=target, Body=b"")
                return
            from boto3.s3.transfer import TransferConfig
            # Server-side: the bytes never come back through the registry.
            self.client.copy({"Bucket": self.bucket, "Key": source}, self.bucket, target,
                             Config=TransferConfig(multipart_threshold=_COPY_THRESHOLD,
                                                   multipart_chunksize=512 * MiB, max_concurrency=4))

    def list_uploads(self) -> list[tuple[str, float]]:
        found: dict[str, float] = {}
        root = f"{self.prefix}_uploads/"
        with _unavailable("list uploads"):
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket,
                                                                                  Prefix=root):
                for upload in page.get("Uploads", []):
                    upload_id = upload["Key"][len(root):].split("/", 1)[0]
                    found[upload_id] = max(found.get(upload_id, 0.0), upload["Initiated"].timestamp())
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=root):
                for item in page.get("Contents", []):
                    upload_id = item["Key"][len(root):].split("/", 1)[0]
                    found[upload_id] = max(found.get(upload_id, 0.0), item["LastModified"].timestamp())
        return sorted(found.items())

    def discard_upload(self, upload_id: str, state: bytes | None = None) -> None:
        if state is not None:
            # Everything the upload's saved state names, without listing: its multipart upload (completed or
            # not) and its objects. What a failed chunk left is the purge's, which lists.
            known = _State.load(state)
            if known.mpu is not None:
                from botocore.exceptions import ClientError
                with _unavailable("abort a multipart upload"):
                    try:
                        self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._data_key(upload_id),
                                                           UploadId=known.mpu)
                    except ClientError as exc:
                        if not _is_missing(exc):
                            raise
            self._delete_keys([self._data_key(upload_id), *([known.tail] if known.tail else []), *known.spent])
            return
        prefix = self._upload_prefix(upload_id)
        from botocore.exceptions import ClientError
        with _unavailable("discard an upload"):
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket,
                                                                                  Prefix=prefix):
                for upload in page.get("Uploads", []):
                    try:
                        self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                           UploadId=upload["UploadId"])
                    except ClientError as exc:
                        if not _is_missing(exc):
                            raise
            keys = [item["Key"] for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix) for item in page.get("Contents", [])]
        self._delete_keys(keys)

    def delete(self, digest: str) -> None:
        with _unavailable("delete a blob"):
            self.client.delete_object(Bucket=self.bucket, Key=self.blob_key(digest))

    def delete_many(self, digests: Iterable[str]) -> None:
        self._delete_keys([self.blob_key(digest) for digest in digests])

    def _delete_keys(self, keys: list[str]) -> None:
        for first in range(0, len(keys), _DELETE_BATCH):
            batch = keys[first:first + _DELETE_BATCH]
            with _unavailable("delete objects"):
                answer = self.client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": key} for key in batch], "Quiet": True})
            failed = [e for e in answer.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if failed:
                log.warning("object storage kept %d of %d object(s) asked to delete, e.g. %s: %s", len(failed),
                            len(batch), failed[0].get("Key"), failed[0].get("Message"))
                raise BlobStoreUnavailable()


async def _stream(stream: Any) -> AsyncIterator[bytes]:
    """A GET's body in chunks read on worker threads; the connection goes back to the pool at the end (or when
    the client hangs up and the response drops this iterator)."""
    try:
        while chunk := await anyio.to_thread.run_sync(stream.read, _READ_SIZE):
            yield bytes(chunk)
    finally:
        stream.close()
