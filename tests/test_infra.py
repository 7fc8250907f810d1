from pathlib import Path

import yaml

INFRA = Path(__file__).parent.parent / "infra"


def test_manifests_parse_and_pin_the_ray_version():
    manifests = sorted((INFRA / "k8s").glob("*.yaml"))
    assert manifests
    for path in manifests:
        doc = yaml.safe_load(path.read_text())
        assert doc["apiVersion"] == "ray.io/v1", path
        spec = doc["spec"].get("rayClusterSpec", doc["spec"])
        assert spec["rayVersion"] == "2.60.0", path
    assert "ray:2.60.0" in (INFRA / "Dockerfile").read_text()
