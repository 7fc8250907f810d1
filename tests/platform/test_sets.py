"""Image sets: bursts, time-lapse groups and manifests over probed image rows (and real probed files)."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from vidlake.errors import ConfigError
from vidlake.platform.config import StorageSettings
from vidlake.platform.media.images import probe_image
from vidlake.platform.media.sets import burst_sets, manifest_sets, timelapse_sets
from vidlake.platform.storage import LocalStorage, storage_for

T0 = datetime(2024, 6, 1, 5, 0, 0)


def row(folder: str, name: str, seconds: float, when: datetime = T0) -> dict:
    """A probed image row as probe_image gives it (only what the sets read)."""
    return {"uri": f"{folder}/{name}", "media_id": f"id-{folder}-{name}",
            "captured_at": when + timedelta(seconds=seconds)}


def names(sets) -> list[list[str]]:
    return [[uri.rsplit("/", 1)[1] for uri in s["uris"]] for s in sets]


def test_three_bursts_in_one_folder():
    times = [0, 2, 4, 60, 61, 200, 205, 214.5]  # gaps of 56 s and 139 s; 9.5 s stays inside a burst
    images = [row("/trap/cam1", f"IMG_{i:04d}.JPG", t) for i, t in enumerate(times)]
    sets = burst_sets(list(reversed(images)), gap_s=10)  # input order does not matter
    assert names(sets) == [
        ["IMG_0000.JPG", "IMG_0001.JPG", "IMG_0002.JPG"], ["IMG_0003.JPG", "IMG_0004.JPG"],
        ["IMG_0005.JPG", "IMG_0006.JPG", "IMG_0007.JPG"],
    ]
    first = sets[0]
    assert first["kind"] == "burst" and first["folder"] == "/trap/cam1"
    assert first["members"] == [f"id-/trap/cam1-IMG_000{i}.JPG" for i in range(3)]
    assert (first["start"], first["end"]) == (T0, T0 + timedelta(seconds=4))
    assert [len(s["members"]) for s in burst_sets(images, gap_s=10.5)] == [3, 2, 3]
    assert [len(s["members"]) for s in burst_sets(images, gap_s=9.5)] == [3, 2, 2, 1]  # 9.5 s apart: not closer


@pytest.mark.parametrize("run, most, sizes", [(7, 5, [4, 3]), (11, 5, [4, 4, 3]), (10, 5, [5, 5]), (5, 5, [5]),
                                              (3, 1, [1, 1, 1])])
def test_long_bursts_split_evenly(run, most, sizes):
    images = [row("/trap", f"{i:03d}.jpg", i) for i in range(run)]
    sets = burst_sets(images, gap_s=10, max_per_set=most)
    assert [len(s["members"]) for s in sets] == sizes
    assert sum(names(sets), []) == [f"{i:03d}.jpg" for i in range(run)]  # consecutive, nothing lost


def test_folders_never_mix():
    images = [row("s3://b/site/cam1", f"{i}.jpg", i) for i in range(3)]
    images += [row("s3://b/site/cam2", f"{i}.jpg", i + 0.5) for i in range(3)]  # interleaved in time
    sets = burst_sets(images, gap_s=10)
    assert [s["folder"] for s in sets] == ["s3://b/site/cam1", "s3://b/site/cam2"]
    assert all(len({uri.rsplit("/", 1)[0] for uri in s["uris"]}) == 1 for s in sets)


def test_equal_times_keep_file_order():
    images = [row("/trap", name, 0) for name in ["c.jpg", "a.jpg", "b.jpg"]]  # a camera shooting within a second
    assert names(burst_sets(images)) == [["a.jpg", "b.jpg", "c.jpg"]]


def test_naive_and_aware_times_compare_as_wall_clock():
    aware = timezone(timedelta(hours=-5))
    images = [row("/trap", "a.jpg", 0), row("/trap", "b.jpg", 5, T0.replace(tzinfo=aware))]
    # as instants b would be 5 hours later; within the folder the clocks are compared as read
    assert names(burst_sets(images, gap_s=10)) == [["a.jpg", "b.jpg"]]
    all_aware = [row("/t", "a.jpg", 0, T0.replace(tzinfo=timezone.utc)),
                 row("/t", "b.jpg", 5, T0.replace(tzinfo=aware))]
    assert names(burst_sets(all_aware, gap_s=10)) == [["a.jpg"], ["b.jpg"]]  # all aware: real instants


def test_set_ids_are_stable_and_follow_members_and_parameters():
    images = [row("/trap", f"{i}.jpg", i) for i in range(4)]
    ids = [s["set_id"] for s in burst_sets(images)]
    assert ids == [s["set_id"] for s in burst_sets(list(reversed(images)))]
    changed = [dict(images[0], media_id="other content")] + images[1:]
    assert burst_sets(changed)[0]["set_id"] != ids[0]
    assert burst_sets(images, max_per_set=6)[0]["set_id"] != ids[0]  # same members, other parameters
    assert timelapse_sets(images, every=4)[0]["set_id"] != ids[0]  # same members, other kind


def test_timelapse_groups_in_capture_order():
    images = [row("/tl", f"{i:02d}.jpg", i * 600) for i in range(7)]
    sets = timelapse_sets(images[::-1], every=3)
    assert [len(s["members"]) for s in sets] == [3, 3, 1]
    assert names(sets)[0] == ["00.jpg", "01.jpg", "02.jpg"] and {s["kind"] for s in sets} == {"timelapse"}
    with pytest.raises(ConfigError):
        timelapse_sets(images, every=0)


def test_bad_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="max_per_set"):
        burst_sets([], max_per_set=0)
    with pytest.raises(ConfigError, match="gap_s"):
        burst_sets([], gap_s=-1)
    assert burst_sets([]) == []


def write_manifest(folder: Path, text: str) -> str:
    path = folder / "sets.csv"
    path.write_text(text)
    return str(path)


def test_manifest_sets_resolve_relative_to_the_manifest(tmp_path):
    images = [row(str(tmp_path), "a.jpg", 0), row(str(tmp_path), "b.jpg", 1), row(str(tmp_path / "sub"), "c.jpg", 2)]
    path = write_manifest(tmp_path, "set_id,image\nfox,b.jpg\nfox,./a.jpg\n\nrest,sub/c.jpg\n")
    sets = manifest_sets(path, images)
    assert [s["label"] for s in sets] == ["fox", "rest"]
    assert names(sets) == [["b.jpg", "a.jpg"], ["c.jpg"]]  # the manifest's order
    assert sets[0]["kind"] == "manifest" and sets[0]["folder"] == str(tmp_path)
    assert (sets[0]["start"], sets[0]["end"]) == (T0, T0 + timedelta(seconds=1))
    rows = [{"set_id": "fox", "image": "b.jpg"}, {"set_id": "fox", "image": "a.jpg"}]
    assert manifest_sets(rows, images, base=str(tmp_path))[0]["set_id"] == sets[0]["set_id"]


@pytest.mark.parametrize("text, message", [
    ("set_id,image\nfox,a.jpg\nfox\n", r"sets\.csv, line 3: 1 fields"),
    ("set_id,image\nfox,a.jpg\n,b.jpg\n", r"line 3: both set_id and image"),
    ("set_id,image\nfox,a.jpg\nfox,zebra.jpg\n", r"line 3: unknown image 'zebra.jpg'"),
    ("set_id,image\nfox,a.jpg\nfox,a.jpg\n", r"line 3: image 'a.jpg' is already in set 'fox'"),
    ("name,file\nfox,a.jpg\n", r"line 1: the header must name the columns set_id,image"),
    ("set_id,image\nbig,a.jpg\nbig,b.jpg\nbig,c.jpg\n",
     r"set 'big' has 3 images \(lines 2, 3, 4\), more than max_per_set=2"),
    ("set_id,image\nx,a.jpg\ny,a.jpg\n", r"sets 'x' and 'y' hold the same images"),
])
def test_manifest_errors_name_file_and_line(tmp_path, text, message):
    images = [row(str(tmp_path), f"{n}.jpg", i) for i, n in enumerate("abc")]
    with pytest.raises(ConfigError, match=message):
        manifest_sets(write_manifest(tmp_path, text), images, max_per_set=2)


def test_missing_manifest(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        manifest_sets(str(tmp_path / "nope.csv"), [])


def taken(seconds: int) -> Image.Exif:
    e = Image.Exif()
    e.get_ifd(ExifTags.IFD.Exif)[36867] = (T0 + timedelta(seconds=seconds)).strftime("%Y:%m:%d %H:%M:%S")
    return e


def test_bursts_from_probed_files(tmp_path):
    for cam in ("cam1", "cam2"):
        (tmp_path / cam).mkdir()
        for i, seconds in enumerate([0, 1, 2, 300, 301]):
            Image.new("RGB", (16, 12), (i * 40, 0, 0) if cam == "cam1" else (0, i * 40, 0)).save(
                tmp_path / cam / f"IMG_{i}.JPG", exif=taken(seconds))
    probed = [{"uri": str(p), **probe_image(str(p), LocalStorage())} for p in sorted(tmp_path.glob("*/*.JPG"))]
    sets = burst_sets(probed, gap_s=10, max_per_set=2)
    assert [(s["folder"].rsplit("/", 1)[1], len(s["members"])) for s in sets] == [
        ("cam1", 2), ("cam1", 1), ("cam1", 2), ("cam2", 2), ("cam2", 1), ("cam2", 2)]


@pytest.mark.s3
def test_manifest_on_s3(s3_endpoint, s3_bucket):
    storage = storage_for(f"s3://{s3_bucket}", StorageSettings(endpoint_url=s3_endpoint))
    storage.write_atomic(f"s3://{s3_bucket}/site/sets.csv", b"\xef\xbb\xbfset_id,image\nfox,cam1/a.jpg\n")
    images = [row(f"s3://{s3_bucket}/site/cam1", "a.jpg", 0)]
    sets = manifest_sets(f"s3://{s3_bucket}/site/sets.csv", images, storage=storage)
    assert sets[0]["uris"] == [f"s3://{s3_bucket}/site/cam1/a.jpg"]
    assert sets[0]["folder"] == f"s3://{s3_bucket}/site/cam1"
