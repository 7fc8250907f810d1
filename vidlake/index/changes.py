"""What changed in the lake since an index was built, read at pinned Delta versions.

Output rows are committed per (video, task_key) (see ``operators/write.py``), so the unit of an
incremental index update is such a pair: the pairs in data files added or removed between the
recorded version and the current one are re-read whole and replace their old index rows. Only
those files are opened to find the pairs; only those pairs are read afterwards.
"""

from __future__ import annotations

from typing import Any, Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from vidlake.errors import LakeError
from vidlake.platform.lake import Lake, delta_dataset
from vidlake.platform.lake.schemas import schema_for
from vidlake.index.documents import pairs_of

__all__ = ["LakeSnapshot", "VersionGone"]


class VersionGone(LakeError):
    """The version an index was built from can no longer be read (vacuumed, log cleaned up)."""


class LakeSnapshot:
    """The lake's tables at fixed versions, so one build reads one consistent state."""

    def __init__(self, lake: Lake, versions: dict[str, int | None]):
        self.lake, self.versions = lake, dict(versions)
        self._tables: dict[str, Any] = {}

    def _delta(self, table: str, version: int | None = None) -> Any:
        version = self.versions[table] if version is None else version
        if version is None:
            return None
        if version == self.versions[table] and table in self._tables:
            return self._tables[table]
        dt = self.lake.delta(table)
        if dt.version() != version:
            try:
                dt.load_as_version(version)
            except Exception as exc:  # deltalake raises DeltaError subclasses / OSError by backend
                raise VersionGone(f"{table} version {version} is no longer readable: {exc}") from exc
        if version == self.versions[table]:
            self._tables[table] = dt
        return dt

    def read(self, table: str, pairs: set[tuple[str, str]] | None = None, columns: list[str] | None = None) -> pa.Table:
        """All rows (or the rows of ``pairs``) of ``table`` at its pinned version."""
        dt = self._delta(table)
        if dt is None:
            empty = schema_for(table).empty_table()
            return empty.select(columns) if columns else empty
        dataset = delta_dataset(dt)
        schema = schema_for(table)
        want = pa.schema([schema.field(c) for c in (columns or schema.names)])
        if pairs is None:
            return _conform(dataset, want, None)
        if not pairs:
            return want.empty_table()
        videos = pa.array(sorted({v for v, _ in pairs}), pa.string())
        # files written by different writers may hold string or string_view columns: compare as string
        video_col = pc.field("video_id").cast(pa.string())
        rows = _conform(dataset, want, video_col.isin(videos))
        keys = pc.binary_join_element_wise(rows["video_id"], rows["task_key"], "\x1f")
        wanted = pa.array([f"{v}\x1f{k}" for v, k in sorted(pairs)], pa.string())
        return rows.filter(pc.is_in(keys, value_set=wanted))

    def changed_pairs(self, table: str, since: int | None) -> set[tuple[str, str]] | None:
        """(video_id, task_key) pairs touched between version ``since`` and the pinned one.

        None means "everything" (the table did not exist at ``since``).
        """
        now = self.versions[table]
        if now == since:
            return set()
        if since is None or now is None:
            return None
        new_dt, old_dt = self._delta(table), self._delta(table, since)
        new_files, old_files = set(new_dt.file_uris()), set(old_dt.file_uris())
        touched = [self._files(new_dt, new_files - old_files), self._files(old_dt, old_files - new_files)]
        return pairs_of(t for t in touched if t is not None)

    @staticmethod
    def _files(dt: Any, uris: Iterable[str]) -> pa.Table | None:
        names = {u.rsplit("/", 1)[-1] for u in uris}
        if not names:
            return None
        dataset = delta_dataset(dt)
        fragments = [f for f in dataset.get_fragments() if f.path.rsplit("/", 1)[-1] in names]
        try:
            files = pads.FileSystemDataset(fragments, dataset.schema, dataset.format, dataset.filesystem)
            return files.to_table(columns=["video_id", "task_key"]).cast(
                pa.schema([("video_id", pa.string()), ("task_key", pa.string())]))
        except OSError as exc:  # a removed file already vacuumed
            raise VersionGone(f"a data file of {dt.table_uri} is gone: {exc}") from exc


def _conform(dataset: Any, want: pa.Schema, where: Any) -> pa.Table:
    """``want``'s columns of the rows matching ``where``; a column a table written by an older vidlake does
    not have yet (points' ``image_id``, counts' ``method``) is null, as the lake's own writers add it."""
    have = set(dataset.schema.names)
    rows = dataset.to_table(columns=[c for c in want.names if c in have], filter=where)
    for f in want:
        if f.name not in have:
            rows = rows.append_column(f.name, pa.nulls(rows.num_rows, f.type))
    return rows.select(want.names).cast(want)
