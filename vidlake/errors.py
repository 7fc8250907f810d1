"""The exception tree of vidlake.

Two kinds of failure exist (see docs/errors.md):

* **Row errors** never raise out of an operator: a bad file, an undecodable frame or an unparsable
  model answer becomes ``status``/``error_kind``/``error`` columns on the row, is counted, and is
  written to the lake's ``errors`` table. ``RowError`` is the exception operators raise internally
  and convert to such columns; ``kind`` is a short stable slug (``empty_file``, ``not_a_video``...).
* **Fatal errors** stop the run at once with a message that says what to do. They all derive from
  ``VidlakeError``; the CLI prints ``str(error)`` on one line (``--debug`` shows the traceback).

    VidlakeError
    ├── ConfigError        bad settings or job spec
    ├── StorageError       storage unreachable, credentials rejected, path missing
    ├── LakeError          a lake table is missing or has an unexpected schema
    ├── ModelLoadError     the model cannot be loaded (missing weights, wrong id, out of memory)
    └── JobFailed          the run completed its work but must be reported as failed
                           (no readable video at all, failure budget exceeded)
    RowError               one row failed; carries ``kind``; never escapes an operator
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "VidlakeError",
    "ConfigError",
    "StorageError",
    "LakeError",
    "ModelLoadError",
    "JobFailed",
    "invalid",
    "RowError",
]


class VidlakeError(Exception):
    """Base of every fatal vidlake error. The message is meant for the user."""


class ConfigError(VidlakeError):
    """Settings or a job spec are invalid."""


class StorageError(VidlakeError):
    """A storage location cannot be reached, listed or written."""


class LakeError(VidlakeError):
    """A lake table is missing, or its schema is not what this version writes."""


class ModelLoadError(VidlakeError):
    """The model (weights, processor, device placement) cannot be loaded."""


class JobFailed(VidlakeError):
    """A job ran but its outcome counts as failure (nothing readable, failure budget exceeded)."""


class RowError(Exception):
    """One row failed. ``kind`` is a stable slug recorded in the ``errors`` table."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def invalid(exc: "ValidationError", whole: str = "spec") -> str:
    """A pydantic ``ValidationError`` as one line: ``field.path: message; ...`` (``whole`` names a
    problem of the whole object)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or whole}: {e['msg'].removeprefix('Value error, ')}"
                     for e in exc.errors())
