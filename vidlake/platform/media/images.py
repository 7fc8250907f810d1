"""Still images: probe one file (content hash, upright size, capture time) and load it as RGB pixels.

Pillow does the decoding. Only the formats in ``IMAGE_FORMATS`` are opened, whatever the file's
suffix says, so a file never reaches one of Pillow's riskier plugins (EPS runs Ghostscript).
HEIC/HEIF is read through ``pillow-heif`` when it is installed; libheif applies the container's own
rotation (irot/imir, which HEIF viewers follow) while decoding, so such images come out of Pillow
already upright, and ``orientation`` reports the EXIF tag as the file stored it.

Capture time (``captured_at_source``):

* ``exif_offset``: EXIF DateTimeOriginal with OffsetTimeOriginal, a timezone-aware datetime;
* ``exif_local``: DateTimeOriginal alone, a naive datetime: the camera's wall clock, zone unknown.
  It is never taken for UTC: camera traps are set to local time, often without a zone;
* ``file_mtime``: no usable EXIF date: the file's modification time, aware, in UTC.

SubSecTimeOriginal, when present, adds the fraction of a second (bursts are often shot within one).
An EXIF date that is present but unreadable is not dropped silently: ``captured_at_problem`` says
why the next source was used.
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageMode, ImageOps, UnidentifiedImageError

from vidlake.errors import RowError
from vidlake.platform.lake.ids import hash_stream
from vidlake.platform.media.frames import output_size
from vidlake.platform.storage.base import FileInfo, Storage

__all__ = ["IMAGE_FORMATS", "IMAGE_SUFFIXES", "HEIF_SUPPORTED", "load_image", "probe_image"]

try:  # optional: HEIC/HEIF (phones) through libheif
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:
    HEIF_SUPPORTED = False

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"} | ({".heic", ".heif"} if HEIF_SUPPORTED else set())
)
# Pillow format names opened. JPEG includes MPO, the multi-picture JPEG some cameras write.
IMAGE_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP") + (("HEIF",) if HEIF_SUPPORTED else ())

# Transparent pixels become white: dark line art and text drawn on transparency (diagrams,
# scans, logos) would vanish on black, and white is what an image viewer shows behind them.
ALPHA_BACKGROUND = (255, 255, 255)

_TAG_ORIENTATION = 274
_TAG_DATETIME_ORIGINAL = 36867
_TAG_OFFSET_TIME_ORIGINAL = 36881
_TAG_SUBSEC_TIME_ORIGINAL = 37521
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def probe_image(uri: str, storage: Storage) -> dict[str, Any]:
    """Facts of one image file; raises ``RowError`` (``bad_image``) for an empty, damaged or non-image file.

    The bytes are read once, into memory (images are small next to videos): hashed there and decoded
    from there. The header gives the facts; then the image is decoded once to prove it is whole (a
    JPEG at 1/8 scale, which still reads every byte of its entropy-coded data).
    """
    info = _stat(uri, storage)
    data = _read(uri, storage)
    media_id, size = hash_stream(io.BytesIO(data))
    with _open(data) as im:
        facts = _header_facts(im)
        captured = _capture_time(im, info.mtime)
        if im.format in ("JPEG", "MPO"):
            im.draft(im.mode, (1, 1))  # decode at the smallest DCT scale: cheap, still reads every byte
        _decode(im)
    return {"media_id": media_id, "size": size, **facts, **captured}


def load_image(uri: str, storage: Storage, size: int | None = None) -> np.ndarray:
    """The image as uint8 H x W x 3 RGB, upright (EXIF orientation applied), alpha on white.

    16-bit images are scaled to 8 bits over their full range (65535 -> 255); 32-bit integer images
    are taken as 16-bit data; float images in [0, 1] are scaled by 255, others stretched min..max.
    ``size`` resizes so the longer side is ``size`` (aspect kept, as the video frames' ``fit``).
    ICC colour profiles are not applied.
    """
    with _open(_read(uri, storage)) as im:
        if size and im.format in ("JPEG", "MPO"):
            im.draft("RGB", (size, size))  # let libjpeg shrink in the DCT domain, never below ``size``
        _decode(im)
        upright = ImageOps.exif_transpose(im)
    rgb = _to_rgb(upright)
    if size:
        rgb = rgb.resize(output_size(*rgb.size, size, "fit"), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(rgb, dtype=np.uint8)


def _stat(uri: str, storage: Storage) -> FileInfo:
    try:
        return storage.stat(uri)
    except FileNotFoundError:
        raise RowError("missing", "the file disappeared before it could be read") from None
    except PermissionError as exc:
        raise RowError("unreadable", f"permission denied: {exc.strerror or exc}") from None


def _read(uri: str, storage: Storage) -> bytes:
    try:
        with storage.open(uri) as stream:
            return stream.read()
    except FileNotFoundError:
        raise RowError("missing", "the file disappeared before it could be read") from None
    except PermissionError as exc:
        raise RowError("unreadable", f"permission denied: {exc.strerror or exc}") from None
    except OSError as exc:
        raise RowError("unreadable", f"read failed: {exc}") from None


def _open(data: bytes) -> Image.Image:
    if not data:
        raise RowError("bad_image", "the file is empty (0 bytes)")
    try:
        return Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except Image.DecompressionBombError as exc:
        raise RowError("bad_image", f"too large to decode safely: {exc}") from None
    except UnidentifiedImageError:
        raise RowError(
            "bad_image", f"not a readable image ({', '.join(IMAGE_FORMATS)}); first bytes {data[:8]!r}"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:  # a recognised header that is cut short or malformed
        raise RowError("bad_image", f"the image header is damaged: {exc}") from None


def _decode(im: Image.Image) -> None:
    try:
        im.load()
    except Image.DecompressionBombError as exc:
        raise RowError("bad_image", f"too large to decode safely: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise RowError("bad_image", f"{im.format} data does not decode (truncated or corrupt): {exc}") from None


def _header_facts(im: Image.Image) -> dict[str, Any]:
    """Format, upright size, orientation, pixel mode: all from the header, nothing decoded."""
    try:
        orientation = int(im.getexif().get(_TAG_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - Pillow's EXIF parser raises many types on malformed data
        orientation = 1
    orientation = orientation if 1 <= orientation <= 8 else 1
    width, height = im.size
    if "original_orientation" in im.info:  # pillow-heif: rotated while decoding, the tag reset to 1
        orientation = int(im.info["original_orientation"] or 1)
    elif orientation >= 5:  # 5-8 turn the picture a quarter: a viewer shows it with sides swapped
        width, height = height, width
    mode_info = ImageMode.getmode(im.mode)
    return {
        "format": im.format,
        "width": width,
        "height": height,
        "orientation": orientation,
        "mode": im.mode,
        "bands": len(mode_info.bands),
        "bit_depth": 1 if im.mode == "1" else np.dtype(mode_info.typestr).itemsize * 8,
        "has_alpha": bool(im.has_transparency_data),
        "frames": int(getattr(im, "n_frames", 1)),
    }


def _capture_time(im: Image.Image, mtime: float) -> dict[str, Any]:
    """``captured_at``, its source and UTC offset, and what was wrong with EXIF dates that were skipped."""
    problem = None
    try:
        exif = im.getexif().get_ifd(ExifTags.IFD.Exif)
    except Exception as exc:  # noqa: BLE001 - malformed EXIF blocks raise struct/Value/Key errors
        exif, problem = {}, f"EXIF unreadable: {exc}"
    raw = _text(exif.get(_TAG_DATETIME_ORIGINAL))
    if raw:
        try:
            local = datetime.strptime(raw[:19], "%Y:%m:%d %H:%M:%S")
        except ValueError:
            problem = f"EXIF DateTimeOriginal {raw!r} is not a date"
        else:
            local += _subseconds(_text(exif.get(_TAG_SUBSEC_TIME_ORIGINAL)))
            offset_text = _text(exif.get(_TAG_OFFSET_TIME_ORIGINAL))
            zone = utc_offset_zone(offset_text)
            if zone is not None:
                return _capture(local.replace(tzinfo=zone), "exif_offset", None)
            note = f"EXIF OffsetTimeOriginal {offset_text!r} is not an offset" if offset_text else None
            return _capture(local, "exif_local", note)
    return _capture(datetime.fromtimestamp(mtime, tz=timezone.utc), "file_mtime", problem)


def _capture(when: datetime, source: str, problem: str | None) -> dict[str, Any]:
    offset = when.utcoffset()
    offset_text = None
    if offset is not None:  # "+HH:MM", as EXIF writes it
        minutes = int(offset.total_seconds() // 60)
        offset_text = f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return {"captured_at": when, "captured_at_source": source, "utc_offset": offset_text,
            "captured_at_problem": problem}


def _text(value: Any) -> str:
    """An EXIF ASCII value as clean text (cameras pad with NULs and spaces; some write bytes)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).strip("\x00 ").strip() if value is not None else ""


def utc_offset_zone(text: str) -> timezone | None:
    """The zone of an EXIF-style offset (``+02:00``), or None when ``text`` is not one."""
    match = _OFFSET.match(text)
    if not match or int(match[2]) > 14 or int(match[3]) > 59:
        return None
    delta = timedelta(hours=int(match[2]), minutes=int(match[3]))
    return timezone(-delta if match[1] == "-" else delta)


def _subseconds(text: str) -> timedelta:
    digits = text[:6] if text.isdigit() else ""
    return timedelta(microseconds=int(digits.ljust(6, "0"))) if digits else timedelta()


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB; transparency composited on ``ALPHA_BACKGROUND``."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        im = Image.fromarray(_to_uint8(np.asarray(im)))
    if im.has_transparency_data:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, ALPHA_BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """High-bit-depth grey to 8 bits (see ``load_image`` for the rules per kind)."""
    if values.dtype.kind == "f":
        finite = np.nan_to_num(values.astype(np.float64))
        low, high = (0.0, 1.0) if finite.min() >= 0 and finite.max() <= 1 else (finite.min(), finite.max())
        scaled = (finite - low) / ((high - low) or 1.0) * 255
    else:
        scaled = np.clip(values.astype(np.float64), 0, 65535) / 257
    return np.rint(scaled).astype(np.uint8)
