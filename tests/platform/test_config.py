import pytest

from vidlake.errors import ConfigError
from vidlake.platform.config import load_settings


def test_defaults():
    s = load_settings()
    assert s.lake.uri == "./lake"
    assert ".mp4" in s.ingest.extensions


def test_precedence_flags_over_env_over_yaml(tmp_path, monkeypatch):
    cfg = tmp_path / "vidlake.yaml"
    cfg.write_text("lake:\n  uri: /from/yaml\nstorage:\n  endpoint_url: http://yaml:9000\n  region: eu-west-1\n")
    assert load_settings(cfg).lake.uri == "/from/yaml"
    monkeypatch.setenv("VIDLAKE_LAKE__URI", "/from/env")
    monkeypatch.setenv("VIDLAKE_STORAGE__ENDPOINT_URL", "http://env:9000")
    s = load_settings(cfg)
    assert (s.lake.uri, s.storage.endpoint_url, s.storage.region) == ("/from/env", "http://env:9000", "eu-west-1")
    s = load_settings(cfg, lake={"uri": "/from/flag"}, storage={"endpoint_url": None})
    assert s.lake.uri == "/from/flag"
    assert s.storage.endpoint_url == "http://env:9000"  # an unset flag does not hide the env


def test_bad_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("lake:\n  urii: x\n")
    with pytest.raises(ConfigError, match="urii"):
        load_settings(cfg)


def test_extensions_normalised():
    s = load_settings(ingest={"extensions": ["MP4", ".MoV"]})
    assert s.ingest.extensions == (".mp4", ".mov")
