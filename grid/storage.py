"""Where attachment bytes live: a local directory or an S3-compatible object store.

The database holds who uploaded what and where it belongs; a `Store` holds only bytes under
opaque keys (`ab/<uuid>`, `ab/<uuid>.thumb.jpg`). Two implementations, chosen by configuration:

* `LocalStore` (default): a directory (`GRIDFLOW_UPLOADS`). Several web nodes can share it when
  it is a shared mount (NFS, CephFS...): keys are random and files are written once, renamed
  into place, never rewritten.
* `S3Store`: `GRIDFLOW_STORAGE=s3://bucket/prefix`, with `GRIDFLOW_S3_ENDPOINT` for a
  non-AWS server (MinIO, Ceph RGW, OSS/COS S3 endpoints) and credentials from boto3's usual
  chain (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, a profile, or an instance role). The
  nodes then share nothing but the database and the bucket.

Both answer the same small protocol, also what `engine.backup` needs to copy attachments.
"""
from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from grid.config import ConfigError

_KEY = re.compile(r"^[0-9a-zA-Z][0-9a-zA-Z._-]*(/[0-9a-zA-Z][0-9a-zA-Z._-]*)*$")


class Missing(KeyError):
    """No object under that key."""


def check_key(key: str) -> str:
    """Keys are ours (random ids), but a key that could leave the root is refused all the same."""
    if not _KEY.match(key) or ".." in key:
        raise Missing(key)
    return key


class Store(Protocol):
    """Bytes under keys. `put` replaces atomically; `keys` lists (key, last modified, UTC)."""

    description: str

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def keys(self) -> Iterator[tuple[str, datetime]]: ...
    def local_path(self, key: str) -> Path | None: ...


class LocalStore:
    """A directory; files are 0640, written to `.part` and renamed, so a reader never sees half."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.description = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise Missing(key)
        return path

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise Missing(key) from None

    def exists(self, key: str) -> bool:
        try:
            return self._path(key).is_file()
        except Missing:
            return False

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self) -> Iterator[tuple[str, datetime]]:
        if not self.root.is_dir():
            return
        for p in self.root.rglob("*"):
            if p.is_file():
                yield p.relative_to(self.root).as_posix(), datetime.fromtimestamp(p.stat().st_mtime, UTC)

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None


class S3Store:
    """A bucket (and key prefix) on any S3-compatible server, through boto3."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint: str | None = None, region: str | None = None,
                 client=None):
        import boto3
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.description = f"s3://{bucket}/{self.prefix}" + (f" at {endpoint}" if endpoint else "")
        self.client = client or boto3.client(
            "s3", endpoint_url=endpoint or None, region_name=region or None,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=60,
                          s3={"addressing_style": "path"} if endpoint else None))

    def _k(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._k(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise Missing(key) from None

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._k(key))
            return True
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._k(key))

    def keys(self) -> Iterator[tuple[str, datetime]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"][len(self.prefix):], obj["LastModified"].astimezone(UTC)

    def local_path(self, key: str) -> Path | None:
        return None


_s3_cache: dict[tuple, S3Store] = {}
_lock = threading.Lock()


def parse_s3(url: str) -> tuple[str, str]:
    """(bucket, prefix) of `s3://bucket/prefix`."""
    u = urlsplit(url)
    if u.scheme != "s3" or not u.netloc:
        raise ConfigError(f"GRIDFLOW_STORAGE={url!r} is not s3://bucket/prefix (leave it empty for GRIDFLOW_UPLOADS)")
    return u.netloc, u.path.strip("/")


def from_settings(settings) -> Store:
    """The configured store. The local one follows `settings.uploads` as it is now (tests move it);
    an S3 client is made once per configuration and shared by the threads of a process."""
    url = (settings.storage or "").strip()
    if not url:
        return LocalStore(settings.uploads)
    bucket, prefix = parse_s3(url)
    sig = (bucket, prefix, settings.s3_endpoint, settings.s3_region)
    with _lock:
        if sig not in _s3_cache:
            _s3_cache[sig] = S3Store(bucket, prefix, endpoint=settings.s3_endpoint, region=settings.s3_region)
        return _s3_cache[sig]
