"""The one small storage interface every part of vidlake reads and writes through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Iterator, Protocol, runtime_checkable

__all__ = ["FileInfo", "Storage"]


@dataclass(frozen=True)
class FileInfo:
    """A listed file: its URI as the user would write it, size in bytes, mtime in epoch seconds."""

    uri: str
    size: int
    mtime: float


@runtime_checkable
class Storage(Protocol):
    """Local folders and S3 prefixes look the same through this.

    Implementations are cheap to construct and picklable (clients are created lazily in the
    process that uses them), so a Storage can travel to Ray workers inside an operator's config.
    """

    def list(self, uri: str, recursive: bool = True) -> Iterator[FileInfo]:
        """Files under ``uri`` (a folder or prefix), or ``uri`` itself when it names one file."""

    def stat(self, uri: str) -> FileInfo:
        """Size and mtime of one file; raises ``FileNotFoundError`` when there is none."""

    def exists(self, uri: str) -> bool:
        """Whether ``uri`` names an existing file or a non-empty folder/prefix."""

    def read_range(self, uri: str, start: int, length: int) -> bytes:
        """``length`` bytes from offset ``start`` (fewer at the end of the file)."""

    def open(self, uri: str) -> BinaryIO:
        """A readable, seekable binary file object, for hashing and for the decoders."""

    def write_atomic(self, uri: str, data: bytes) -> None:
        """Write ``data`` so that readers see the old content or all of the new, never a part."""

    def create_exclusive(self, uri: str, data: bytes) -> bool:
        """Write ``data`` to ``uri`` only if nothing is there yet; False when something was (one winner
        among writers racing for the same name: what a lease needs)."""

    def delete(self, uri: str) -> None:
        """Remove ``uri`` (nothing happens when it is already gone)."""

    def local_path(self, uri: str) -> str | None:
        """A filesystem path the decoders can open directly, or None when there is none."""
