"""`vidlake index` from the command line (the `serve` command is exercised through its deployment)."""

from serve.lake_rows import seed_lake
from vidlake.cli import main
from vidlake.platform.lake import Lake
from vidlake.serve.store import IndexStore


def test_index_command(tmp_path, capsys, search_clips):
    lake = tmp_path / "lake"
    seed_lake(Lake(str(lake)), search_clips)
    assert main(["index", "--lake", str(lake)]) == 0
    out = capsys.readouterr().out
    assert "texts embedded" in out and "build (no index yet)" in out
    assert IndexStore(str(lake / "_search")).read_meta().rows["segments"] == 15
    assert main(["index", "--lake", str(lake)]) == 0
    assert "unchanged" in capsys.readouterr().out


def test_index_command_without_a_lake(tmp_path, capsys):
    assert main(["index", "--lake", str(tmp_path / "nothing")]) == 2
    assert "no lake at" in capsys.readouterr().err


def test_serve_command_help(capsys):
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--port" in out and "--route-prefix" in out
