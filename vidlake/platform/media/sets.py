"""Image sets: probed images grouped into what the pipeline treats like one video window.

Three kinds, all pure functions over probed image rows (``uri``, ``media_id``, ``captured_at``):

* ``burst``: camera-trap style, images of one folder closer in time than ``gap_s``;
* ``timelapse``: consecutive images of one folder in groups of ``every``;
* ``manifest``: the sets a CSV file names.

Every set is a flat dict: ``set_id``, ``kind``, ``members`` (media_ids in order), ``uris``,
``start``/``end`` (capture times), ``folder``; a manifest set also keeps its ``label``. ``set_id`` is a
stable hash of the kind, the members and the grouping parameters, like a window's id: the same images
grouped the same way always get the same id, and changing any member changes it.

Capture times within a folder are compared as instants when all of them carry a zone; as soon as one
is a naive local time (EXIF without an offset), all are compared as wall-clock times (an aware time
by its own clock), since a naive time cannot be placed on the UTC line. Equal times keep uri order.
"""

from __future__ import annotations

import csv
import io
import posixpath
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from vidlake.errors import ConfigError
from vidlake.platform.lake.ids import stable_hash
from vidlake.platform.storage.base import Storage

__all__ = ["burst_sets", "capture_offsets", "folder_of", "manifest_sets", "timelapse_sets"]

Image = Mapping[str, Any]


def folder_of(uri: str) -> str:
    """The folder (local path) or prefix (``s3://bucket/a``) that holds ``uri``."""
    return posixpath.dirname(uri)


def burst_sets(images: Sequence[Image], gap_s: float = 10.0, max_per_set: int = 5) -> list[dict[str, Any]]:
    """Bursts: per folder, images in capture order; a gap of ``gap_s`` seconds or more starts a new burst.

    A burst of more than ``max_per_set`` images is split into as few consecutive sets as possible, of
    sizes as even as possible, the larger first (7 with a maximum of 5 gives 4 + 3, not 5 + 2).
    """
    if gap_s < 0:
        raise ConfigError(f"burst gap_s must be >= 0 seconds, got {gap_s}")
    _check_max(max_per_set)
    params = {"gap_s": float(gap_s), "max_per_set": max_per_set}
    out = []
    for folder, ordered in _by_folder(images):
        times = _comparable(ordered)
        bursts: list[list[Image]] = [[ordered[0]]]
        for i in range(1, len(ordered)):
            if (times[i] - times[i - 1]).total_seconds() < gap_s:
                bursts[-1].append(ordered[i])
            else:
                bursts.append([ordered[i]])
        for burst in bursts:
            out += [_make_set("burst", part, params, folder) for part in _split_evenly(burst, max_per_set)]
    return out


def timelapse_sets(images: Sequence[Image], every: int) -> list[dict[str, Any]]:
    """Time-lapse: per folder, images in capture order cut into groups of ``every`` (the last may be smaller)."""
    if every < 1:
        raise ConfigError(f"timelapse every must be >= 1 image, got {every}")
    out = []
    for folder, ordered in _by_folder(images):
        for i in range(0, len(ordered), every):
            out.append(_make_set("timelapse", ordered[i:i + every], {"every": every}, folder))
    return out


def manifest_sets(
    path_or_rows: str | Path | Iterable[Mapping[str, str]],
    images: Sequence[Image],
    max_per_set: int = 5,
    storage: Storage | None = None,
    base: str | None = None,
) -> list[dict[str, Any]]:
    """The sets a manifest names: a CSV file (or its rows) with columns ``set_id,image``.

    ``image`` is a path relative to the manifest's folder (or ``base`` for rows), or a full path/URI;
    it must be one of ``images``. Sets keep the manifest's order and their members its line order;
    the manifest's ``set_id`` becomes ``label``. Raises ``ConfigError`` naming the file and line for a
    malformed line, an unknown or repeated image, or a set of more than ``max_per_set`` images.
    """
    _check_max(max_per_set)
    if isinstance(path_or_rows, (str, Path)):
        source = str(path_or_rows)
        base = folder_of(source) if base is None else base
        rows = _read_manifest(source, storage)
    else:
        source = "manifest rows"
        rows = [(n, row.get("set_id"), row.get("image")) for n, row in enumerate(path_or_rows, start=1)]
    by_uri = {_normalise(image["uri"]): image for image in images}
    members: dict[str, list[tuple[int, Image]]] = defaultdict(list)
    for line, label, ref in rows:
        label, ref = (label or "").strip(), (ref or "").strip()
        if not label or not ref:
            raise ConfigError(f"{source}, line {line}: both set_id and image are needed, got {label!r}, {ref!r}")
        image = by_uri.get(_resolve(base, ref))
        if image is None:
            raise ConfigError(f"{source}, line {line}: unknown image {ref!r} (resolved to {_resolve(base, ref)!r})")
        if any(other is image for _, other in members[label]):
            raise ConfigError(f"{source}, line {line}: image {ref!r} is already in set {label!r}")
        members[label].append((line, image))
    out, seen = [], {}
    for label, entries in members.items():
        if len(entries) > max_per_set:
            lines = ", ".join(str(n) for n, _ in entries)
            raise ConfigError(
                f"{source}: set {label!r} has {len(entries)} images (lines {lines}), "
                f"more than max_per_set={max_per_set}"
            )
        group = [image for _, image in entries]
        folders = {folder_of(image["uri"]) for image in group}
        made = _make_set("manifest", group, {}, folders.pop() if len(folders) == 1 else base, label=label)
        if made["set_id"] in seen:
            raise ConfigError(f"{source}: sets {seen[made['set_id']]!r} and {label!r} hold the same images")
        seen[made["set_id"]] = label
        out.append(made)
    return out


def _check_max(max_per_set: int) -> None:
    if max_per_set < 1:
        raise ConfigError(f"max_per_set must be >= 1 image, got {max_per_set}")


def _by_folder(images: Sequence[Image]) -> list[tuple[str, list[Image]]]:
    """(folder, its images in capture order, equal times in uri order), folders sorted."""
    folders: dict[str, list[Image]] = defaultdict(list)
    for image in images:
        folders[folder_of(image["uri"])].append(image)
    out = []
    for folder, group in sorted(folders.items()):
        keys = list(zip(_comparable(group), (image["uri"] for image in group), range(len(group))))
        out.append((folder, [group[i] for _, _, i in sorted(keys)]))
    return out


def _comparable(group: Sequence[Image]) -> list[datetime]:
    """The capture times of ``group``, all aware when all are, else all as naive wall-clock times."""
    return _same_kind([_when(image) for image in group])


def _same_kind(times: list[datetime]) -> list[datetime]:
    if all(when.tzinfo is not None for when in times):
        return times
    return [when.replace(tzinfo=None) for when in times]


def capture_offsets(times: Sequence[datetime]) -> list[float]:
    """Seconds of each capture time after the earliest (compared as instants when all carry a zone, else
    as wall-clock times, as the grouping does): a set's image times, the model's time axis for it."""
    same = _same_kind(list(times))
    first = min(same)
    return [round((when - first).total_seconds(), 6) for when in same]


def _when(image: Image) -> datetime:
    value = image.get("captured_at")
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise ValueError(f"{image.get('uri')}: captured_at must be a datetime, got {value!r} (probe it first)")
    return value


def _split_evenly(items: list[Image], most: int) -> list[list[Image]]:
    parts = -(-len(items) // most)
    small, extra = divmod(len(items), parts)
    sizes = [small + 1] * extra + [small] * (parts - extra)
    starts = [sum(sizes[:i]) for i in range(parts)]
    return [items[start:start + size] for start, size in zip(starts, sizes)]


def _make_set(kind: str, group: Sequence[Image], params: dict[str, Any], folder: str | None,
              label: str | None = None) -> dict[str, Any]:
    members = [image["media_id"] for image in group]
    times = _comparable(group)
    made = {
        "set_id": stable_hash({"kind": kind, "members": members, "params": params}),
        "kind": kind,
        "members": members,
        "uris": [image["uri"] for image in group],
        "start": group[times.index(min(times))]["captured_at"],
        "end": group[times.index(max(times))]["captured_at"],
        "folder": folder,
    }
    return {**made, "label": label} if kind == "manifest" else made


def _read_manifest(source: str, storage: Storage | None) -> list[tuple[int, str | None, str | None]]:
    """(line number, set_id, image) of each data line; the header must name both columns."""
    if storage is None:
        from vidlake.platform.storage import storage_for  # the full storage package only when needed

        storage = storage_for(source)
    try:
        with storage.open(source) as stream:
            text = stream.read().decode("utf-8-sig")  # a BOM, as spreadsheet programs write, is dropped
    except FileNotFoundError:
        raise ConfigError(f"the manifest {source} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the manifest {source} is not UTF-8 text: {exc}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [cell.strip() for cell in next(reader, [])]
    if "set_id" not in header or "image" not in header:
        raise ConfigError(f"{source}, line 1: the header must name the columns set_id,image, got {','.join(header)!r}")
    at_set, at_image = header.index("set_id"), header.index("image")
    rows = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # blank lines are allowed
        if len(cells) != len(header):
            raise ConfigError(f"{source}, line {reader.line_num}: {len(cells)} fields, the header has {len(header)}")
        rows.append((reader.line_num, cells[at_set], cells[at_image]))
    return rows


def _resolve(base: str | None, ref: str) -> str:
    """``ref`` as a normalised uri: kept when absolute, else joined onto ``base``."""
    if base is None or ref.startswith("/") or "://" in ref:
        return _normalise(ref)
    return _normalise(f"{base.rstrip('/')}/{ref}")


def _normalise(uri: str) -> str:
    scheme, sep, path = uri.partition("://")
    return f"{scheme}{sep}{posixpath.normpath(path)}" if sep else posixpath.normpath(uri)
