import os
import subprocess
import sys

import pytest

from tiny_model import tiny_settings  # noqa: F401 - fixture
from vidlake.cli import main

VIDLAKE = [sys.executable, "-m", "vidlake.cli"]


def run(*args, timeout: float = 120, **kw):
    return subprocess.run([*VIDLAKE, *args], capture_output=True, text=True, timeout=timeout, **kw)


def test_help_lists_commands():
    out = run("--help")
    assert out.returncode == 0
    assert "ingest" in out.stdout
    sub = run("ingest", "--help")
    assert sub.returncode == 0 and "--lake" in sub.stdout


def test_fatal_error_is_one_line_without_traceback(tmp_path):
    out = run("ingest", str(tmp_path / "missing"), "--lake", str(tmp_path / "lake"))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"error: source {tmp_path / 'missing'} does not exist"]
    debug = run("--debug", "ingest", str(tmp_path / "missing"), "--lake", str(tmp_path / "lake"))
    assert "Traceback" in debug.stderr


def test_usage_errors_show_the_usage_not_an_unexpected_error(tmp_path, capsys):
    assert main(["caption", str(tmp_path), "--no-such-option"]) == 2
    err = capsys.readouterr().err
    assert "No such option: --no-such-option" in err and "Usage: vidlake caption" in err and "unexpected" not in err
    assert main(["model", "train-toy", str(tmp_path / "out"), "--tasks", "juggling"]) == 2  # raised by the command
    err = capsys.readouterr().err
    assert "tasks must be some of caption, count, point, track" in err and "unexpected" not in err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_bad_config_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lake: {nope: 1}\n")
    out = run("ingest", str(tmp_path), "--config", str(cfg))
    assert out.returncode == 2 and "invalid settings" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.ray
def test_ingest_command_prints_summary(ray_session, media_dir, tmp_path, capsys):
    assert main(["ingest", str(media_dir), "--lake", str(tmp_path / "lake")]) == 0
    out = capsys.readouterr().out
    assert "files found" in out and "new videos" in out and "failed" in out
    assert main(["ingest", str(media_dir / "bad"), "--lake", str(tmp_path / "lake2")]) == 1
    assert "no readable video" in capsys.readouterr().err


def test_validate_a_job_spec_and_its_one_line_errors(tmp_path, capsys):
    spec = tmp_path / "job.yaml"
    spec.write_text("sources: [a]\ntasks: [{task: count, queries: [cars]}]\n"
                    "model: {templates: [{name: cars, version: 2, task: caption, text: Describe.}]}\n")
    assert main(["validate", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "1 task run(s)" in out and "count    count@1" in out  # a numeric template version is fine
    spec.write_text("sources: [a]\nsources: [b]\ntasks: [{task: caption}]\n")
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: job spec {spec} is not valid YAML: found the key 'sources' twice (line 2, column 1)"]
    spec.write_text("sources: [a]\ntasks: [{task: caption}]\nmodel: {templates: [{name: x, version: 2, task: qa}]}\n")
    assert main(["validate", str(spec)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "invalid prompt template" in line and "text: Field required" in line


@pytest.mark.ray
def test_caption_run_then_first_index_print_progress_and_no_library_noise(tiny_settings, tmp_path):
    """A caption run prints its progress lines and summary, and none of the lines Ray prints on every run
    with an actor pool (the spurious "constructor arguments in the object store" error, a list column
    it cannot convert); the first `vidlake index` prints no LanceDB warnings."""
    from media import make_video

    src = tmp_path / "src"
    src.mkdir()
    make_video(src / "a.mp4", seconds=4, fps=8, size=(48, 32))
    lake = tmp_path / "lake"
    # its own local Ray: the session's may be held by a search service's replicas, leaving the job's decode
    # tasks no CPU
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["VIDLAKE_MODEL__TINY_DIR"] = tiny_settings.tiny_dir
    out = run("caption", str(src), "--lake", str(lake), "--model", "tiny", "--max-frames", "4", env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "windows ok" in out.stdout
    lines = out.stderr.splitlines()
    assert any(line.startswith("windows: ") and "/" in line for line in lines), out.stderr
    noise = [line for line in lines if not line.startswith(("probing: ", "windows: "))]
    assert noise == [], out.stderr
    index = run("index", "--lake", str(lake), timeout=600)
    assert index.returncode == 0 and "texts embedded" in index.stdout, index.stderr
    assert "WARN" not in index.stderr and "lance" not in index.stderr, index.stderr
