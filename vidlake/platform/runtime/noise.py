"""Known-harmless lines Ray prints to the driver's stderr, kept off the user's terminal.

Ray's own C++ logger writes some errors to the driver's stderr (file descriptor 2) as well as to the
driver's log file under the Ray session's ``logs/``. One of them is printed on every run that has an
actor pool and means nothing there: "Actor ... has constructor arguments in the object store and
max_restarts > 0" (ray-project/ray#57733: Ray Data always passes its map function to pool actors by
reference, and the driver holds that reference for the whole run, so the actors' restarts work).

``quiet_known_noise()`` routes fd 2 through a small filter process for its duration: lines matching
``KNOWN_NOISE`` are dropped, everything else passes at once. A separate process rather than a thread,
so that what a crashing driver writes last (an abort message, a C stack) still comes out. The dropped
lines stay in Ray's driver log.

Only the standard library is imported here: the filter process runs this file as a script.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
from typing import Iterator

__all__ = ["KNOWN_NOISE", "quiet_known_noise"]

KNOWN_NOISE = (
    r"core_worker\.cc:\d+: Actor with class name: .* has constructor arguments in the object store and max_restarts",
)


@contextlib.contextmanager
def quiet_known_noise(patterns: tuple[str, ...] = KNOWN_NOISE) -> Iterator[None]:
    """Within the block, fd 2 of this process goes through the filter. A no-op where the filter cannot
    start (or fd 2 is closed)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        proc = subprocess.Popen([sys.executable, "-S", os.path.abspath(__file__), *patterns],
                                stdin=subprocess.PIPE, stdout=saved, stderr=saved, close_fds=True)
    except OSError:
        os.close(saved)
        yield
        return
    sys.stderr.flush()
    os.dup2(proc.stdin.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        proc.stdin.close()  # the filter ends at end of input (once no other process holds the pipe)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _filter(patterns: list[str]) -> None:
    """Copy stdin to stdout line by line, dropping lines that match a pattern; a partial line is passed
    on when no more bytes come within 50 ms (progress output, prompts)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the driver; this copies until its input ends
    noise = re.compile("|".join(f"(?:{p})" for p in patterns).encode())
    fd_in = 0
    pending = b""
    while True:
        ready, _, _ = select.select([fd_in], [], [], 0.05 if pending else None)
        if not ready:
            _write(pending)
            pending = b""
            continue
        chunk = os.read(fd_in, 65536)
        if not chunk:
            _write(pending)
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        out = b"".join(line + b"\n" for line in lines if not noise.search(line))
        _write(out)


def _write(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]


if __name__ == "__main__":
    _filter(sys.argv[1:])
