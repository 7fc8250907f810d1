"""probe_image and load_image on images Pillow writes here: orientation, capture time, damage, pixel modes."""

import hashlib
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from media import exif
from vidlake.errors import RowError
from vidlake.platform.config import StorageSettings
from vidlake.platform.media.images import HEIF_SUPPORTED, IMAGE_SUFFIXES, load_image, probe_image
from vidlake.platform.storage import LocalStorage, storage_for

LOCAL = LocalStorage()
RED, BLUE = (230, 20, 20), (20, 20, 230)


def marked(width=60, height=40) -> Image.Image:
    """Blue picture with a red 12x12 block in the stored top-left corner."""
    im = Image.new("RGB", (width, height), BLUE)
    im.paste(RED, (0, 0, 12, 12))
    return im


def save(im: Image.Image, path: Path, **kwargs) -> str:
    im.save(path, **kwargs)
    return str(path)


def corner_colours(pixels: np.ndarray) -> dict[str, tuple]:
    """Mean colour of a 6x6 patch in each corner, rounded to 'red'/'blue' by the dominant channel."""
    h, w = pixels.shape[:2]
    patches = {"top-left": pixels[:6, :6], "top-right": pixels[:6, w - 6:],
               "bottom-left": pixels[h - 6:, :6], "bottom-right": pixels[h - 6:, w - 6:]}
    return {name: "red" if p[..., 0].mean() > p[..., 2].mean() else "blue" for name, p in patches.items()}


@pytest.mark.parametrize("orientation, swapped, red_at", [
    (1, False, "top-left"),
    (3, False, "bottom-right"),  # turned 180 degrees
    (6, True, "top-right"),  # stored turned left: the viewer turns it 90 degrees clockwise
    (8, True, "bottom-left"),  # stored turned right: the viewer turns it 90 degrees counter-clockwise
])
def test_exif_orientation_gives_upright_size_and_pixels(tmp_path, orientation, swapped, red_at):
    uri = save(marked(), tmp_path / "a.jpg", quality=95, exif=exif(orientation=orientation))
    facts = probe_image(uri, LOCAL)
    assert facts["orientation"] == orientation
    assert (facts["width"], facts["height"]) == ((40, 60) if swapped else (60, 40))
    pixels = load_image(uri, LOCAL)
    assert pixels.shape == ((60, 40, 3) if swapped else (40, 60, 3)) and pixels.dtype == np.uint8
    colours = corner_colours(pixels)
    assert colours[red_at] == "red"
    assert sorted(colours.values()) == ["blue", "blue", "blue", "red"]


def test_probe_facts_and_content_hash(tmp_path):
    uri = save(marked(), tmp_path / "a.jpg", quality=90)
    data = Path(uri).read_bytes()
    facts = probe_image(uri, LOCAL)
    assert facts["media_id"] == hashlib.sha256(data).hexdigest()
    assert facts["size"] == len(data)
    assert facts["format"] == "JPEG" and facts["mode"] == "RGB" and facts["bit_depth"] == 8
    assert facts["orientation"] == 1 and facts["has_alpha"] is False and facts["frames"] == 1


def test_capture_time_with_offset_is_aware(tmp_path):
    uri = save(marked(), tmp_path / "a.jpg", exif=exif(taken="2024:05:01 06:30:15", offset="+02:00", subsec="25"))
    facts = probe_image(uri, LOCAL)
    assert facts["captured_at_source"] == "exif_offset"
    assert facts["utc_offset"] == "+02:00"
    assert facts["captured_at"] == datetime(2024, 5, 1, 4, 30, 15, 250000, tzinfo=timezone.utc)
    assert facts["captured_at"].utcoffset() == timedelta(hours=2)


def test_capture_time_without_offset_stays_naive_local(tmp_path):
    uri = save(marked(), tmp_path / "a.jpg", exif=exif(taken="2024:05:01 06:30:15"))
    facts = probe_image(uri, LOCAL)
    assert facts["captured_at_source"] == "exif_local"
    assert facts["captured_at"] == datetime(2024, 5, 1, 6, 30, 15)
    assert facts["captured_at"].tzinfo is None and facts["utc_offset"] is None  # never guessed as UTC
    assert facts["captured_at_problem"] is None


def test_no_exif_falls_back_to_file_mtime_in_utc(tmp_path):
    uri = save(marked(), tmp_path / "a.png")
    os.utime(uri, (1_700_000_000, 1_700_000_000.5))
    facts = probe_image(uri, LOCAL)
    assert facts["captured_at_source"] == "file_mtime"
    assert facts["captured_at"] == datetime.fromtimestamp(1_700_000_000.5, tz=timezone.utc)
    assert facts["utc_offset"] == "+00:00" and facts["captured_at_problem"] is None


def test_unusable_exif_date_falls_back_and_says_why(tmp_path):
    uri = save(marked(), tmp_path / "a.jpg", exif=exif(taken="0000:00:00 00:00:00"))
    facts = probe_image(uri, LOCAL)
    assert facts["captured_at_source"] == "file_mtime"
    assert "0000:00:00" in facts["captured_at_problem"]
    bad_offset = save(marked(), tmp_path / "b.jpg", exif=exif(taken="2024:05:01 06:30:15", offset="   :  "))
    facts = probe_image(bad_offset, LOCAL)
    assert facts["captured_at_source"] == "exif_local" and facts["captured_at"].tzinfo is None


def test_damaged_files_are_bad_image_rows(tmp_path):
    noise = Image.effect_noise((320, 240), 60).convert("RGB")
    whole = Path(save(noise, tmp_path / "whole.jpg", quality=90)).read_bytes()
    cases = {
        "truncated.jpg": whole[: len(whole) // 2],
        "tail cut.jpg": whole[:-200],
        "empty.jpg": b"",
        "notes.jpg": b"these are field notes, not a photograph\n" * 20,
        "truncated.png": Path(save(noise, tmp_path / "whole.png")).read_bytes()[:5000],
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(RowError) as caught:
            probe_image(str(tmp_path / name), LOCAL)
        assert caught.value.kind == "bad_image", name
        with pytest.raises(RowError):
            load_image(str(tmp_path / name), LOCAL)
    assert "empty" in str(_error(tmp_path / "empty.jpg"))
    assert "truncated" in str(_error(tmp_path / "truncated.jpg"))


def _error(path: Path) -> RowError:
    with pytest.raises(RowError) as caught:
        probe_image(str(path), LOCAL)
    return caught.value


def test_png_alpha_is_composited_on_white(tmp_path):
    im = Image.new("RGBA", (40, 20), (0, 0, 0, 0))  # transparent black
    im.paste((200, 0, 0, 255), (0, 0, 20, 20))  # left half opaque red
    uri = save(im, tmp_path / "a.png")
    facts = probe_image(uri, LOCAL)
    assert facts["has_alpha"] is True and facts["mode"] == "RGBA" and facts["bands"] == 4
    pixels = load_image(uri, LOCAL)
    assert pixels.shape == (20, 40, 3)
    assert (pixels[:, :20] == (200, 0, 0)).all()
    assert (pixels[:, 20:] == 255).all()


def test_16_bit_tiff_scales_to_8_bits(tmp_path):
    values = np.linspace(0, 65535, 64 * 32).astype(np.uint16).reshape(32, 64)
    uri = save(Image.fromarray(values), tmp_path / "a.tif")
    facts = probe_image(uri, LOCAL)
    assert (facts["format"], facts["mode"], facts["bit_depth"]) == ("TIFF", "I;16", 16)
    pixels = load_image(uri, LOCAL)
    assert pixels.shape == (32, 64, 3)
    expected = np.rint(values / 257).astype(np.uint8)
    assert (pixels[..., 0] == expected).all() and (pixels[..., 1] == expected).all()
    assert pixels.min() == 0 and pixels.max() == 255  # full range kept, not clipped or wrapped


@pytest.mark.parametrize("name, make, mode, centre", [
    ("grey.png", lambda im: im.convert("L"), "L", (124, 124, 124)),
    ("palette.png", lambda im: im.convert("P"), "P", (204, 102, 51)),
    ("cmyk.jpg", lambda im: im.convert("CMYK"), "CMYK", (200, 100, 50)),
    ("float.tif", lambda im: Image.fromarray(np.full((20, 30), 0.5, np.float32)), "F", (128, 128, 128)),
])
def test_other_modes_load_as_rgb(tmp_path, name, make, mode, centre):
    uri = save(make(Image.new("RGB", (30, 20), (200, 100, 50))), tmp_path / name)
    assert probe_image(uri, LOCAL)["mode"] == mode
    pixels = load_image(uri, LOCAL)
    assert pixels.shape == (20, 30, 3) and pixels.dtype == np.uint8
    assert np.abs(pixels[10, 15].astype(int) - centre).max() <= 2


def test_webp_with_exif(tmp_path):
    uri = save(marked(), tmp_path / "a.webp", lossless=True, exif=exif(orientation=6, taken="2023:01:02 03:04:05"))
    facts = probe_image(uri, LOCAL)
    assert facts["format"] == "WEBP" and (facts["width"], facts["height"]) == (40, 60)
    assert facts["captured_at"] == datetime(2023, 1, 2, 3, 4, 5)
    pixels = load_image(uri, LOCAL)
    assert corner_colours(pixels)["top-right"] == "red"


def test_resize_keeps_aspect_of_the_upright_image(tmp_path):
    big = Image.new("RGB", (800, 600), BLUE)
    big.paste(RED, (0, 0, 200, 200))
    uri = save(big, tmp_path / "big.jpg", quality=90, exif=exif(orientation=6))
    pixels = load_image(uri, LOCAL, size=100)
    assert pixels.shape == (100, 75, 3)
    assert corner_colours(pixels)["top-right"] == "red"
    assert load_image(save(marked(), tmp_path / "small.png"), LOCAL, size=120).shape == (80, 120, 3)


@pytest.mark.skipif(not HEIF_SUPPORTED, reason="pillow-heif is not installed")
def test_heic_is_read_upright(tmp_path):
    assert ".heic" in IMAGE_SUFFIXES
    # as bytes, pillow-heif turns the EXIF orientation into the container's rotation (irot), as phones write
    tags = exif(orientation=6, taken="2024:02:03 04:05:06").tobytes()
    uri = save(marked(), tmp_path / "a.heic", quality=90, exif=tags)
    facts = probe_image(uri, LOCAL)
    assert facts["format"] == "HEIF" and facts["orientation"] == 6
    assert (facts["width"], facts["height"]) == (40, 60)
    assert facts["captured_at"] == datetime(2024, 2, 3, 4, 5, 6)
    pixels = load_image(uri, LOCAL)
    assert pixels.shape == (60, 40, 3) and corner_colours(pixels)["top-right"] == "red"


def test_suffixes_and_unsupported_formats(tmp_path):
    assert {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"} <= IMAGE_SUFFIXES
    gif = save(marked(), tmp_path / "actually a gif.jpg", format="GIF")  # a format we do not open
    with pytest.raises(RowError) as caught:
        probe_image(gif, LOCAL)
    assert caught.value.kind == "bad_image"


@pytest.mark.s3
def test_probe_and_load_through_s3(s3_endpoint, s3_bucket, tmp_path):
    uri = f"s3://{s3_bucket}/trap/a.jpg"
    storage = storage_for(uri, StorageSettings(endpoint_url=s3_endpoint))
    data = Path(save(marked(), tmp_path / "a.jpg", exif=exif(orientation=8, taken="2024:05:01 06:30:15"))).read_bytes()
    storage.write_atomic(uri, data)
    facts = probe_image(uri, storage)
    assert facts["media_id"] == hashlib.sha256(data).hexdigest() and facts["captured_at_source"] == "exif_local"
    assert corner_colours(load_image(uri, storage))["bottom-left"] == "red"
