"""The lake: Delta tables under one root (local folder or s3://), read and written through deltalake.

Writers are the job drivers; each call here is one Delta commit, so a batch of rows becomes
visible together or not at all.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Iterable

import pyarrow as pa

from vidlake.errors import LakeError, StorageError
from vidlake.platform.config import StorageSettings
from vidlake.platform.lake.schemas import KEYS, schema_for
from vidlake.platform.storage import delta_storage_options, is_s3, join_uri

__all__ = ["Lake", "delta_dataset", "write_error"]


def delta_dataset(delta: Any) -> Any:
    """``delta.to_pyarrow_dataset()``, with a local table read through Arrow's own file system.

    deltalake's default hands Arrow a Python file system; Arrow's scan threads then hold Python objects,
    and one released by such a thread while the interpreter exits aborts the process ("terminate called
    without an active exception", exit 134). Arrow's native file system holds none. S3 tables keep
    deltalake's handler, which reads the same storage options as the writer."""
    from urllib.parse import unquote

    import pyarrow.fs as pa_fs

    uri = delta.table_uri
    if is_s3(uri):
        return delta.to_pyarrow_dataset()
    root = unquote(uri.removeprefix("file://")).rstrip("/") or "/"
    return delta.to_pyarrow_dataset(filesystem=pa_fs.SubTreeFileSystem(root, pa_fs.LocalFileSystem()))


class Lake:
    """A lake root. Cheap to construct and picklable; nothing is touched until a table is used."""

    def __init__(self, uri: str, storage: StorageSettings | None = None):
        self.uri = uri.rstrip("/") if is_s3(uri) else uri
        self.storage = storage or StorageSettings()
        self._options = delta_storage_options(self.uri, self.storage)

    def __repr__(self) -> str:
        return f"Lake({self.uri!r})"

    def table_uri(self, table: str) -> str:
        schema_for(table)  # unknown names fail here with the list of known ones
        return join_uri(self.uri, table)

    def exists(self, table: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self.table_uri(table), storage_options=self._options)

    def delta(self, table: str) -> Any:
        """The ``deltalake.DeltaTable`` (for history, version, optimize...)."""
        from deltalake import DeltaTable

        try:
            return DeltaTable(self.table_uri(table), storage_options=self._options)
        except Exception as exc:  # deltalake raises TableNotFoundError, OSError, ... by backend
            raise LakeError(f"cannot open lake table {self.table_uri(table)}: {exc}") from exc

    def version(self, table: str) -> int | None:
        return self.delta(table).version() if self.exists(table) else None

    def read(self, table: str, columns: list[str] | None = None, filters: Any = None,
             since: int | None = None) -> pa.Table:
        """The whole table (or ``columns``), or an empty table of its schema when it does not exist yet.
        ``since``: only the files added after that version (where rows written since then are; all files
        when that version is gone)."""
        schema = schema_for(table)
        if not self.exists(table):
            empty = schema.empty_table()
            return empty.select(columns) if columns else empty
        import pyarrow.parquet as pq

        dataset = delta_dataset(self.delta(table))
        if since is not None:
            dataset = self._added_since(table, dataset, since)
        expression = None if filters is None else pq.filters_to_expression(filters)
        try:
            return dataset.to_table(columns=columns, filter=expression)
        except pa.ArrowNotImplementedError:
            # files written by deltalake's merge hold string_view columns, which pyarrow's filter pushdown
            # cannot compare with plain strings: read, cast to the table's schema, then filter
            import pyarrow.dataset as pads

            needed = None if columns is None else list(dict.fromkeys([*columns, *(f[0] for f in filters or ())]))
            data = dataset.to_table(columns=needed)
            data = data.cast(pa.schema([schema.field(name) for name in data.column_names]))
            data = pads.dataset(data).to_table(filter=expression) if filters else data
            return data.select(columns) if columns else data

    def _added_since(self, table: str, dataset: Any, since: int) -> Any:
        import pyarrow.dataset as pads
        from deltalake import DeltaTable

        try:
            old = DeltaTable(self.table_uri(table), version=since, storage_options=self._options)
        except Exception:  # noqa: BLE001 - that version's log is gone: read every file
            return dataset
        before = {u.rsplit("/", 1)[-1] for u in old.file_uris()}
        fragments = [f for f in dataset.get_fragments() if f.path.rsplit("/", 1)[-1] not in before]
        return pads.FileSystemDataset(fragments, dataset.schema, dataset.format, dataset.filesystem)

    def append(self, table: str, rows: pa.Table | Iterable[dict]) -> int:
        """Append rows in one commit (creating the table on first use; made again when another writer's
        commit won the race). Returns the row count."""
        data = self._conform(table, rows)
        if data.num_rows:  # a commit that lost a race wrote nothing: append again
            _on_conflict_retry(lambda: self._write(table, data, mode="append"))
        return data.num_rows

    def upsert(self, table: str, rows: pa.Table | Iterable[dict], update_columns: list[str],
               retry_conflicts: bool = True) -> int:
        """Insert rows whose key is new and update ``update_columns`` of rows whose key exists: one commit.

        A commit that loses a race with another writer is merged again against the new state
        (``retry_conflicts``); a caller whose rows were computed from what it read passes False and
        handles ``CommitFailedError`` itself (read again, compute again)."""
        if not retry_conflicts:
            return self._merge(table, rows, update_columns)
        return _on_conflict_retry(lambda: self._merge(table, rows, update_columns))

    def insert_missing(self, table: str, rows: pa.Table | Iterable[dict]) -> int:
        """Insert only the rows whose key (``schemas.KEYS``) is not in the table yet: one idempotent commit
        (merged again when another writer committed first). Returns how many rows were inserted."""
        return _on_conflict_retry(lambda: self._merge(table, rows, None))

    def _merge(self, table: str, rows: pa.Table | Iterable[dict], update_columns: list[str] | None,
               owned: str | None = None) -> int:
        """One merge commit on the table's key. ``owned``: a predicate on the target whose rows ``rows``
        replace (matched rows updated whole, the others of it deleted)."""
        data = _unique_keys(self._conform(table, rows), KEYS[table])
        if not data.num_rows and owned is None:
            return 0
        if not self.exists(table):
            if data.num_rows:
                self._write(table, data, mode="append")
            return data.num_rows
        predicate = " AND ".join(f"(t.{k} IS NOT DISTINCT FROM s.{k})" for k in KEYS[table])  # null-safe
        merger = self._evolved(table).merge(data, predicate=predicate, source_alias="s", target_alias="t")
        if owned is not None:
            merger = merger.when_matched_update_all()
        elif update_columns:
            merger = merger.when_matched_update({c: f"s.{c}" for c in update_columns})
        merger = merger.when_not_matched_insert_all()
        if owned is not None:
            merger = merger.when_not_matched_by_source_delete(predicate=owned)
        try:
            metrics = merger.execute()
        except OSError as exc:
            raise write_error(self.table_uri(table), exc) from exc
        except Exception as exc:
            if type(exc).__name__ == "CommitFailedError" or not _is_storage_problem(exc):
                raise  # a lost commit race is retried by the caller; anything else is not the storage's fault
            raise write_error(self.table_uri(table), exc) from exc
        return int(metrics.get("num_target_rows_inserted", 0)) + int(metrics.get("num_target_rows_updated", 0))

    def _evolved(self, table: str) -> Any:
        """The Delta table, with the columns this vidlake declares that an older one did not added first
        (null in the old rows), so merges may name them."""
        from deltalake import Schema

        delta = self.delta(table)
        have = {f.name for f in delta.schema().fields}
        missing = [f for f in schema_for(table) if f.name not in have]
        if missing:
            delta.alter.add_columns(Schema.from_arrow(pa.schema(missing)).fields)
            delta = self.delta(table)
        return delta

    def replace_pairs(self, table: str, rows: pa.Table | Iterable[dict], pairs: Iterable[tuple[str, str]]) -> int:
        """Make ``rows`` the whole content of ``table`` for the given (video_id, task_key) pairs, in one
        commit: rows of those pairs that ``rows`` does not hold are deleted (a retried video's old rows)."""
        pairs = sorted(set(pairs))
        for value in (v for pair in pairs for v in pair):
            if not _ID.fullmatch(value):  # ids are our own hex hashes; anything else never reaches SQL text
                raise ValueError(f"not a vidlake id: {value!r}")
        owned = " OR ".join(f"(t.video_id = '{v}' AND t.task_key = '{k}')" for v, k in pairs) or None
        return _on_conflict_retry(lambda: self._merge(table, rows, None, owned))

    def replace_where(self, table: str, rows: pa.Table | Iterable[dict], where: dict[str, Any] | list[dict]) -> int:
        """Make ``rows`` the whole content of ``table`` where every condition of ``where`` holds (or, for a
        list of such dicts, where any of them holds), in one commit: ``column: value`` (equal),
        ``column: [values]`` (one of them; an empty list matches nothing), ``column: (low, high)``
        (low <= column < high, datetimes or numbers). Values are quoted here (a quote in a user's
        deployment id stays a character)."""
        if isinstance(where, list):
            predicate = " OR ".join(f"({_where(w)})" for w in where) or "FALSE"
        else:
            predicate = _where(where)
        return _on_conflict_retry(lambda: self._merge(table, rows, None, predicate))

    def update_row(self, table: str, key: dict[str, Any], values: dict[str, Any]) -> None:
        """Set ``values`` on the row whose key (``schemas.KEYS``) is in ``key``, in one commit.

        A one-row merge: the key and the values travel as data, never as SQL text. ``key`` also holds
        the table's non-null columns the merge source needs (a row that is missing is inserted)."""
        _on_conflict_retry(lambda: self._merge(table, [{**key, **values}], [c for c in values if c not in KEYS[table]]))

    def _conform(self, table: str, rows: pa.Table | Iterable[dict]) -> pa.Table:
        schema = schema_for(table)
        if isinstance(rows, pa.Table):
            missing = [f.name for f in schema if f.name not in rows.column_names]
            for name in missing:
                rows = rows.append_column(name, pa.nulls(rows.num_rows, schema.field(name).type))
            return rows.select(schema.names).cast(schema)
        return pa.Table.from_pylist(list(rows), schema=schema)

    def _write(self, table: str, data: pa.Table, mode: str) -> None:
        from deltalake import write_deltalake

        try:
            # an append adds the columns a newer vidlake declares to a table an older one created
            write_deltalake(self.table_uri(table), data, mode=mode, storage_options=self._options,
                            **({"schema_mode": "merge"} if mode == "append" else {}))
        except OSError as exc:
            raise write_error(self.table_uri(table), exc) from exc
        except Exception as exc:
            if not _is_storage_problem(exc):
                raise
            raise write_error(self.table_uri(table), exc) from exc


_ID = re.compile(r"[0-9a-f]{8,64}")


def _where(conditions: dict[str, Any]) -> str:
    """A merge predicate on the target (``t``) from ``Lake.replace_where``'s conditions."""
    parts = []
    for column, value in conditions.items():
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", column):
            raise ValueError(f"not a column name: {column!r}")
        if isinstance(value, tuple):
            parts.append(f"t.{column} >= {_sql(value[0])} AND t.{column} < {_sql(value[1])}")
        elif isinstance(value, list):
            parts.append(f"t.{column} IN ({', '.join(_sql(v) for v in value)})" if value else "FALSE")
        elif value is None:
            parts.append(f"t.{column} IS NULL")
        else:
            parts.append(f"t.{column} = {_sql(value)}")
    return " AND ".join(parts) or "TRUE"


def _sql(value: Any) -> str:
    """A literal for a merge predicate: text quoted (quotes doubled), instants as UTC ISO text."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, datetime):
        when = value.astimezone(timezone.utc) if value.tzinfo else value
        return "'" + when.strftime("%Y-%m-%dT%H:%M:%S.%f") + ("Z'" if value.tzinfo else "'")
    return "'" + str(value).replace("'", "''") + "'"
_FULL = ("no space left", "disk quota exceeded", "enospc")
_DENIED = ("permission denied", "read-only file system", "access denied", "forbidden", "eacces", "erofs")


def _on_conflict_retry(merge):
    """Run a merge, and run it again (a fresh read of the table) while another writer's commit wins the race."""
    from deltalake.exceptions import CommitFailedError
    from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

    return retry(retry=retry_if_exception_type(CommitFailedError), stop=stop_after_attempt(10),
                 wait=wait_random_exponential(multiplier=0.05, max=3.0), reraise=True)(merge)()


def _is_storage_problem(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(s in text for s in (*_FULL, *_DENIED, "os error", "i/o error", "input/output error"))


def write_error(table_uri: str, exc: BaseException) -> StorageError:
    """One line that says why a lake write failed and what to do (deltalake reports these as multi-line
    DeltaErrors with the Rust backtrace; the full text stays on the exception's cause)."""
    text = str(exc)
    lower = text.lower()
    if any(s in lower for s in _FULL):
        return StorageError(f"cannot write lake table {table_uri}: the disk is full; free space and run again "
                            "(everything committed so far is kept and will not be redone)")
    if any(s in lower for s in _DENIED):
        return StorageError(f"cannot write lake table {table_uri}: permission denied (a read-only lake or wrong "
                            "credentials); make it writable or choose another --lake")
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return StorageError(f"cannot write lake table {table_uri}: {first[:300]}")


def _unique_keys(data: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    """The first row of each key (a merge source must not hold a key twice)."""
    seen: set[tuple] = set()
    keep = []
    for i, key in enumerate(zip(*(data[k].to_pylist() for k in keys))):
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return data if len(keep) == data.num_rows else data.take(keep)
