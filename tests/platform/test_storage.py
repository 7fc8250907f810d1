import io
import pickle

import boto3
import pytest

from vidlake.platform.config import StorageSettings
from vidlake.platform.storage import LocalStorage, S3Storage, storage_for


def _fill(root):
    (root / "a").mkdir()
    (root / "a" / "x y é.bin").write_bytes(b"0123456789")
    (root / "top.bin").write_bytes(b"abc")


def test_local_list_stat_read(tmp_path):
    _fill(tmp_path)
    st = LocalStorage()
    infos = list(st.list(str(tmp_path)))
    assert sorted(i.uri.removeprefix(str(tmp_path)) for i in infos) == ["/a/x y é.bin", "/top.bin"]
    assert [i.uri for i in st.list(str(tmp_path), recursive=False)] == [str(tmp_path / "top.bin")]
    uri = str(tmp_path / "a" / "x y é.bin")
    assert st.stat(uri).size == 10
    assert st.read_range(uri, 3, 4) == b"3456"
    with st.open(uri) as f:
        f.seek(8)
        assert f.read() == b"89"
    with pytest.raises(FileNotFoundError):
        list(st.list(str(tmp_path / "nope")))


def test_local_write_atomic(tmp_path):
    st = LocalStorage()
    target = tmp_path / "deep" / "file.json"
    st.write_atomic(str(target), b"one")
    st.write_atomic(str(target), b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]  # no temp files left


@pytest.mark.s3
def test_s3_roundtrip(s3_endpoint, s3_bucket):
    st = storage_for(f"s3://{s3_bucket}/p", StorageSettings(endpoint_url=s3_endpoint))
    assert isinstance(st, S3Storage)
    data = bytes(range(256)) * 1000
    st.write_atomic(f"s3://{s3_bucket}/p/dir/x y é.bin", data)
    st.write_atomic(f"s3://{s3_bucket}/p/top.bin", b"abc")
    st.write_atomic(f"s3://{s3_bucket}/other/z.bin", b"z")
    uris = sorted(i.uri for i in st.list(f"s3://{s3_bucket}/p"))
    assert uris == [f"s3://{s3_bucket}/p/dir/x y é.bin", f"s3://{s3_bucket}/p/top.bin"]
    assert [i.uri for i in st.list(f"s3://{s3_bucket}/p/", recursive=False)] == [f"s3://{s3_bucket}/p/top.bin"]
    uri = f"s3://{s3_bucket}/p/dir/x y é.bin"
    assert st.stat(uri).size == len(data)
    assert st.read_range(uri, 1000, 10) == data[1000:1010]
    assert st.read_range(uri, len(data) - 3, 100) == data[-3:]
    with st.open(uri) as f:
        f.seek(-5, io.SEEK_END)
        assert f.read() == data[-5:]
        f.seek(7)
        assert f.read(3) == data[7:10]
    with pytest.raises(FileNotFoundError):
        st.stat(f"s3://{s3_bucket}/p/missing")
    with pytest.raises(FileNotFoundError):
        list(st.list(f"s3://{s3_bucket}/nothing-here"))
    clone = pickle.loads(pickle.dumps(st))  # travels to Ray workers; client rebuilt there
    assert clone.read_range(uri, 0, 2) == data[:2]


def test_unsupported_scheme():
    with pytest.raises(ValueError, match="unsupported URI scheme"):
        storage_for("gs://bucket/x")
