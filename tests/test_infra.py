"""infra/: the image and the KubeRay manifests, checked offline.

RayCluster, RayJob and RayService documents are validated against KubeRay v1.7.0's CRD schemas (from
``../shared/kuberay/`` beside the repository, or the folder in ``$VIDLAKE_KUBERAY_CRDS``) as the API server
treats them: the schema's defaults are applied first, and a field the schema does not list is an error,
since the server would drop it without a word. Other kinds (CronJob, RBAC, ConfigMap, PVC, Job) have no
schema here and get hand checks. The Dockerfile's Python, Ray, CUDA and torch must agree with
pyproject.toml and infra/constraints.txt.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[1]
INFRA, K8S = ROOT / "infra", ROOT / "infra" / "k8s"
CRD_DIR = Path(os.environ.get("VIDLAKE_KUBERAY_CRDS") or Path(__file__).resolve().parents[2] / "shared" / "kuberay")
CRD_FILES = {"RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml",
             "RayService": "ray.io_rayservices.yaml"}
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REQUIRES = {canonicalize_name(r.name): r for r in map(Requirement, PROJECT["dependencies"])}
USER_SECRETS = {"vidlake-s3", "vidlake-ray-token", "vidlake-api", "vidlake-hf", "vidlake-webhooks"}  # created by hand (docs/cluster.md)


def _documents() -> list[tuple[str, dict]]:
    """(file#index, document) of every Kubernetes object under infra/k8s (kustomization and job specs aside)."""
    out = []
    for path in sorted(K8S.rglob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc and "kind" in doc and doc["kind"] != "Kustomization":
                out.append((f"{path.relative_to(K8S)}#{i}", doc))
    return out


DOCS = _documents()
RAY_DOCS = [(where, doc) for where, doc in DOCS if doc["kind"] in CRD_FILES]


def _ray_cluster_spec(doc: dict) -> dict:
    """The RayCluster spec inside a RayCluster, RayJob or RayService."""
    key = {"RayCluster": None, "RayJob": "rayClusterSpec", "RayService": "rayClusterConfig"}[doc["kind"]]
    return doc["spec"][key] if key else doc["spec"]


def _pod_specs(cluster: dict) -> list[tuple[str, dict]]:
    groups = [("head", cluster["headGroupSpec"])] + [(g["groupName"], g) for g in cluster.get("workerGroupSpecs", [])]
    return [(name, g["template"]["spec"]) for name, g in groups]


# --- the API server's view of a CRD schema ---------------------------------------------------------------

OBJECT_META = {"type": "object", "additionalProperties": False, "properties": {
    "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
    "generateName": {"type": "string", "pattern": r"^[a-z0-9][-a-z0-9]*-$"},
    "namespace": {"type": "string"},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
}}


def strict(node: dict) -> dict:
    """A copy of an OpenAPI v3 schema node in which unknown fields are errors, as pruning would drop them:
    an object schema without additionalProperties or x-kubernetes-preserve-unknown-fields accepts only
    the properties it lists (none, if it lists none). ``nullable`` becomes a null type."""
    node = dict(node)
    keeps_unknown = node.get("x-kubernetes-preserve-unknown-fields") is True
    if "properties" in node:
        node["properties"] = {k: strict(v) for k, v in node["properties"].items()}
    if node.get("type") == "object" and "additionalProperties" not in node and not keeps_unknown:
        node["additionalProperties"] = False
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = strict(node["additionalProperties"])
    if isinstance(node.get("items"), dict):
        node["items"] = strict(node["items"])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in node:
            node[key] = [strict(n) for n in node[key]]
    if node.get("nullable") and "type" in node:
        node["type"] = [node["type"], "null"]
    return node


def apply_defaults(schema: dict, value):
    """Fill in the schema's ``default`` values where a field is absent, recursively (the API server's defaulting)."""
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key, sub in props.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                apply_defaults(sub, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(schema["items"], item)
    return value


def _cel(validator, rules, instance, schema):
    # CEL rules (x-kubernetes-validations) need an API server; no manifest here sets a field that has them
    yield jsonschema.ValidationError(f"sets a field with CEL rules this test cannot evaluate: "
                                     f"{[r.get('message', r['rule']) for r in rules]}")


def _list_type(validator, kind, instance, schema):
    """x-kubernetes-list-type: map items must differ in their keys, set items must differ."""
    if not isinstance(instance, list) or kind not in ("map", "set"):
        return
    keys = schema.get("x-kubernetes-list-map-keys", [])
    seen = [tuple(item.get(k) for k in keys) if kind == "map" else repr(item) for item in instance]
    if len(seen) != len(set(seen)):
        yield jsonschema.ValidationError(f"duplicate items in a list of type {kind} {keys or ''}")


Validator = jsonschema.validators.extend(
    jsonschema.Draft7Validator, {"x-kubernetes-validations": _cel, "x-kubernetes-list-type": _list_type})


@pytest.fixture(scope="module")
def crds() -> dict[str, tuple[dict, object]]:
    """kind -> (the v1 schema as served, a validator of the strict schema)."""
    if not CRD_DIR.is_dir():
        pytest.skip(f"KubeRay CRD schemas not found at {CRD_DIR} (../shared/kuberay beside the repository; "
                    "point VIDLAKE_KUBERAY_CRDS at a folder holding ray.io_{rayclusters,rayjobs,rayservices}.yaml)")
    out = {}
    for kind, name in CRD_FILES.items():
        crd = yaml.load((CRD_DIR / name).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]
        checked = strict(schema)
        checked["properties"]["metadata"] = OBJECT_META  # ObjectMeta: checked by the API server itself
        out[kind] = (schema, Validator(checked))
    return out


def check(crds, doc: dict) -> tuple[dict, list[str]]:
    """``doc`` after defaulting, and each problem as 'path: message'."""
    schema, validator = crds[doc["kind"]]
    doc = apply_defaults(schema, copy.deepcopy(doc))
    errors = [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(doc)]
    return doc, errors


@pytest.mark.parametrize("where, doc", RAY_DOCS, ids=[w for w, _ in RAY_DOCS])
def test_kuberay_manifests_match_the_crds(crds, where, doc):
    assert doc["apiVersion"] == "ray.io/v1"
    defaulted, errors = check(crds, doc)
    assert not errors, f"{where}:\n" + "\n".join(errors)
    if doc["kind"] == "RayJob":  # the docs' `kubectl logs job/<name>` relies on the default submitter
        assert defaulted["spec"]["submissionMode"] == "K8sJobMode"


def test_the_check_rejects_what_the_api_server_would_drop_or_refuse(crds):
    doc = copy.deepcopy(next(d for _, d in RAY_DOCS if d["kind"] == "RayCluster"))
    gpu = doc["spec"]["workerGroupSpecs"][-1]
    gpu["template"]["spec"]["tolerration"] = []  # misspelled: pruned by the server, silently
    doc["spec"]["enableInTreeAutoScaling"] = True  # wrong case: a different, unknown field
    doc["spec"]["headGroupSpec"]["rayStartParams"]["num-gpus"] = 0  # rayStartParams are strings
    doc["spec"]["managedBy"] = "someone"  # guarded by CEL rules
    del gpu["minReplicas"]
    defaulted, errors = check(crds, doc)
    text = "\n".join(errors)
    assert "'tolerration' was unexpected" in text and "'enableInTreeAutoScaling' was unexpected" in text
    assert "headGroupSpec.rayStartParams.num-gpus: 0 is not of type 'string'" in text
    assert "spec.managedBy: sets a field with CEL rules" in text
    assert len(errors) == 4, text
    assert defaulted["spec"]["workerGroupSpecs"][-1]["minReplicas"] == 0  # the schema's default
    env = gpu["template"]["spec"]["containers"][0].setdefault("env", [])
    env += [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]  # env is a list map keyed by name
    assert any("duplicate items" in e for e in check(crds, doc)[1])
    job = copy.deepcopy(next(d for _, d in RAY_DOCS if d["kind"] == "RayJob"))  # deep inside a RayJob too
    job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["volumeMounts"][0][
        "mountpath"] = "/dev/shm"
    assert [e for e in check(crds, job)[1] if "'mountpath' was unexpected" in e]


# --- what every vidlake Ray cluster has ------------------------------------------------------------------

def test_ray_clusters_follow_the_design():
    ray_pin = REQUIRES["ray"].specifier
    runs_models = {"RayCluster", "RayJob"}  # the search service needs no Molmo 2 weights
    images = set()
    for where, doc in RAY_DOCS:
        cluster = _ray_cluster_spec(doc)
        assert cluster["rayVersion"] in ray_pin, where
        assert cluster["enableInTreeAutoscaling"] is True and "autoscalerOptions" in cluster, where
        assert cluster["authOptions"]["mode"] == "token", where
        assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0", where
        for group, pod in _pod_specs(cluster):
            at = f"{where} {group}"
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            for c in pod["containers"]:
                images.add(c["image"])
                assert c["image"].endswith(f":{PROJECT['version']}-ray{cluster['rayVersion']}"), at
                assert {"secretRef": {"name": "vidlake-s3"}} in c.get("envFrom", []), at
                mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
                assert volumes[mounts["/dev/shm"]]["emptyDir"] == {"medium": "Memory"}, at
                if doc["kind"] in runs_models:
                    assert volumes[mounts["/models"]]["persistentVolumeClaim"]["claimName"] == "vidlake-models", at
                gpus = c["resources"].get("limits", {}).get("nvidia.com/gpu")
                if gpus:
                    assert c["resources"]["requests"]["nvidia.com/gpu"] == gpus, at
                    assert pod["nodeSelector"], at
                    assert any(t["key"] == "nvidia.com/gpu" and t["effect"] == "NoSchedule"
                               for t in pod["tolerations"]), at
        if doc["kind"] in runs_models:
            assert any("nvidia.com/gpu" in c["resources"].get("limits", {})
                       for _, pod in _pod_specs(cluster) for c in pod["containers"]), f"{where}: no GPU group"
    assert len(images) == 1, images
    claims = {d["metadata"]["name"] for _, d in DOCS if d["kind"] == "PersistentVolumeClaim"}
    assert "vidlake-models" in claims


def test_referenced_configmaps_exist_and_secrets_are_documented():
    kustomization = yaml.safe_load((K8S / "schedule" / "kustomization.yaml").read_text())
    configmaps = {d["metadata"]["name"] for _, d in DOCS if d["kind"] == "ConfigMap"}
    configmaps |= {g["name"] for g in kustomization["configMapGenerator"]}
    secrets, maps = set(), set()

    def walk(node):
        if isinstance(node, dict):
            if "secretRef" in node or "secretKeyRef" in node:
                secrets.add((node.get("secretRef") or node["secretKeyRef"])["name"])
            if isinstance(node.get("configMap"), dict):
                maps.add(node["configMap"]["name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for _, doc in DOCS:
        walk(doc)
        if doc["kind"] in CRD_FILES and "secretName" in _ray_cluster_spec(doc).get("authOptions", {}):
            secrets.add(_ray_cluster_spec(doc)["authOptions"]["secretName"])
    assert maps <= configmaps, maps - configmaps
    assert secrets <= USER_SECRETS, secrets - USER_SECRETS
    guide = (ROOT / "docs" / "cluster.md").read_text()
    for name in secrets:
        assert f"kubectl create secret generic {name}" in guide, name


# --- RayJob, CronJob, RayService -------------------------------------------------------------------------

def _job_spec_text(where: str, volume: dict) -> str:
    """The job spec in the ConfigMap that ``volume`` mounts."""
    name = volume["configMap"]["name"]
    for _, other in DOCS:
        if other["kind"] == "ConfigMap" and other["metadata"]["name"] == name:
            return other["data"]["job.yaml"]
    assert where.startswith("schedule/") and name == "vidlake-nightly", where  # generated by kustomize
    return (K8S / "schedule" / "job.yaml").read_text()


@pytest.mark.parametrize("where, doc", [(w, d) for w, d in RAY_DOCS if d["kind"] == "RayJob"],
                         ids=[w for w, d in RAY_DOCS if d["kind"] == "RayJob"])
def test_rayjobs_run_a_valid_spec_and_free_their_cluster(where, doc):
    from typer.main import get_command

    from vidlake.cli import app
    from vidlake.jobs.spec import parse_job_spec

    spec = doc["spec"]
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0
    # the entrypoint is a shell line: `vidlake run SPEC` (or `vidlake schedule once SPEC`), maybe followed by
    # `&& vidlake ...`; each one parses
    commands = [shlex.split(part) for part in spec["entrypoint"].split("&&")]
    cli = get_command(app)
    for command in commands:
        assert command[0] == "vidlake", spec["entrypoint"]
        parent = cli.make_context("vidlake", command[1:])
        cli.get_command(parent, command[1]).make_context(command[1], command[2:], parent=parent)  # usage errors raise
    args = commands[0]
    assert args[:2] == ["vidlake", "run"] or args[:3] == ["vidlake", "schedule", "once"], spec["entrypoint"]
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]  # the driver runs on the head
    mounts = {m["mountPath"]: m["name"] for m in head["containers"][0]["volumeMounts"]}
    folder, name = os.path.split(args[2] if args[1] == "run" else args[3])
    volume = next(v for v in head["volumes"] if v["name"] == mounts[folder])
    job = parse_job_spec(yaml.safe_load(_job_spec_text(where, volume)), f"{where} {name}")
    assert any(job.model.name.startswith(m + "/") for m in mounts), "the model folder is not mounted on the head"
    for command in commands[1:]:  # what follows the run works on the run's lake
        assert command[command.index("--lake") + 1] == job.lake, command
    replicas = job.resources.replicas
    gpu_group = spec["rayClusterSpec"]["workerGroupSpecs"][-1]
    assert (replicas if isinstance(replicas, int) else replicas[1]) <= gpu_group["maxReplicas"]


def test_cronjob_creates_a_rayjob_at_a_time():
    docs = {d["kind"]: d for w, d in DOCS if w.startswith("schedule/cronjob.yaml")}
    cron = docs["CronJob"]
    assert cron["apiVersion"] == "batch/v1"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    fields = cron["spec"]["schedule"].split()
    assert len(fields) == 5 and all(re.fullmatch(r"[\d*/,\-]+", f) for f in fields), cron["spec"]["schedule"]
    job = cron["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure") and job["backoffLimit"] == 0
    # its pod may create and prune RayJobs, through the Role bound to its ServiceAccount
    assert pod["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]
    binding = docs["RoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": docs["Role"]["metadata"]["name"]}
    assert {"kind": "ServiceAccount", "name": pod["serviceAccountName"]} in binding["subjects"]
    rule = next(r for r in docs["Role"]["rules"] if "rayjobs" in r["resources"])
    assert rule["apiGroups"] == ["ray.io"] and {"create", "get", "list", "delete"} <= set(rule["verbs"])
    # the script creates the template from the generated ConfigMap, finds its RayJobs by their label, and
    # is valid sh
    script = pod["containers"][0]["args"][0]
    mount = pod["containers"][0]["volumeMounts"][0]
    assert next(v for v in pod["volumes"] if v["name"] == mount["name"])["configMap"]["name"] == "vidlake-nightly"
    assert f"kubectl create -f {mount['mountPath']}/rayjob-template.yaml" in script
    template = yaml.safe_load((K8S / "schedule" / "rayjob-template.yaml").read_text())
    assert "generateName" in template["metadata"] and "name" not in template["metadata"]  # a new name each night
    label = re.search(r"sel=(\S+)=(\S+)", script)
    assert template["metadata"]["labels"][label[1]] == label[2]
    kustomization = yaml.safe_load((K8S / "schedule" / "kustomization.yaml").read_text())
    assert kustomization["generatorOptions"]["disableNameSuffixHash"] is True
    generated = next(g for g in kustomization["configMapGenerator"] if g["name"] == "vidlake-nightly")
    assert set(generated["files"]) == {"rayjob-template.yaml", "job.yaml"}
    assert set(kustomization["resources"]) == {"cronjob.yaml"}
    if shutil.which("sh"):
        result = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
        assert result.returncode == 0, result.stderr


def test_rayservice_deploys_the_real_serve_app(monkeypatch):
    import importlib

    from ray.serve.deployment import Application
    from ray.serve.schema import ServeDeploySchema

    for key in [k for k in os.environ if k.startswith("VIDLAKE_")]:
        monkeypatch.delenv(key)
    (doc,) = [d for _, d in RAY_DOCS if d["kind"] == "RayService"]
    config = ServeDeploySchema.model_validate(yaml.safe_load(doc["spec"]["serveConfigV2"]))
    for application in config.applications:
        module, _, attr = application.import_path.partition(":")
        builder = getattr(importlib.import_module(module), attr)
        assert isinstance(builder(application.args), Application)
        assert "api_key" not in str(application.args), "the API key belongs in a Secret, not in the config"
    for group, pod in _pod_specs(doc["spec"]["rayClusterConfig"]):
        for c in pod["containers"]:
            key = next(e for e in c["env"] if e["name"] == "VIDLAKE_SERVE__API_KEY")
            assert key["valueFrom"]["secretKeyRef"] == {"name": "vidlake-api", "key": "api_key"}, group


# --- the image -------------------------------------------------------------------------------------------

def _constraints() -> dict[str, str]:
    lines = (INFRA / "constraints.txt").read_text().splitlines()
    pins = [line.split("==") for line in lines if line.strip() and not line.startswith("#")]
    return {canonicalize_name(name): version for name, version in pins}


def test_dockerfile_versions_agree_with_pyproject_and_constraints():
    text = (INFRA / "Dockerfile").read_text()
    base = re.search(r"^FROM rayproject/ray:(\d+\.\d+\.\d+)-py(\d)(\d+)-cu(\d+)(\d)$", text, re.M)
    assert base, "the base image must be rayproject/ray:<ray>-py<XY>-cu<XYZ>"
    ray, python, cuda = base[1], f"{base[2]}.{base[3]}", f"{base[4]}.{base[5]}"
    assert SpecifierSet(PROJECT["requires-python"]).contains(python), python
    assert ray in REQUIRES["ray"].specifier
    pins = _constraints()
    assert pins["ray"] == ray
    for name in ("torch", "torchvision"):
        assert pins[name] in REQUIRES[name].specifier, name
    runtime = next(v for k, v in pins.items() if k.startswith("nvidia-cuda-runtime"))  # pulled by the torch wheel
    torch_cuda = ".".join(runtime.split(".")[:2])
    assert torch_cuda == cuda, f"base image CUDA {cuda}, torch built for CUDA {torch_cuda}"
    for _, doc in RAY_DOCS:
        assert _ray_cluster_spec(doc)["rayVersion"] == ray
    # dependencies from the constraints file; every file the image's user's
    assert "pip install --no-cache-dir -r infra/constraints.txt" in text
    assert re.search(r"pip install [^\n]*-c infra/constraints\.txt \.", text)
    copies = re.findall(r"^COPY .*$", text, re.M)
    assert copies and all("--chown=ray:users" in c for c in copies), copies
    kept = (INFRA / "Dockerfile.dockerignore").read_text().splitlines()  # the build context lets them through
    for source in [s for c in copies for s in c.split()[2:-1]]:
        assert f"!{source}" in kept or f"!{source}/" in kept, source
    assert re.findall(r"^USER (\S+)", text, re.M)[-1] == "ray"


def test_constraints_pin_the_runtime_dependencies_within_pyproject():
    pins = _constraints()
    for name, requirement in REQUIRES.items():
        assert name in pins, f"{name} is a dependency but infra/constraints.txt does not pin it"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])
    assert "vidlake" not in pins
    assert not {"pytest", "hypothesis", "moto", "playwright"} & pins.keys(), "test tools are not runtime pins"
