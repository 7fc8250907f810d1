"""ProbeMedia: content hash and facts of one video or image file; a bad file becomes an error row."""

from __future__ import annotations

from typing import Any

from vidlake.errors import RowError
from vidlake.operators.step import Resources, Step
from vidlake.platform.config import IngestSettings, StorageSettings
from vidlake.platform.lake.ids import hash_stream
from vidlake.platform.storage import Storage, storage_for

__all__ = ["IMAGE_COLUMNS", "ProbeMedia", "probe_video"]

PROBE_COLUMNS = (
    "video_id", "duration_s", "fps", "frames", "width", "height", "codec", "rotation", "has_audio", "damage",
)
IMAGE_COLUMNS = (  # an image's facts besides its id (in ``video_id``: the content id) and upright width, height
    "format", "orientation", "mode", "bit_depth", "has_alpha", "captured_at", "captured_local", "utc_offset",
    "captured_at_source", "captured_at_problem",
)


def probe_video(uri: str, storage: Storage, chunk_bytes: int = 8 * 1024 * 1024) -> dict[str, Any]:
    """Hash and probe one file. Returns the probe columns; raises ``RowError`` for an unusable file.

    The bytes are read twice, streamed both times: once for sha256, once by the demuxer, which
    walks every video packet (no decoding) to count frames exactly and to notice a truncated file.
    A file whose tail is missing is still usable: it comes back with ``damage`` set.
    """
    try:
        size = storage.stat(uri).size
        if size == 0:
            raise RowError("empty_file", "the file is empty (0 bytes)")
        with storage.open(uri) as stream:
            video_id, _ = hash_stream(stream, chunk_bytes)
    except PermissionError as exc:
        raise RowError("unreadable", f"permission denied: {exc.strerror or exc}") from None
    except FileNotFoundError:
        raise RowError("missing", "the file disappeared before it could be read") from None
    except OSError as exc:
        raise RowError("unreadable", f"read failed: {exc}") from None
    return {"video_id": video_id, **_probe_streams(uri, storage)}


def _probe_streams(uri: str, storage: Storage) -> dict[str, Any]:
    import av

    source = storage.local_path(uri)
    handle = None if source else storage.open(uri)
    try:
        try:
            container = av.open(source or handle, mode="r", metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            container_kind = _sniff_container(storage.read_range(uri, 0, 16))
            if container_kind:
                raise RowError(
                    "truncated",
                    f"looks like {container_kind} but cannot be opened (truncated or corrupt): {exc.strerror or exc}",
                ) from None
            raise RowError("not_a_video", f"not a readable video container ({exc.strerror or exc})") from None
        with container:
            if not container.streams.video:
                kinds = sorted({s.type for s in container.streams}) or ["none"]
                raise RowError("no_video_stream", f"no video stream (streams: {', '.join(kinds)})")
            stream = container.streams.video[0]
            facts = _count_packets(container, stream)
            container.seek(0)
            rotation = _first_frame_rotation(container, stream)
            declared = stream.frames or 0
            if facts["frames"] and declared and facts["frames"] < declared and not facts["damage"]:
                facts["damage"] = f"truncated: {facts['frames']} of {declared} frames present"
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else (facts["frames"] / facts["duration_s"] if facts["duration_s"] else 0.0)
            return {
                **facts,
                "fps": fps,
                "width": stream.codec_context.width,
                "height": stream.codec_context.height,
                "codec": stream.codec_context.name,
                "rotation": rotation,
                "has_audio": bool(container.streams.audio),
            }
    finally:
        if handle is not None:
            handle.close()


def _sniff_container(head: bytes) -> str | None:
    """The container a file's first bytes announce, if any (to tell damaged video from non-video)."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free"):
        return "MP4/QuickTime"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "Matroska/WebM"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    if head[:1] == b"\x47" or head[:4] == b"\x00\x00\x01\xba":
        return "MPEG stream"
    return None


def _count_packets(container: Any, stream: Any) -> dict[str, Any]:
    """Frame count and duration from the packets (exact, also for variable frame rate)."""
    import av

    frames, first, end, damage = 0, None, None, None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            frames += 1
            pts = packet.pts if packet.pts is not None else packet.dts
            if pts is None:
                continue
            first = pts if first is None else min(first, pts)
            stop = pts + (packet.duration or 0)
            end = stop if end is None else max(end, stop)
    except av.error.FFmpegError as exc:
        damage = f"corrupt after {frames} packets: {exc}"
    if frames == 0:
        raise RowError("no_frames", damage or "the video stream holds no frames")
    if first is not None and end is not None and end > first:
        duration = float((end - first) * stream.time_base)
    elif stream.duration:
        duration = float(stream.duration * stream.time_base)
    else:
        duration = float(container.duration or 0) / 1_000_000
    return {"frames": frames, "duration_s": duration, "damage": damage}


def _first_frame_rotation(container: Any, stream: Any) -> int:
    import av

    try:
        for frame in container.decode(stream):
            return int(getattr(frame, "rotation", 0) or 0)
    except av.error.FFmpegError as exc:
        raise RowError("undecodable", f"the first frame does not decode: {exc}") from None
    raise RowError("undecodable", "no frame decodes")


class ProbeMedia(Step):
    """Reads ``uri``, ``kind`` (``video`` | ``image``; plus ``size``, ``mtime``); writes the file's facts or an
    error (1:1).

    Columns written: ``video_id`` (sha256 of the bytes: the content id, an image's too), ``width``,
    ``height``; for a video ``duration_s``, ``fps``, ``frames``, ``codec``, ``rotation``, ``has_audio``,
    ``damage`` (null, or why only part of the file is readable); for an image ``IMAGE_COLUMNS``
    (vidlake/platform/media/images.py: upright size, EXIF orientation, ``captured_at`` (UTC, when the
    instant is known), ``captured_local`` (the camera's wall-clock time, when EXIF gives one),
    ``utc_offset``, ``captured_at_source``). An unusable file becomes an error row (stage ``probe``).
    CPU-bound, one task per file.
    """

    stage = "probe"
    outputs = PROBE_COLUMNS + IMAGE_COLUMNS

    def __init__(self, storage: StorageSettings = StorageSettings(), ingest: IngestSettings = IngestSettings(),
                 resources: Resources | None = None):
        super().__init__(resources)
        self.storage, self.ingest = storage, ingest

    def process(self, row: dict[str, Any]) -> dict[str, Any]:
        storage = storage_for(row["uri"], self.storage)
        if row.get("kind") == "image":
            return {**row, **image_facts(row["uri"], storage)}
        return {**row, **probe_video(row["uri"], storage, self.ingest.hash_chunk_mb * 1024 * 1024)}


def image_facts(uri: str, storage: Storage) -> dict[str, Any]:
    """``probe_image`` as probe columns: the content id in ``video_id``, and the capture time split into the
    instant (UTC, or null) and the camera's wall-clock time (or null), so every row has the same types."""
    from datetime import timezone

    from vidlake.platform.media.images import probe_image

    facts = probe_image(uri, storage)
    when, source = facts["captured_at"], facts["captured_at_source"]
    return {
        "video_id": facts["media_id"], "width": facts["width"], "height": facts["height"],
        **{k: facts[k] for k in ("format", "orientation", "mode", "bit_depth", "has_alpha", "utc_offset",
                                 "captured_at_source", "captured_at_problem")},
        "captured_at": when.astimezone(timezone.utc) if when.tzinfo is not None else None,
        "captured_local": when.replace(tzinfo=None) if source != "file_mtime" else None,
    }
