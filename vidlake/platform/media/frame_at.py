"""One frame of a video at a time t, upright, as a PIL image: for thumbnails and report backgrounds."""

from __future__ import annotations

import contextlib
from typing import Any, Sequence

from vidlake.platform.config import StorageSettings

__all__ = ["decode_frame", "frame_of_any_copy"]


def frame_of_any_copy(uris: Sequence[str], t: float, rotation: int | None,
                      storage: StorageSettings) -> tuple[Any, str]:
    """The frame at ``t`` (and the copy it came from) from the first readable of a video's copies (local paths, ``file://`` or
    ``s3://`` URIs read through vidlake's storage). ``FileNotFoundError`` with the last copy's problem
    when none can be read (gone, damaged, an unsupported location)."""
    from vidlake.platform.storage import is_s3, storage_for

    error: Exception | None = None
    for uri in uris:
        try:
            with contextlib.ExitStack() as stack:
                if is_s3(uri):
                    source = stack.enter_context(storage_for(uri, storage).open(uri))
                elif "://" in uri and not uri.startswith("file://"):
                    raise ValueError(f"unsupported video location {uri!r}")
                else:
                    source = uri.removeprefix("file://")
                return decode_frame(source, t, rotation), uri
        except (OSError, ValueError, IndexError) as exc:  # gone, unreadable: try the next copy
            error = exc
    raise FileNotFoundError(str(error) if error else "no copies")


def decode_frame(source: Any, t: float, rotation: int | None = 0) -> Any:
    """The PIL image of the frame on screen at ``t`` seconds (the last frame starting at or before t)."""
    import av

    with av.open(source) as container:
        stream = container.streams.video[0]
        base = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        target = base + max(0.0, t)
        best = None
        for seek_to in (target, 0.0):
            container.seek(int(seek_to / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                if frame.time > target + 1e-6:
                    if best is None and seek_to == 0.0:
                        best = frame  # t before the first frame: show the first one
                    break
                best = frame
            if best is not None:
                break
        if best is None:
            raise ValueError(f"no frame at t={t:.3f}s")
        image = best.to_image()
    turns = round((rotation or 0) / 90) % 4
    return image.rotate(90 * turns, expand=True) if turns else image
