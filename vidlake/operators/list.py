"""ListMedia: the video and image files under some sources (driver-side, cheap: listing only)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

from vidlake.errors import StorageError
from vidlake.platform.config import IngestSettings, StorageSettings
from vidlake.platform.storage import is_s3, storage_for

__all__ = ["ListMedia"]


@dataclass(frozen=True)
class ListMedia:
    """Lists video and image files (recursive, extensions matched case-insensitively) under each source.

    Writes rows ``uri, size, mtime, kind`` (``video`` | ``image``; local paths absolute); a file reachable
    through two sources is listed once.
    Runs on the driver: a source that does not exist or cannot be listed is fatal (``StorageError``).
    """

    ingest: IngestSettings = IngestSettings()
    storage: StorageSettings = StorageSettings()

    def __call__(self, sources: list[str]) -> Iterator[dict]:
        seen: set[str] = set()
        for source in sources:
            for info in self._list(source):
                name = info.uri.lower()
                kind = "video" if name.endswith(self.ingest.extensions) else \
                    "image" if self.ingest.image_extensions and name.endswith(self.ingest.image_extensions) else None
                if info.uri in seen or kind is None:
                    continue
                seen.add(info.uri)
                yield {"uri": info.uri, "size": info.size, "mtime": info.mtime, "kind": kind}

    def _list(self, source: str):
        if not is_s3(source) and not source.startswith("file://"):
            source = os.path.abspath(os.path.expanduser(source))  # stored absolute: workers run elsewhere
        storage = storage_for(source, self.storage)
        try:
            yield from storage.list(source, recursive=True)
        except FileNotFoundError as exc:
            raise StorageError(f"source {source} does not exist") from exc
        except PermissionError as exc:
            raise StorageError(f"source {source} cannot be read: {exc}") from exc
        except Exception as exc:  # botocore: credentials, endpoint, bucket errors
            if type(exc).__module__.startswith(("botocore", "boto3")):
                raise StorageError(f"cannot list {source}: {exc}") from exc
            raise
