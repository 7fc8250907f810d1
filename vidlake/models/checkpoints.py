"""Where a checkpoint's files come from, and which revision they are: a folder's content hash, and a folder
on S3 pinned by the same hash on the driver and copied once per node into ``model.cache_dir``.

A model folder on S3 (``model.name: s3://bucket/prefix``) is read by the driver only for its small files
(config, tokenizer, processor: what the driver's checks load); every node that runs the model copies the
whole folder into ``<cache_dir>/s3/<bucket>/<prefix>@<revision>`` under a file lock (the replicas of one
node copy it once), checks the copy against the driver's revision, and copies it again when a later check
finds it changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Callable

from vidlake.errors import ModelLoadError
from vidlake.platform.config import ModelSettings, StorageSettings
from vidlake.platform.storage import FileInfo, LocalStorage, Storage, split_s3_uri, storage_for

__all__ = ["COPIED", "WEIGHT_SUFFIXES", "content_revision", "copy_here", "folder_revision", "resolve_s3"]

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
COPIED = ".vidlake-copied"  # written last into a node's copy of an S3 model folder: the copy is complete


def folder_revision(path: Path) -> str:
    """The Hub commit recorded by ``hf download --local-dir``, else the folder's :func:`content_revision`."""
    meta = path / ".cache" / "huggingface" / "download" / "config.json.metadata"
    if meta.is_file():
        commit = meta.read_text().splitlines()[0].strip()
        if len(commit) == 40:
            return commit
    local = LocalStorage()
    return content_revision(local, list(local.list(str(path), recursive=False)))


def _name(info: FileInfo) -> str:
    return info.uri.rstrip("/").rsplit("/", 1)[-1]


def content_revision(storage: Storage, files: list[FileInfo]) -> str:
    """A hash of a checkpoint folder's top-level ``files``: every config, tokenizer and template file in full,
    and each weight file's name, size and first and last MiB (cheap for 35 GB checkpoints, and on S3 two
    range reads; two different fine-tunes of one architecture still differ). The same bytes give the same
    revision on a local disk and on S3."""
    mib = 1 << 20
    digest = hashlib.sha256()
    for f in sorted(files, key=_name):
        name = _name(f)
        if name == "vidlake-tiny.json":
            continue
        if name.endswith(WEIGHT_SUFFIXES):
            tail_at = max(0, f.size - mib)
            ends = storage.read_range(f.uri, 0, mib) + storage.read_range(f.uri, tail_at, f.size - tail_at)
            digest.update(f"{name}:{f.size}:".encode() + hashlib.sha256(ends).digest())
        elif Path(name).suffix in (".json", ".jinja", ".txt", ".model"):
            digest.update(f"{name}:".encode() + hashlib.sha256(storage.read_range(f.uri, 0, f.size)).digest())
    return f"local-{digest.hexdigest()[:16]}"


def _s3_files(uri: str, storage: Storage) -> list[FileInfo]:
    """The top-level files of the model folder at ``uri``, or ``ModelLoadError`` saying why not."""
    try:
        return list(storage.list(uri + "/", recursive=False))
    except FileNotFoundError:
        raise ModelLoadError(f"no model folder at {uri}: nothing is stored under that prefix") from None
    except Exception as exc:  # botocore: no credentials, no bucket, access denied, endpoint down
        raise ModelLoadError(f"cannot list the model folder {uri}: {exc}") from exc


def resolve_s3(uri: str, settings: StorageSettings, check: Callable[[dict[str, Any], str], None]) -> tuple[str, str]:
    """(model id, revision) of the model folder at ``uri``; ``check(config, where)`` vets its config.json."""
    storage = storage_for(uri, settings)
    files = {_name(f): f for f in _s3_files(uri, storage)}
    if "config.json" not in files:
        raise ModelLoadError(f"{uri} has no config.json: point model.name at the prefix that holds a folder "
                             "written by save_pretrained (config.json and the weights side by side)")
    config = files["config.json"]
    check(json.loads(storage.read_range(config.uri, 0, config.size)), uri)
    if not any(name.endswith(WEIGHT_SUFFIXES) for name in files):
        raise ModelLoadError(f"{uri} holds no weight files (*.safetensors): the upload is incomplete")
    return uri, content_revision(storage, list(files.values()))


def copy_here(ref: Any, settings: ModelSettings, weights: bool = True) -> Path:
    """The node-local copy of the S3 model folder of ``ref`` (a ModelRef): made once per node (a file lock keeps the actors of
    one node from copying it twice) under ``model.cache_dir`` and checked against ``ref.revision``; a copy
    that no longer matches is made again. ``weights=False`` (the driver reading the config and processor)
    copies only the small files, unless the full copy is here already."""
    bucket, key = split_s3_uri(ref.source)
    full = Path(settings.cache_dir).expanduser() / "s3" / bucket / f"{key}@{ref.revision}"
    if (full / COPIED).is_file() and (not weights or folder_revision(full) == ref.revision):
        return full
    dest = full if weights else full.with_name(full.name + ".config")
    if not weights and (dest / COPIED).is_file():
        return dest
    from filelock import FileLock

    node, began = socket.gethostname(), time.monotonic()
    storage = storage_for(ref.source, ref.storage)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{dest}.lock"):
            if (dest / COPIED).is_file() and (not weights or folder_revision(dest) == ref.revision):
                return dest  # another actor of this node copied it while this one waited
            part = dest.with_name(f"{dest.name}.part-{os.getpid()}")
            shutil.rmtree(part, ignore_errors=True)
            part.mkdir()
            files = [f for f in _s3_files(ref.source, storage) if weights or not _name(f).endswith(WEIGHT_SUFFIXES)]
            for f in files:
                storage.download(f.uri, part / _name(f))
            got = folder_revision(part) if weights else ref.revision
            if got != ref.revision:
                shutil.rmtree(part, ignore_errors=True)
                raise ModelLoadError(
                    f"the model folder {ref.source} changed on S3 after the job started (the driver resolved "
                    f"{ref.revision}, node {node} copied {got}): run the job again so that every node loads one "
                    "revision, and replace a model under a new prefix rather than in place")
            (part / COPIED).write_text(json.dumps({"source": ref.source, "revision": ref.revision}))
            shutil.rmtree(dest, ignore_errors=True)
            os.replace(part, dest)
    except OSError as exc:
        raise ModelLoadError(f"cannot copy the model folder {ref.source} to {dest} on node {node}: {exc} "
                             "(model.cache_dir names where models are copied)") from exc
    if weights:
        size = sum(f.size for f in files) / 1e6
        print(f"model {ref.source} copied to {dest} on node {node}: {len(files)} files, {size:,.1f} MB in "
              f"{time.monotonic() - began:.1f} s", flush=True)
    return dest
