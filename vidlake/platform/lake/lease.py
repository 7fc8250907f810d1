"""Leases: named locks kept in the lake itself, so writers on any machine that reach the lake agree.

A lease is a small JSON file ``<lake>/_leases/<name>.json`` created with a conditional write (a local
exclusive create, or S3's ``If-None-Match: *``): of two writers, exactly one creates it. It names its
holder and an expiry; a holder that dies (``kill -9``, a lost node) leaves it behind, and once it has
expired the next writer takes it over. Leases guard short read-compute-commit sections (merging a
video's paths) and, with ``wait_s=0`` and ``renew_every_s``, whole scheduled runs: the second run of a
schedule is refused at once (``LeaseHeld``), and the first keeps its lease alive for as long as it goes.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from typing import Any

from vidlake.errors import LakeError
from vidlake.platform.config import StorageSettings
from vidlake.platform.storage import join_uri, storage_for

__all__ = ["Lease", "LeaseHeld"]


class LeaseHeld(LakeError):
    """The lease is held by another process (``holder``, ``since``: when it was taken, Unix seconds)."""

    def __init__(self, message: str, holder: str | None, since: float | None):
        super().__init__(message)
        self.holder, self.since = holder, since


class Lease:
    """``with Lease(lake_uri, "videos"):`` holds the lease ``videos`` of that lake for the block.

    ``wait_s``: how long to wait for a held lease before ``LeaseHeld`` (0: refuse at once).
    ``renew_every_s``: renew the expiry in the background while the block runs (for blocks that may
    outlast ``ttl_s``); a holder that dies stops renewing, and its lease expires ``ttl_s`` later."""

    def __init__(self, lake_uri: str, name: str, storage: StorageSettings | None = None, ttl_s: float = 120.0,
                 wait_s: float = 600.0, renew_every_s: float | None = None, note: str | None = None):
        self.uri = join_uri(join_uri(lake_uri, "_leases"), f"{name}.json")
        self.name, self.ttl_s, self.wait_s, self.renew_every_s, self.note = name, ttl_s, wait_s, renew_every_s, note
        self.storage = storage_for(self.uri, storage or StorageSettings())
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.since = time.time()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def __enter__(self) -> "Lease":
        deadline = time.monotonic() + self.wait_s
        pause = 0.05
        while not self._take():
            if time.monotonic() >= deadline:
                held = self._read()
                waited = f" after {self.wait_s:.0f} s" if self.wait_s else ""
                raise LeaseHeld(f"lease {self.name!r} of {self.uri} is still held by {held.get('holder')}"
                                f"{' (' + held['note'] + ')' if held.get('note') else ''}{waited}; if that process "
                                f"is gone, it expires by itself (or delete the file)", held.get("holder"),
                                held.get("since"))
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
        if self.renew_every_s:
            self._stop.clear()
            self._renewer = threading.Thread(target=self._renew, name=f"vidlake-lease-{self.name}", daemon=True)
            self._renewer.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self._read().get("holder") == self.holder:
            self.storage.delete(self.uri)

    def _body(self) -> bytes:
        return json.dumps({"holder": self.holder, "since": self.since, "expires": time.time() + self.ttl_s,
                           "note": self.note}).encode()

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_every_s):
            try:
                if self._read().get("holder") == self.holder:
                    self.storage.write_atomic(self.uri, self._body())
            except Exception:  # noqa: BLE001 - a missed renewal is retried; ttl_s leaves room for several
                pass

    def _take(self) -> bool:
        self.since = time.time()
        body = self._body()
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
