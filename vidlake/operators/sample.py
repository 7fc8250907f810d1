"""SampleFrames: decode one planned window into model-ready frames with their stream timestamps."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from vidlake.errors import RowError
from vidlake.operators.step import Resources, Step
from vidlake.platform.config import SamplingSettings, StorageSettings
from vidlake.platform.media import FrameBatch, read_decord, read_pyav
from vidlake.platform.storage import Storage, storage_for

__all__ = ["SAMPLE_COLUMNS", "SampleConfig", "SampleFrames", "decoder_order"]

SAMPLE_COLUMNS = (
    "frames", "timestamps_s", "num_frames", "decoder", "decoder_fallback", "partial", "partial_reason", "decode_s",
    "thumbs",
)


def decoder_order(preference: str, local: bool) -> list[str]:
    """Decoders to try, first choice first; decord reads local files only."""
    order = ["decord", "pyav"] if preference == "decord" else ["pyav", "decord"]
    return [d for d in order if local or d != "decord"]


@dataclass(frozen=True)
class SampleConfig:
    """SampleFrames' settings: decoder choice, threads and time limit, and how to reach the files."""

    sampling: SamplingSettings = SamplingSettings()
    storage: StorageSettings = StorageSettings()
    thumbs: bool = False  # also keep small frame copies (a task points: the merge re-identifies objects by looks)


class SampleFrames(Step):
    """Reads ``uri`` (and ``uris``: every known path of the same content, tried in turn when ``uri`` is
    gone or fails; ``uri`` is then set to the one decoded), ``sample_times_s``, ``sample_size``, ``resize``, ``rotation``, ``width``, ``height``
    (a PlanWindows row); 1:1.

    Writes ``frames`` (uint8 N x H x W x 3, upright, resized in the decoder; N <= planned times, as a
    frame nearest several times is kept once), ``timestamps_s`` (each frame's PTS in seconds from
    the stream's first frame), ``num_frames``, ``decoder`` ("pyav" | "decord"), ``decoder_fallback``
    (why the first decoder was given up, or null), ``partial`` and ``partial_reason`` (the frames
    that decoded from a damaged stream, and why some are missing), ``decode_s``, and with
    ``config.thumbs`` ``thumbs``: the frames at 96 px, packed (operators/appearance.py). A window where no
    frame decodes becomes an error row with ``error_kind`` ``missing`` or ``undecodable``. One
    CPU-bound task per window; its peak memory is about two windows of frames (128 x 378 x 378 x 3
    = 55 MB) plus the decoder's reference frames. Raise ``memory`` for ``size: 0`` (source
    resolution: 128 frames of 1080p are 0.8 GB) and ``num_cpus`` with ``sampling.threads``.

    An image set's window (``kind="set"``) loads its images instead (``set_uris``, ``set_sizes``: Pillow,
    EXIF orientation applied, ``decoder`` "pillow"); an image that cannot be read fails the window.
    """

    stage = "sample"
    outputs = SAMPLE_COLUMNS
    default_resources = Resources(num_cpus=1.0, memory=float(1024**3))

    def __init__(self, config: SampleConfig = SampleConfig(), resources: Resources | None = None):
        super().__init__(resources)
        self.config = config

    def process(self, row: dict[str, Any]) -> dict[str, Any]:
        if row.get("sample_times_s") is None:
            raise RowError("no_plan", "the row has no planned sample times (not a PlanWindows row)")
        out = self._load_set(row) if row.get("kind") == "set" else self._sample(row)
        if self.config.thumbs:
            from vidlake.operators.appearance import pack, thumbnails

            out["thumbs"] = pack(thumbnails(out["frames"]))
        return out

    def _sample(self, row: dict[str, Any]) -> dict[str, Any]:
        started = time.monotonic()
        failures: list[tuple[str, BaseException | str]] = []
        others = [u for u in (row.get("uris") or ()) if u != row["uri"]]
        for uri in [row["uri"], *others]:  # the same content under its other names, if this file fails
            batch = self._decode(uri, row, failures)
            if batch is not None:
                name, frames = batch
                return {
                    **row, "uri": uri, "frames": frames.frames, "timestamps_s": frames.timestamps_s,
                    "num_frames": len(frames.timestamps_s), "decoder": name,
                    "decoder_fallback": _describe(failures) or None, "partial": bool(frames.problems),
                    "partial_reason": frames.partial_reason, "decode_s": round(time.monotonic() - started, 4),
                }
        missing = isinstance(failures[-1][1], FileNotFoundError)
        raise RowError("missing" if missing else "undecodable", _describe(failures))

    def _load_set(self, row: dict[str, Any]) -> dict[str, Any]:
        """An image set's images, upright, in set order, the longer side at most ``sample_size``; images
        of another size than the first are resized to it (points are mapped back per image, normalized)."""
        from PIL import Image

        from vidlake.platform.media.images import load_image

        started = time.monotonic()
        limit = int(row.get("sample_size") or 0)
        images = []
        for uri, (w, h) in zip(row["set_uris"], row["set_sizes"]):
            try:
                image = load_image(uri, storage_for(uri, self.config.storage), limit if limit and max(w, h) > limit else None)
            except RowError as exc:
                raise RowError(exc.kind, f"{uri}: {exc.message}") from None
            except ValueError as exc:
                raise RowError("unreadable", f"{uri}: {exc}") from None
            if images and image.shape != images[0].shape:
                size = (images[0].shape[1], images[0].shape[0])
                image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
            images.append(image)
        times = [float(t) for t in row["sample_times_s"]]
        return {**row, "frames": np.stack(images), "timestamps_s": times, "num_frames": len(images), "decoder": "pillow",
                "decoder_fallback": None, "partial": False, "partial_reason": None,
                "decode_s": round(time.monotonic() - started, 4)}

    def _decode(self, uri: str, row: dict[str, Any], failures: list) -> tuple[str, FrameBatch] | None:
        """(decoder, frames) of ``uri`` by the first decoder that gives frames; failures are appended."""
        try:
            storage = storage_for(uri, self.config.storage)
            local = storage.local_path(uri)
        except ValueError as exc:
            raise RowError("unreadable", str(exc)) from None
        for name in decoder_order(self.config.sampling.decoder, local is not None):
            label = f"{name} ({uri})" if len(row.get("uris") or ()) > 1 else name
            try:
                batch = self._read(name, {**row, "uri": uri}, storage, local)
            except FileNotFoundError as exc:  # no decoder will find it either
                failures.append((label, exc))
                return None
            except Exception as exc:  # noqa: BLE001 - a file that defeats one decoder goes to the other
                failures.append((label, exc))
                continue
            if not batch.timestamps_s:
                failures.append((label, f"no frame decoded ({batch.partial_reason or 'empty stream'})"))
                continue
            return name, batch
        return None

    def _read(self, name: str, row: dict[str, Any], storage: Storage, local: str | None) -> FrameBatch:
        s = self.config.sampling
        times, size, resize = row["sample_times_s"], int(row.get("sample_size") or 0), row.get("resize") or s.resize
        if name == "decord":
            assert local is not None
            coded = (row.get("width"), row.get("height"))
            return read_decord(
                local, times, size, resize, rotation=row.get("rotation") or 0,
                coded_size=coded if all(coded) else None, threads=s.threads,
            )
        with contextlib.ExitStack() as stack:
            source = local if local is not None else stack.enter_context(storage.open(row["uri"]))
            return read_pyav(
                source, times, size, resize, threads=s.threads, fast_deblock=s.fast_deblock, timeout_s=s.timeout_s
            )


def _describe(failures: list[tuple[str, BaseException | str]]) -> str:
    def one(e: BaseException | str) -> str:
        return e if isinstance(e, str) else f"{type(e).__name__}: {e}"

    return "; ".join(f"{name}: {one(e)}" for name, e in failures)

