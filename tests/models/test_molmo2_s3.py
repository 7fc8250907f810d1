"""Model folders on S3: pinned by content on the driver, copied once per node into model.cache_dir, checked there."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import boto3
import pytest
from tiny_model import tiny_ref, tiny_settings  # noqa: F401 - fixtures

from vidlake.errors import ModelLoadError
from vidlake.models import checkpoints, molmo2
from vidlake.models.molmo2 import load_model, load_processor, on_this_node, resolve_model
from vidlake.platform.config import ModelSettings, StorageSettings


def _upload(folder: str | Path, endpoint: str, bucket: str, prefix: str) -> str:
    s3 = boto3.client("s3", endpoint_url=endpoint)
    for f in Path(folder).iterdir():
        if f.is_file():
            s3.upload_file(str(f), bucket, f"{prefix}/{f.name}")
    return f"s3://{bucket}/{prefix}"


@pytest.fixture
def on_s3(tiny_ref, s3_endpoint, s3_bucket, tmp_path):  # noqa: F811
    uri = _upload(tiny_ref.source, s3_endpoint, s3_bucket, "models/tiny-molmo2")
    settings = ModelSettings(name=uri + "/", cache_dir=str(tmp_path / "cache"), local_files_only=True)
    molmo2._checked_here.clear()  # a fresh worker process, as far as the once-per-process check goes
    yield uri, settings, StorageSettings(endpoint_url=s3_endpoint)
    molmo2._checked_here.clear()


def _copies(settings: ModelSettings) -> list[Path]:
    return sorted(p.parent for p in Path(settings.cache_dir).rglob(checkpoints.COPIED))


def test_s3_folder_has_the_same_revision_as_its_bytes_on_disk(on_s3, tiny_ref):  # noqa: F811
    uri, settings, storage = on_s3
    ref = resolve_model(settings, storage)
    assert (ref.model_id, ref.source, ref.revision) == (uri, uri, tiny_ref.revision) and ref.is_local
    assert not Path(settings.cache_dir).exists()  # resolving reads S3 (config and two ranges per weight file)


def test_the_driver_copies_the_small_files_and_a_worker_the_whole_folder_once(on_s3, capsys):
    uri, settings, storage = on_s3
    ref = resolve_model(settings, storage)
    load_processor(ref, settings)  # the driver's prompt-length check: config and processor, no weights
    (light,) = _copies(settings)
    assert light.name.endswith(".config") and not list(light.glob("*.safetensors"))

    on_this_node(ref, settings)  # a worker: the whole folder, checked against the driver's revision
    assert "copied to" in capsys.readouterr().out
    full = next(p for p in _copies(settings) if not p.name.endswith(".config"))
    assert full.name == f"tiny-molmo2@{ref.revision}" and list(full.glob("*.safetensors"))
    assert checkpoints.folder_revision(full) == ref.revision
    model = load_model(ref, settings)  # loads the node's copy
    assert model.config.model_type == "molmo2"

    molmo2._checked_here.clear()  # another process on the same node: the copy is reused, not made again
    stamp = (full / checkpoints.COPIED).stat().st_mtime_ns
    on_this_node(ref, settings)
    assert "copied to" not in capsys.readouterr().out and (full / checkpoints.COPIED).stat().st_mtime_ns == stamp


def test_a_damaged_copy_is_made_again(on_s3, capsys):
    uri, settings, storage = on_s3
    ref = resolve_model(settings, storage)
    on_this_node(ref, settings)
    full = next(p for p in _copies(settings) if not p.name.endswith(".config"))
    config = json.loads((full / "config.json").read_text())
    (full / "config.json").write_text(json.dumps({**config, "edited": True}))
    capsys.readouterr()
    molmo2._checked_here.clear()
    on_this_node(ref, settings)
    assert "copied to" in capsys.readouterr().out and checkpoints.folder_revision(full) == ref.revision


def test_a_folder_replaced_on_s3_after_the_driver_resolved_it_fails_by_name(on_s3, s3_endpoint, tmp_path):
    uri, settings, storage = on_s3
    ref = resolve_model(settings, storage)
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    config = json.loads(s3.get_object(Bucket=bucket, Key=f"{key}/config.json")["Body"].read())
    s3.put_object(Bucket=bucket, Key=f"{key}/config.json", Body=json.dumps({**config, "edited": True}).encode())
    with pytest.raises(ModelLoadError, match="changed on S3 after the job started"):
        on_this_node(ref, settings)
    assert not _copies(settings) and not list(Path(settings.cache_dir).rglob("*.part-*"))  # no half copy left


def _copy_in_process(ref, settings) -> None:
    on_this_node(ref, settings)


def test_two_processes_of_one_node_copy_it_once(on_s3, capfd):
    uri, settings, storage = on_s3
    ref = resolve_model(settings, storage)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_copy_in_process, args=(ref, settings)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert capfd.readouterr().out.count("copied to") == 1
    assert len(_copies(settings)) == 1


@pytest.mark.parametrize("case, match", [
    ("missing", "no model folder at"),
    ("no-config", "has no config.json"),
    ("not-molmo", "not Molmo 2"),
    ("no-weights", "holds no weight files"),
])
def test_bad_s3_model_folders_fail_on_the_driver_with_the_reason(case, match, tiny_ref, s3_endpoint, s3_bucket,  # noqa: F811
                                                                 tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for f in Path(tiny_ref.source).iterdir():
        if f.is_file() and not (case == "no-config" and f.name == "config.json") \
                and not (case == "no-weights" and f.suffix == ".safetensors"):
            (folder / f.name).write_bytes(f.read_bytes())
    if case == "not-molmo":
        (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    uri = _upload(folder, s3_endpoint, s3_bucket, "m") if case != "missing" else f"s3://{s3_bucket}/nothing"
    with pytest.raises(ModelLoadError, match=match):
        resolve_model(ModelSettings(name=uri), StorageSettings(endpoint_url=s3_endpoint))
