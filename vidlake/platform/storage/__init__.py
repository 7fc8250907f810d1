"""Storage behind one small interface: local paths and ``s3://bucket/prefix`` URIs."""

from __future__ import annotations

from pathlib import Path

from vidlake.errors import StorageError
from vidlake.platform.config import StorageSettings
from vidlake.platform.storage.base import FileInfo, Storage
from vidlake.platform.storage.local import LocalStorage
from vidlake.platform.storage.s3 import S3Storage, split_s3_uri

__all__ = [
    "FileInfo",
    "check_bucket",
    "check_lake_reachable",
    "LocalStorage",
    "S3Storage",
    "Storage",
    "delta_storage_options",
    "is_s3",
    "join_uri",
    "split_s3_uri",
    "storage_for",
    "write_files",
]


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def storage_for(uri: str, settings: StorageSettings | None = None) -> Storage:
    """The Storage that serves ``uri``."""
    if is_s3(uri):
        s = settings or StorageSettings()
        return S3Storage(endpoint_url=s.endpoint_url, region=s.region, anonymous=s.anonymous)
    if "://" in uri and not uri.startswith("file://"):
        raise ValueError(f"unsupported URI scheme in {uri!r}: use a local path or s3://bucket/prefix")
    return LocalStorage()


def write_files(folder: Path, names: list[str], out: str, settings: StorageSettings | None = None) -> list[str]:
    """Copy the files ``names`` (paths relative to the local ``folder``) under ``out`` (a local folder or
    s3://), each atomically and in the order given; returns their URIs. Reports and exports are built in
    a temporary folder and written out with this, so a reader never sees a half-written file."""
    storage = storage_for(out, settings)
    written = []
    for name in names:
        target = join_uri(out, name)
        storage.write_atomic(target, (folder / name).read_bytes())
        written.append(target)
    return written


def join_uri(base: str, *parts: str) -> str:
    """Join path parts onto a local path or an s3:// URI."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def delta_storage_options(uri: str, settings: StorageSettings | None = None) -> dict[str, str] | None:
    """Options for ``deltalake`` (delta-rs object_store) matching what boto3 would use for ``uri``.

    delta-rs reads the AWS environment variables itself; here only what the settings add is passed.
    """
    if not is_s3(uri):
        return None
    s = settings or StorageSettings()
    opts: dict[str, str] = {}
    if s.endpoint_url:
        opts["AWS_ENDPOINT_URL"] = s.endpoint_url
        if s.endpoint_url.startswith("http://"):
            opts["AWS_ALLOW_HTTP"] = "true"
    if s.region:
        opts["AWS_REGION"] = s.region
    if s.anonymous:
        opts["AWS_SKIP_SIGNATURE"] = "true"
    return opts


def check_lake_reachable(uri: str, settings: StorageSettings | None = None) -> None:
    """Fail fast, before any cluster work, when the lake root cannot be written."""
    if not is_s3(uri):
        try:
            Path(uri.removeprefix("file://")).expanduser().mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the lake folder {uri}: {exc}") from exc
        return
    bucket, _ = split_s3_uri(uri)
    check_bucket(uri, settings, f"the lake bucket {bucket!r}")


def check_bucket(uri: str, settings: StorageSettings | None, name: str) -> None:
    """``StorageError`` naming ``name`` when the bucket of the s3:// ``uri`` cannot be reached."""
    bucket, _ = split_s3_uri(uri)
    try:
        storage_for(uri, settings).client.head_bucket(Bucket=bucket)
    except Exception as exc:  # botocore: NoCredentialsError, EndpointConnectionError, ClientError(403/404)
        raise StorageError(
            f"cannot reach {name} ({exc}); check the AWS credentials, "
            "the bucket name and --s3-endpoint / VIDLAKE_STORAGE__ENDPOINT_URL"
        ) from exc
