"""Local filesystem storage. URIs are plain paths or ``file://`` URLs.

A file whose name is not valid UTF-8 (bytes a Linux filesystem allows) cannot be stored as a plain
path in the lake's UTF-8 columns: it is listed as a ``file://`` URL with its name's bytes
percent-encoded, which ``to_path`` turns back into the same bytes.
"""

from __future__ import annotations

import os
import tempfile
import urllib.parse
from pathlib import Path
from typing import BinaryIO, Iterator

from vidlake.platform.storage.base import FileInfo

__all__ = ["LocalStorage", "to_path", "to_uri"]


def to_path(uri: str) -> Path:
    if uri.startswith("file://"):
        return Path(os.fsdecode(urllib.parse.unquote_to_bytes(uri.removeprefix("file://"))))
    return Path(uri).expanduser()


def to_uri(path: Path | str) -> str:
    """The URI of a local path: the path itself, or a percent-encoded ``file://`` URL when its name is
    not valid UTF-8."""
    text = str(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return "file://" + urllib.parse.quote(os.fsencode(text), safe="/")


class LocalStorage:
    """Storage on a local (or mounted network) filesystem."""

    def list(self, uri: str, recursive: bool = True) -> Iterator[FileInfo]:
        root = to_path(uri)
        if root.is_file():
            yield self._info(root)
            return
        if not root.is_dir():
            raise FileNotFoundError(f"{uri} does not exist")
        walker = os.walk(root, onerror=None) if recursive else [(str(root), [], os.listdir(root))]
        for folder, dirs, files in walker:
            dirs.sort()
            for name in sorted(files):
                path = Path(folder, name)
                if path.is_file():
                    yield self._info(path)

    def stat(self, uri: str) -> FileInfo:
        path = to_path(uri)
        if not path.is_file():
            raise FileNotFoundError(f"{uri} does not exist")
        return self._info(path)

    def exists(self, uri: str) -> bool:
        return to_path(uri).exists()

    def read_range(self, uri: str, start: int, length: int) -> bytes:
        with open(to_path(uri), "rb") as f:
            f.seek(start)
            return f.read(length)

    def open(self, uri: str) -> BinaryIO:
        return open(to_path(uri), "rb")

    def write_atomic(self, uri: str, data: bytes) -> None:
        path = to_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o644)  # as any file written by open(): mkstemp's 0600 would hide reports from a web server
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def create_exclusive(self, uri: str, data: bytes) -> bool:
        path = to_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return True

    def delete(self, uri: str) -> None:
        to_path(uri).unlink(missing_ok=True)

    def local_path(self, uri: str) -> str | None:
        return str(to_path(uri))

    @staticmethod
    def _info(path: Path) -> FileInfo:
        st = path.stat()
        return FileInfo(uri=to_uri(path), size=st.st_size, mtime=st.st_mtime)
