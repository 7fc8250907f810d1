"""S3 (and S3-compatible: MinIO, Ceph, R2, moto) storage through boto3.

Credentials come from the standard AWS chain; ``endpoint_url`` points at another S3 server.
Reads are ranged GETs behind a buffered, seekable file object, so decoders and hashing stream
the object instead of downloading it whole. Single-object PUTs are atomic in S3.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from vidlake.platform.storage.base import FileInfo

__all__ = ["S3Storage", "split_s3_uri"]

_READ_BUFFER = 8 * 1024 * 1024


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b")``."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"s3 URI without a bucket: {uri}")
    return bucket, key


class S3Storage:
    """Storage on S3. Construction is cheap; the boto3 client is built on first use per process."""

    def __init__(self, endpoint_url: str | None = None, region: str | None = None, anonymous: bool = False):
        self.endpoint_url = endpoint_url
        self.region = region
        self.anonymous = anonymous
        self._client: Any = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_client": None}

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(retries={"max_attempts": 5, "mode": "standard"})
            if self.anonymous:
                from botocore import UNSIGNED

                config = config.merge(Config(signature_version=UNSIGNED))
            self._client = boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=config
            )
        return self._client

    def list(self, uri: str, recursive: bool = True) -> Iterator[FileInfo]:
        bucket, key = split_s3_uri(uri)
        if key and not key.endswith("/"):
            try:
                yield self.stat(uri)
                return
            except FileNotFoundError:
                key += "/"
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": key}
        if not recursive:
            kwargs["Delimiter"] = "/"
        found = False
        for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith("/"):
                    continue
                found = True
                yield FileInfo(f"s3://{bucket}/{obj['Key']}", obj["Size"], obj["LastModified"].timestamp())
        if not found:
            raise FileNotFoundError(f"{uri} does not exist or holds no objects")

    def stat(self, uri: str) -> FileInfo:
        bucket, key = split_s3_uri(uri)
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(f"{uri} does not exist") from None
            raise
        return FileInfo(uri, head["ContentLength"], head["LastModified"].timestamp())

    def exists(self, uri: str) -> bool:
        try:
            next(iter(self.list(uri)))
            return True
        except (FileNotFoundError, StopIteration):
            return False

    def read_range(self, uri: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        bucket, key = split_s3_uri(uri)
        from botocore.exceptions import ClientError

        try:
            resp = self.client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{start + length - 1}")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""
            raise
        return resp["Body"].read()

    def open(self, uri: str) -> BinaryIO:
        size = self.stat(uri).size
        return io.BufferedReader(_RangeReader(self, uri, size), buffer_size=_READ_BUFFER)  # type: ignore[return-value]

    def download(self, uri: str, path: Path) -> None:
        """Copy one object to a local file (multipart, several connections: model weights are large)."""
        bucket, key = split_s3_uri(uri)
        self.client.download_file(bucket, key, str(path))

    def write_atomic(self, uri: str, data: bytes) -> None:
        bucket, key = split_s3_uri(uri)
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def create_exclusive(self, uri: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        bucket, key = split_s3_uri(uri)
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")  # S3 conditional write
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def delete(self, uri: str) -> None:
        bucket, key = split_s3_uri(uri)
        self.client.delete_object(Bucket=bucket, Key=key)

    def local_path(self, uri: str) -> str | None:
        return None


class _RangeReader(io.RawIOBase):
    """A seekable raw stream over one S3 object, one ranged GET per buffer fill."""

    def __init__(self, storage: S3Storage, uri: str, size: int):
        self._storage, self._uri, self._size, self._pos = storage, uri, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        data = self._storage.read_range(self._uri, self._pos, want)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)
