import os
import subprocess
import sys

import pytest

from vidlake.cli import main

VIDLAKE = [sys.executable, "-m", "vidlake.cli"]


def run(*args, **kw):
    return subprocess.run([*VIDLAKE, *args], capture_output=True, text=True, timeout=120, **kw)


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
