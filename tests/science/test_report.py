"""vidlake report on the science lake: pages rendered in a real headless Chromium (Debian's /usr/bin/chromium
driven by Playwright) with every plot drawn and no request leaving the files, numbers equal to the lake's
tables, a report without a spec covering every video, and bad input failing before anything is written."""

from __future__ import annotations

import os
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest

from vidlake.errors import ConfigError
from vidlake.jobs.report import ReportResult, run_report
from vidlake.jobs.spec import load_job_spec
from vidlake.platform.config import StorageSettings, load_settings
from vidlake.platform.lake import Lake

CHROMIUM = os.environ.get("VIDLAKE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                    reason=f"{CHROMIUM} is missing: apt-get install -y chromium")

# what the spec's analyses show on the science lake: two deployments, lines and zones on pond-1 only
EXPECTED_PLOTS = {
    "hourly.html": {("counts_over_time", "marsh-1"), ("counts_over_time", "pond-1"), ("hour_of_day", None),
                    ("heatmap", "marsh-1"), ("heatmap", "pond-1")},
    "paths.html": {("trajectories", "marsh-1"), ("trajectories", "pond-1"), ("crossings", None), ("zones", None)},
}


@dataclass
class Reports:
    lake: Lake
    spec_out: Path
    spec_result: ReportResult
    lake_out: Path
    lake_result: ReportResult


@pytest.fixture(scope="module")
def reports(science_lake, tmp_path_factory) -> Reports:
    root = tmp_path_factory.mktemp("report")
    shutil.copytree(science_lake.lake, root / "lake")
    spec = load_job_spec(science_lake.spec).analysis_file()
    settings = load_settings()
    spec_result = run_report(str(root / "lake"), str(root / "spec-report"), settings, spec, show=False)
    lake_result = run_report(str(root / "lake"), str(root / "lake-report"), settings, None, show=False)
    return Reports(Lake(str(root / "lake")), root / "spec-report", spec_result, root / "lake-report", lake_result)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # a persistent context is how Playwright takes a fresh --user-data-dir of our own
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True, args=ARGS)
        yield context
        context.close()


def _open(browser, path: Path):
    """The page at ``path`` (file://) once every image is decoded; requests other than file: and data: are
    refused and listed in ``page.outside``."""
    page = browser.new_page()
    page.outside, page.errors = [], []

    def only_files(route):
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            page.outside.append(url)
            route.abort()

    page.route("**/*", only_files)
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    page.wait_for_function("[...document.images].every((i) => i.complete)")
    return page


def _plots(page) -> list[dict]:
    return page.evaluate("""[...document.querySelectorAll('figure.plot')].map((f) => {
        const img = f.querySelector('img');
        return {kind: f.dataset.plot, deployment: f.dataset.deployment || null, video: f.dataset.video || null,
                images: f.querySelectorAll('img').length, complete: img.complete,
                natural: [img.naturalWidth, img.naturalHeight], shown: img.getBoundingClientRect().width,
                size: [+img.getAttribute('width'), +img.getAttribute('height')],
                src: img.getAttribute('src').slice(0, 22)};
    })""")


class _Links(HTMLParser):
    """Every src and href of a page."""

    def __init__(self):
        super().__init__()
        self.src, self.href, self.scripts = [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.scripts += tag == "script"
        self.src += [attrs["src"]] if "src" in attrs else []
        self.href += [attrs["href"]] if "href" in attrs else []


@needs_chromium
def test_every_page_renders_in_chromium_with_every_plot_drawn_and_nothing_fetched(reports, browser):
    out, result = reports.spec_out, reports.spec_result
    assert result.pages == ["hourly.html", "paths.html", "index.html"]
    assert result.plots == {page: len(plots) for page, plots in EXPECTED_PLOTS.items()}
    for name, expected in EXPECTED_PLOTS.items():
        page = _open(browser, out / name)
        plots = _plots(page)
        assert {(p["kind"], p["deployment"]) for p in plots} == expected and len(plots) == len(expected)
        for plot in plots:  # an inline PNG, decoded by the browser at the size the page says
            assert plot["src"] == "data:image/png;base64,"
            assert plot["complete"] and plot["natural"][0] > 0 and plot["natural"] == plot["size"], plot
            assert plot["shown"] > 100, plot
        assert page.outside == [] and page.errors == []
        header = page.locator("dl.meta").inner_text()
        analysis = {"hourly.html": "hourly@1#", "paths.html": "paths@1#"}[name]
        assert analysis in header and "oracle:" in header and "truth-" in header and str(reports.lake.uri) in header
        page.close()

        links = _Links()
        links.feed((out / name).read_text())
        assert links.scripts == 0 and all(s.startswith("data:image/png;base64,") for s in links.src)
        assert all(":" not in h and (out / h).is_file() for h in links.href), links.href  # relative, and there

    index = _open(browser, out / "index.html")
    assert index.locator("ul.pages a").evaluate_all("(as) => as.map((a) => a.getAttribute('href'))") == \
        ["hourly.html", "paths.html"]
    index.locator("a[href='paths.html']").click()
    index.wait_for_selector("figure.plot[data-plot='zones']")
    assert index.outside == [] and index.errors == []
    index.close()

    runs = pl.from_arrow(reports.lake.read("runs")).filter(pl.col("run_id") == result.run_id)
    assert runs.select("job", "status").rows() == [("report", "completed")]
    assert '"hourly.html": 5' in runs["metrics_json"][0]


def beside(out: Path, name: str) -> pl.DataFrame:
    """The numbers written beside a page (its Parquet file)."""
    return pl.read_parquet(out / f"{name}.parquet")


def test_the_numbers_beside_the_pages_are_the_lake_tables(reports, science_lake):
    out, lake = reports.spec_out, reports.lake
    for table in reports.spec_result.tables:  # every CSV holds what its Parquet holds
        if table.endswith(".csv"):
            csv, parquet = pl.read_csv(out / table), pl.read_parquet(out / table.replace(".csv", ".parquet"))
            assert csv.columns == parquet.columns and csv.height == parquet.height, table
            numbers = [c for c, t in parquet.schema.items() if t.is_numeric()]
            assert csv.select(numbers).cast(pl.Float64).equals(parquet.select(numbers).cast(pl.Float64)), table

    counts = pl.from_arrow(lake.read("analysis_counts")).filter(pl.col("dated"))
    key = ["deployment_id", "query", "bin_start_utc"]
    columns = key + ["effort_min", "detections", "individuals", "max_n", "events"]
    shown = beside(out, "hourly/counts_over_time")
    assert shown.select(columns).sort(key).equals(counts.select(columns).sort(key))
    assert (shown["detections"] == 0).sum() == 3  # pond-1's circles: bins with footage and no detection
    csv = pl.read_csv(out / "hourly/counts_over_time.csv").sort("deployment_id", "query", "bin_start_utc")
    assert csv["detections"].to_list() == counts.sort(key)["detections"].to_list()

    per_hour: dict = defaultdict(lambda: [0, 0.0])
    for row in counts.to_dicts():
        per_hour[(row["query"], row["bin_start_local"].hour)][0] += row["detections"]
        per_hour[(row["query"], row["bin_start_local"].hour)][1] += row["effort_min"] / 60
    hours = beside(out, "hourly/hour_of_day")
    assert {(r["query"], r["hour"]): (r["detections"], pytest.approx(r["effort_h"])) for r in hours.to_dicts()} == \
        {k: (d, pytest.approx(e)) for k, (d, e) in per_hour.items()}
    assert hours.filter(pl.col("query") == "shapes")["hour"].to_list() == [6, 8, 9, 10]

    presence = pl.from_arrow(lake.read("analysis_presence")).select("deployment_id", "query", "present",
                                                                    "detections", "individuals")
    shown = beside(out, "hourly/presence").select(presence.columns)
    assert shown.sort("deployment_id", "query").equals(presence.sort("deployment_id", "query"))

    # the heatmap holds every point of the analysis' task keys, by deployment and query
    keys = set(counts["task_keys"].explode().to_list())
    deployment_of = dict(pl.from_arrow(lake.read("placements")).select("video_id", "deployment_id").rows())
    points = Counter((deployment_of[p["video_id"]], p["query"]) for p in lake.read("points").to_pylist()
                     if p["task_key"] in keys)
    cells = beside(out, "hourly/heatmap").group_by("deployment_id", "query").agg(pl.col("points").sum())
    assert dict(((r["deployment_id"], r["query"]), r["points"]) for r in cells.to_dicts()) == dict(points)

    crossings = Counter((r["line"], r["direction"]) for r in lake.read("analysis_crossings").to_pylist())
    per_line = beside(out, "paths/crossings").to_dicts()
    assert per_line == [{"deployment_id": "pond-1", "line": "middle", "in": crossings[("middle", "in")],
                         "out": crossings[("middle", "out")]}]
    assert crossings[("middle", "in")] > 0 and crossings[("middle", "out")] > 0

    visits = lake.read("analysis_zone_visits").to_pylist()
    zone = beside(out, "paths/zones").to_dicts()
    assert [(z["zone"], z["visits"], pytest.approx(z["dwell_s"])) for z in zone] == \
        [("right", len(visits), pytest.approx(sum(v["dwell_s"] for v in visits)))]

    stats = pl.from_arrow(lake.read("analysis_tracks"))
    track_key = ["video_id", "query", "object_id"]
    columns = track_key + ["samples", "path_length_norm"]
    shown = beside(out, "paths/track_statistics").select(columns)
    assert shown.sort(track_key).equals(stats.select(columns).sort(track_key))
    samples = beside(out, "paths/trajectories")
    assert samples.height == stats["samples"].sum()


@needs_chromium
def test_a_report_without_a_spec_covers_every_video(reports, browser):
    out, lake, result = reports.lake_out, reports.lake, reports.lake_result
    videos = set(lake.read("videos", columns=["video_id"])["video_id"].to_pylist())
    assert result.pages == ["counts.html", "videos.html", "index.html"]

    page = _open(browser, out / "videos.html")
    sections = page.evaluate("[...document.querySelectorAll('section[data-video]')].map((s) => s.dataset.video)")
    assert sorted(sections) == sorted(videos)
    plots = _plots(page)
    assert sorted((p["kind"], p["video"]) for p in plots) == sorted(
        (kind, v) for v in videos for kind in ("heatmap", "trajectories"))  # every video has points and tracks
    assert all(p["complete"] and p["natural"][0] > 0 for p in plots)
    assert page.outside == [] and page.errors == []
    assert "at " in page.locator("figcaption").first.inner_text()  # a decoded frame: "<file> at <t> s"
    page.close()

    per_video = beside(out, "counts/counts_per_video")
    assert set(per_video["video_id"].to_list()) == videos
    lake_counts = {(r["video_id"], r["query"]): r["count"] for r in lake.read("counts").to_pylist()}
    assert {(r["video_id"], r["query"]): r["count"] for r in per_video.to_dicts()} == lake_counts
    per_deployment = beside(out, "counts/counts_per_deployment")
    assert dict(((r["deployment_id"], r["query"]), r["count"]) for r in per_deployment.to_dicts()) == {
        ("marsh-1", "circles"): 2, ("marsh-1", "shapes"): 6, ("pond-1", "circles"): 0, ("pond-1", "shapes"): 3}
    assert result.plots == {"counts.html": 2, "videos.html": 6}


def test_a_video_that_cannot_be_read_still_gets_its_plots(science_lake, tmp_path):
    shutil.copytree(science_lake.lake, tmp_path / "lake")
    lake = Lake(str(tmp_path / "lake"))
    moved = lake.read("videos").to_pylist()[0]
    lake.upsert("videos", [{**moved, "uris": [str(tmp_path / "gone.mp4")]}], ["uris"])
    result = run_report(str(tmp_path / "lake"), str(tmp_path / "out"), load_settings(), None, show=False)
    assert result.plots["videos.html"] == 6
    assert f"no readable copy of video {moved['video_id'][:12]}" in (tmp_path / "out/videos.html").read_text()


def _runs(lake_dir: Path) -> int:
    return Lake(str(lake_dir)).read("runs").num_rows


def test_bad_input_fails_before_anything_is_written(science_lake, tmp_path):
    settings = load_settings()
    spec = load_job_spec(science_lake.spec).analysis_file()
    with pytest.raises(ConfigError, match=r"no model outputs .* run `vidlake run` first"):
        run_report(str(tmp_path / "nothing"), str(tmp_path / "out"), settings, spec, show=False)

    shutil.copytree(science_lake.lake, tmp_path / "lake")
    shutil.rmtree(tmp_path / "lake" / "outputs")
    runs = _runs(tmp_path / "lake")
    with pytest.raises(ConfigError, match=r"run `vidlake run` first"):
        run_report(str(tmp_path / "lake"), str(tmp_path / "out"), settings, None, show=False)
    assert _runs(tmp_path / "lake") == runs

    # an analysis changed since it last ran (a new version): its fingerprint has no results yet
    shutil.rmtree(tmp_path / "lake")
    shutil.copytree(science_lake.lake, tmp_path / "lake")
    changed = spec.model_copy(update={"analyses": [spec.analyses[0], spec.analyses[1].model_copy(
        update={"version": "2"})]})
    with pytest.raises(ConfigError, match=r"analysis 'paths' has no results .* run `vidlake analyze SPEC` first"):
        run_report(str(tmp_path / "lake"), str(tmp_path / "out"), settings, changed, show=False)
    # a lake the analyses never ran on
    shutil.rmtree(tmp_path / "lake" / "analysis_inputs")
    with pytest.raises(ConfigError, match=r"analysis 'hourly' has no results .* run `vidlake analyze SPEC` first"):
        run_report(str(tmp_path / "lake"), str(tmp_path / "out"), settings, spec, show=False)
    assert not (tmp_path / "out").exists() and _runs(tmp_path / "lake") == runs


@pytest.mark.s3
def test_a_report_on_s3_is_written_file_by_file(science_lake, tmp_path, s3_endpoint, s3_bucket):
    import boto3

    shutil.copytree(science_lake.lake, tmp_path / "lake")
    settings = load_settings(storage=StorageSettings(endpoint_url=s3_endpoint).model_dump())
    out = f"s3://{s3_bucket}/reports/science"
    result = run_report(str(tmp_path / "lake"), out, settings, None, show=False)
    listed = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket=s3_bucket, Prefix="reports/science/")
    keys = sorted(o["Key"].removeprefix("reports/science/") for o in listed["Contents"])
    assert keys == sorted(result.pages + result.tables) and "videos/heatmap.parquet" in keys
    index = boto3.client("s3", endpoint_url=s3_endpoint).get_object(Bucket=s3_bucket,
                                                                     Key="reports/science/index.html")
    assert b'href="videos.html"' in index["Body"].read()
