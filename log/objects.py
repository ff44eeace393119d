"""Where the log's published objects live: tiles, entry bundles, the checkpoint and blobs.

An object store maps keys (``tile/0/000``, ``checkpoint``, ``blobs/ab/cdef…``) to bytes.  It is
*untrusted* (issue 12, as in Sunlight and Tessera): the lease and the compare-and-swap record
stay in the database, and the log re-checks what it reads back against the signed record.

``objects_url`` names a store: a directory path (the embedded default; the layout on disk is
the one :mod:`.log` has always used) or ``s3://bucket/prefix`` (S3 API through ``boto3``; the
endpoint and credentials come from :class:`S3Settings`, or the usual ``AWS_*`` variables).
Immutable objects are written with ``If-None-Match: *`` (S3 conditional writes) where the
store supports them, so a full tile once written is never replaced.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .fsio import write_durable, write_synced


class ObjectStoreError(RuntimeError):
    """An object store URL is malformed, or the store refused or failed a request."""


class ObjectStore(ABC):
    """Keys to bytes; ``get`` returns ``None`` for a missing key."""

    @abstractmethod
    def get(self, key: str) -> bytes | None: ...

    @abstractmethod
    def put(self, key: str, data: bytes, *, immutable: bool = False) -> None:
        """Store ``data`` durably under ``key``; ``immutable`` keeps an existing object."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> None: ...

    def describe(self) -> str:
        return type(self).__name__


class DirectoryStore(ObjectStore):
    """Objects as files under ``root`` (atomic, fsynced writes from :mod:`.fsio`)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ObjectStoreError(f"{key!r} is not a valid object key")
        return self.root / key

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return None

    def put(self, key: str, data: bytes, *, immutable: bool = False) -> None:
        path = self._path(key)
        if immutable and path.exists():
            return
        if immutable:
            write_durable(path, data, mode=0o444)
        else:
            write_synced(path, data)

    def delete_prefix(self, prefix: str) -> None:
        import shutil

        shutil.rmtree(self._path(prefix.rstrip("/")), ignore_errors=True)

    def describe(self) -> str:
        return str(self.root)


@dataclass(frozen=True)
class S3Settings:
    """How to reach an S3-compatible service; ``None`` fields fall back to ``AWS_*`` variables
    (``AWS_ENDPOINT_URL``, ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``), as boto3 itself reads them."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None

    @classmethod
    def from_env(cls) -> S3Settings:
        env = os.environ
        return cls(
            env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"),
            env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            env.get("AWS_ACCESS_KEY_ID"),
            env.get("AWS_SECRET_ACCESS_KEY"),
        )

    def merged(self) -> S3Settings:
        """These settings with every unset field taken from the environment."""
        env = S3Settings.from_env()
        return S3Settings(
            self.endpoint_url or env.endpoint_url,
            self.region or env.region or "us-east-1",
            self.access_key_id or env.access_key_id,
            self.secret_access_key or env.secret_access_key,
        )


class S3Store(ObjectStore):
    """Objects in ``bucket`` under ``prefix`` through the S3 API (boto3)."""

    def __init__(self, bucket: str, prefix: str = "", settings: S3Settings | None = None) -> None:
        import boto3
        from botocore.config import Config

        s = (settings or S3Settings()).merged()
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = boto3.client(
            "s3",
            endpoint_url=s.endpoint_url,
            region_name=s.region,
            aws_access_key_id=s.access_key_id,
            aws_secret_access_key=s.secret_access_key,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}),
        )
        self._conditional = True  # cleared when the store rejects If-None-Match

    def _key(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ObjectStoreError(f"{key!r} is not a valid object key")
        return self.prefix + key

    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise ObjectStoreError(f"s3://{self.bucket}/{self._key(key)}: {e}") from e

    def put(self, key: str, data: bytes, *, immutable: bool = False) -> None:
        from botocore.exceptions import ClientError

        args = {"Bucket": self.bucket, "Key": self._key(key), "Body": data}
        if immutable and self._conditional:
            try:
                self.client.put_object(IfNoneMatch="*", **args)
                return
            except ClientError as e:
                code = e.response.get("Error", {}).get("Code")
                if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                    return  # already there: immutable objects are never replaced
                if code not in ("NotImplemented", "501", "InvalidArgument"):
                    raise ObjectStoreError(f"s3://{self.bucket}/{args['Key']}: {e}") from e
                self._conditional = False  # the store has no conditional writes
        try:
            self.client.put_object(**args)
        except ClientError as e:
            raise ObjectStoreError(f"s3://{self.bucket}/{args['Key']}: {e}") from e

    def delete_prefix(self, prefix: str) -> None:
        full = self._key(prefix.rstrip("/")) + "/"
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=full
        )
        for page in pages:
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def is_s3_url(url: str | Path | None) -> bool:
    return isinstance(url, str) and url.startswith("s3://")


def open_objects(url: str | Path, s3: S3Settings | None = None) -> ObjectStore:
    """The store ``url`` names: ``s3://bucket/prefix`` or a directory path."""
    if is_s3_url(url):
        parts = urlsplit(str(url))
        if not parts.netloc:
            raise ObjectStoreError(f"{url!r} names no bucket (s3://bucket/prefix)")
        if parts.query or parts.fragment:
            raise ObjectStoreError(f"{url!r}: an s3 URL takes no query or fragment")
        return S3Store(parts.netloc, parts.path, s3)
    if isinstance(url, str) and "://" in url:
        raise ObjectStoreError(f"{url!r}: objects URL must be a directory or s3://bucket/prefix")
    return DirectoryStore(Path(url))
