"""Local filesystem storage. URIs are plain paths or ``file://`` URLs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from vidlake.platform.storage.base import FileInfo

__all__ = ["LocalStorage", "to_path"]


def to_path(uri: str) -> Path:
    return Path(uri.removeprefix("file://")).expanduser()


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
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def local_path(self, uri: str) -> str | None:
        return str(to_path(uri))

    @staticmethod
    def _info(path: Path) -> FileInfo:
        st = path.stat()
        return FileInfo(uri=str(path), size=st.st_size, mtime=st.st_mtime)
