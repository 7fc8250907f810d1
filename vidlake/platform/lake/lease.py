"""Leases: named locks kept in the lake itself, so writers on any machine that reach the lake agree.

A lease is a small JSON file ``<lake>/_leases/<name>.json`` created with a conditional write (a local
exclusive create, or S3's ``If-None-Match: *``): of two writers, exactly one creates it. It names its
holder and an expiry; a holder that dies (``kill -9``, a lost node) leaves it behind, and once it has
expired the next writer takes it over. Leases guard short read-compute-commit sections (merging a
video's paths), never long work.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from typing import Any

from vidlake.errors import LakeError
from vidlake.platform.config import StorageSettings
from vidlake.platform.storage import join_uri, storage_for

__all__ = ["Lease"]


class Lease:
    """``with Lease(lake_uri, "videos"):`` holds the lease ``videos`` of that lake for the block."""

    def __init__(self, lake_uri: str, name: str, storage: StorageSettings | None = None, ttl_s: float = 120.0,
                 wait_s: float = 600.0):
        self.uri = join_uri(join_uri(lake_uri, "_leases"), f"{name}.json")
        self.name, self.ttl_s, self.wait_s = name, ttl_s, wait_s
        self.storage = storage_for(self.uri, storage or StorageSettings())
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> "Lease":
        deadline = time.monotonic() + self.wait_s
        pause = 0.05
        while not self._take():
            if time.monotonic() > deadline:
                raise LakeError(f"lease {self.name!r} of {self.uri} is still held by {self._read().get('holder')} "
                                f"after {self.wait_s:.0f} s; if that process is gone, delete the file")
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._read().get("holder") == self.holder:
            self.storage.delete(self.uri)

    def _take(self) -> bool:
        body = json.dumps({"holder": self.holder, "expires": time.time() + self.ttl_s}).encode()
        if self.storage.create_exclusive(self.uri, body):
            return True
        held = self._read()
        if held and held.get("expires", 0) < time.time():  # its holder died: take it over
            self.storage.delete(self.uri)
            return self.storage.create_exclusive(self.uri, body)
        return False

    def _read(self) -> dict:
        try:
            with self.storage.open(self.uri) as f:
                return json.loads(f.read() or b"{}")
        except (FileNotFoundError, ValueError):
            return {}
