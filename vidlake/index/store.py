"""Where the search index lives and what it records.

The index is a LanceDB database beside the lake (default ``<lake>/_search``, local or S3) plus one
JSON file, ``_vidlake_index.json``, written last by every build: the lake table versions the index
was built from, the embedding model and its dimension, row counts. A reader compares those
versions with the lake's current ones to tell whether the index is stale.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from vidlake.platform.config import Settings, StorageSettings
from vidlake.platform.lake import Lake
from vidlake.platform.storage import is_s3, join_uri, storage_for

__all__ = ["FORMAT", "SOURCE_TABLES", "IndexMeta", "IndexStore", "index_uri_for", "lake_versions", "staleness"]

# 2: image sets (the ``sets`` table, evidence's ``image_id``, counts' ``method``); an index of another format
# is built again by the next ``vidlake index``
FORMAT = 2
META_FILE = "_vidlake_index.json"
SOURCE_TABLES = ("videos", "sets", "captions", "answers", "points", "tracks", "counts")


def index_uri_for(settings: Settings) -> str:
    return settings.search.index_uri or join_uri(settings.lake.uri, "_search")


@dataclass
class IndexMeta:
    lake_uri: str
    lake_versions: dict[str, int | None]
    embedding_model: str
    dim: int
    format: int = FORMAT
    built_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    rows: dict[str, int] = field(default_factory=dict)
    vidlake_version: str = ""
    generation: int = 1
    tables: dict[str, str] = field(default_factory=dict)  # logical name -> LanceDB table of this generation

    @classmethod
    def from_json(cls, text: str) -> "IndexMeta":
        data = json.loads(text)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)


def lake_versions(lake: Lake) -> dict[str, int | None]:
    """Current Delta version of every table the index reads (None: the table does not exist yet)."""
    return {t: lake.version(t) for t in SOURCE_TABLES}


def staleness(meta: IndexMeta, current: dict[str, int | None], embedding_model: str) -> str | None:
    """Why an index cannot answer as if it were fresh, or None when it is up to date."""
    if meta.format != FORMAT:
        return f"the index has format {meta.format}, this vidlake reads {FORMAT}"
    if meta.embedding_model != embedding_model:
        return f"the index was embedded with {meta.embedding_model!r}, the service uses {embedding_model!r}"
    newer = [t for t in SOURCE_TABLES if current.get(t) != meta.lake_versions.get(t)]
    if newer:
        return "the lake changed since the index was built (" + ", ".join(
            f"{t} v{meta.lake_versions.get(t)} -> v{current.get(t)}" for t in newer) + ")"
    return None


def lance_storage_options(uri: str, storage: StorageSettings) -> dict[str, str] | None:
    """object_store options for LanceDB, from the same settings the lake uses."""
    if not is_s3(uri):
        return None
    opts: dict[str, str] = {}
    if storage.endpoint_url:
        opts["aws_endpoint"] = storage.endpoint_url
        if storage.endpoint_url.startswith("http://"):
            opts["allow_http"] = "true"
    if storage.region:
        opts["aws_region"] = storage.region
    if storage.anonymous:
        opts["aws_skip_signature"] = "true"
    return opts


class IndexStore:
    """An index location: LanceDB connection and the meta file. Cheap to construct."""

    def __init__(self, uri: str, storage: StorageSettings | None = None):
        self.uri = uri.rstrip("/")
        self.storage = storage or StorageSettings()
        self._files = storage_for(self.uri, self.storage)

    def __repr__(self) -> str:
        return f"IndexStore({self.uri!r})"

    @property
    def meta_uri(self) -> str:
        return join_uri(self.uri, META_FILE)

    def connect(self, read_consistency_s: float | None = None) -> Any:
        from datetime import timedelta

        # LanceDB's Rust log (read once, at import) warns on every table it creates ("No existing dataset
        # ..., it will be created"): errors only, unless the user set LANCEDB_LOG
        os.environ.setdefault("LANCEDB_LOG", "error")
        import lancedb

        interval = timedelta(seconds=read_consistency_s) if read_consistency_s is not None else None
        path = self.uri if is_s3(self.uri) else self.uri.removeprefix("file://")
        return lancedb.connect(path, storage_options=lance_storage_options(self.uri, self.storage),
                               read_consistency_interval=interval)

    def read_meta(self) -> IndexMeta | None:
        """The recorded meta, or None when no build has finished here."""
        try:
            info = self._files.stat(self.meta_uri)
        except FileNotFoundError:
            return None
        return IndexMeta.from_json(self._files.read_range(self.meta_uri, 0, info.size).decode())

    def write_meta(self, meta: IndexMeta) -> None:
        self._files.write_atomic(self.meta_uri, meta.to_json().encode())
