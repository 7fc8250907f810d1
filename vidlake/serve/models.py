"""Request and response models of the search API (they are also the OpenAPI schema at /docs)."""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "CountRow", "ErrorBody", "Evidence", "Health", "Hit", "IndexInfo", "Mode", "PointSample", "SearchResponse",
    "TaskSummary", "TimelineEvent", "TimelineResponse", "TrackEvidence", "VideoDetail", "VideoList", "VideoSummary",
]

VIDEO_ID = r"^[0-9a-f]{64}$"  # sha256 of the bytes
TASK_OR_KEY = r"^([a-z_]{1,32}|[0-9a-f]{16})$"  # a task name (caption, qa...) or a 16-hex task_key


class Mode(str, Enum):
    bm25 = "bm25"
    semantic = "semantic"
    hybrid = "hybrid"


class ErrorBody(BaseModel):
    error: str = Field(description="What went wrong, in one sentence.")
    detail: list[str] | None = Field(None, description="Each invalid parameter and why.")
    run: str | None = Field(None, description="The command that fixes it, where there is one.")


class IndexInfo(BaseModel):
    uri: str
    built_at: str
    embedding_model: str
    lake_versions: dict[str, int | None]
    rows: dict[str, int]
    stale: bool = Field(description="The lake changed since the index was built.")
    stale_reason: str | None = None


class PointSample(BaseModel):
    t: float
    x: float | None = None
    y: float | None = None
    x_norm: float | None = None
    y_norm: float | None = None
    label: str | None = None
    object_id: int | None = None
    task_key: str | None = None
    box: list[float] | None = Field(None, description="x0, y0, x1, y1 in pixels, when the output had boxes.")


class TrackEvidence(BaseModel):
    object_id: int | None
    label: str | None
    task_key: str
    t_first: float
    t_last: float
    samples: int
    boxes: list[PointSample]


class Evidence(BaseModel):
    points: list[PointSample]
    tracks: list[TrackEvidence]
    truncated: bool


class Hit(BaseModel):
    video_id: str
    uri: str | None
    start_s: float
    end_s: float
    text: str
    highlight: str = Field(description="text, HTML-escaped, with <mark> around the matched words.")
    spans: list[tuple[int, int]] = Field(description="Character spans of the matched words in text.")
    source: Literal["captions", "answers", "points", "tracks"]
    task: str
    task_key: str
    score: float = Field(description="bm25: BM25; semantic: cosine similarity; hybrid: reciprocal-rank fusion.")
    scores: dict[str, float] = Field(description="Each retriever's own score for this hit.")
    evidence: Evidence
    thumbnail_url: str
    timeline_url: str


class SearchResponse(BaseModel):
    query: str
    mode: Mode
    k: int
    took_ms: float
    hits: list[Hit]
    index: IndexInfo


class VideoSummary(BaseModel):
    video_id: str
    uri: str | None
    uris: list[str]
    duration_s: float | None
    fps: float | None
    frames: int | None
    width: int | None
    height: int | None
    rotation: int | None
    codec: str | None


class VideoList(BaseModel):
    total: int
    offset: int
    videos: list[VideoSummary]


class TaskSummary(BaseModel):
    task: str
    task_key: str
    captions: int = 0
    answers: int = 0
    points: int = 0
    tracks: int = 0
    labels: list[str] = []
    start_s: float | None = None
    end_s: float | None = None


class VideoDetail(VideoSummary):
    tasks: list[TaskSummary]
    thumbnail_url: str


class TimelineEvent(BaseModel):
    kind: Literal["captions", "answers", "points", "tracks"]
    t: float
    end: float | None = None
    task: str
    task_key: str
    text: str | None = None
    question: str | None = None
    label: str | None = None
    object_id: int | None = None
    x: float | None = None
    y: float | None = None
    x_norm: float | None = None
    y_norm: float | None = None
    box: list[float] | None = None


class TimelineResponse(BaseModel):
    video_id: str
    duration_s: float | None
    t_from: float | None
    t_to: float | None
    events: list[TimelineEvent]
    truncated: bool


class CountRow(BaseModel):
    video_id: str
    uri: str | None
    task: str
    task_key: str
    query: str | None
    count: int | None
    event_times_s: list[float] | None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    index: str = Field(description="ready, stale, or missing")
    message: str | None = None
