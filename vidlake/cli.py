"""The ``vidlake`` command: parses settings once and calls jobs / tools.

Fatal errors print one line (``error: ...``) and exit 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import click
import typer

from vidlake.errors import VidlakeError
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
def demo(
    lake: LakeOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run the main job on the bundled sample videos (local Ray, local lake, offline)."""
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
def show(
    video_id: Annotated[str, typer.Argument(help="Video id (sha256), or its first 6+ characters.")],
    lake: LakeOpt = None,
    config: ConfigOpt = None,
    s3_endpoint: EndpointOpt = None,
    t_from: Annotated[Optional[float], typer.Option("--from", help="Start of the time range (s).")] = None,
    t_to: Annotated[Optional[float], typer.Option("--to", help="End of the time range (s).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print one video's metadata and its timeline: captions, answers, points, tracks in time order."""
    from vidlake.cli_views import print_timeline

    settings = settings_from(config, lake, s3_endpoint)
    print_timeline(settings, video_id, t_from, t_to, as_json)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: one-line errors, exit codes 0 (ok), 1 (job failed), 2 (usage/fatal)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        app(args=argv, prog_name="vidlake", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
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
