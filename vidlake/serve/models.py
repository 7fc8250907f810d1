"""Request and response models of the search API (they are also the OpenAPI schema at /docs)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "CountRow", "ErrorBody", "Evidence", "Health", "Hit", "HitImage", "HitSet", "IndexInfo", "Mode", "PointSample",
    "SearchResponse", "SetDetail", "SetImage", "SetList", "SetSummary", "TaskSummary", "TimelineEvent",
    "TimelineResponse", "TrackEvidence", "VideoDetail", "VideoList", "VideoSummary",
]

VIDEO_ID = r"^[0-9a-f]{64}$"  # sha256 of the bytes (an image's id too)
SET_ID = r"^[0-9a-f]{16}$"  # an image set's id: a hash of its members and grouping
MEDIA_ID = r"^([0-9a-f]{64}|[0-9a-f]{16})$"  # a video's or an image set's id
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
    image_id: str | None = Field(None, description="Image sets: the image the sample is on (x, y, box are its "
                                                   "pixels); null for a video.")


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


class SetImage(BaseModel):
    image_id: str = Field(description="sha256 of the image's bytes.")
    uri: str = Field(description="The image's path, as the set recorded it.")
    t: float = Field(description="Seconds after the set's first capture: the time of the set's outputs.")
    captured_local: datetime | None = Field(description="Wall-clock capture time: the set's start_local plus t.")
    width: int = Field(description="Upright width, pixels (EXIF orientation applied).")
    height: int
    thumbnail_url: str = Field(description="This image, upright, scaled to the thumbnail width.")


class HitImage(SetImage):
    in_hit: bool = Field(description="Whether the hit's time range covers this image.")


class HitSet(BaseModel):
    kind: str = Field(description="burst, timelapse or manifest.")
    label: str | None = Field(description="A manifest's own name for the set.")
    start_local: datetime | None = Field(description="First capture, wall-clock time.")
    end_local: datetime | None = Field(description="Last capture, wall-clock time.")
    images: list[HitImage] = Field(description="Every image of the set, in set order.")


class Hit(BaseModel):
    video_id: str = Field(description="The video's id, or the image set's id (media 'set').")
    media: Literal["video", "set"]
    uri: str | None = Field(description="The video's path, or the set's first image's.")
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
    image_set: HitSet | None = Field(description="The set and its images when media is 'set'; null for a video.")
    thumbnail_url: str = Field(description="The frame in the middle of the range, or the set's image nearest it.")
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


class SetSummary(BaseModel):
    set_id: str
    kind: str = Field(description="burst, timelapse or manifest.")
    label: str | None
    folder: str | None
    uri: str | None = Field(description="The first image's path.")
    start_local: datetime | None = Field(description="First capture, wall-clock time.")
    end_local: datetime | None = Field(description="Last capture, wall-clock time.")
    duration_s: float = Field(description="The last image's time, seconds after the first capture.")
    images: list[SetImage]


class SetList(BaseModel):
    total: int
    offset: int
    sets: list[SetSummary]


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


class SetDetail(SetSummary):
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
    image_id: str | None = Field(None, description="Image sets: the image a point or track sample is on.")


class TimelineResponse(BaseModel):
    video_id: str = Field(description="The video's or the image set's id.")
    duration_s: float | None
    t_from: float | None
    t_to: float | None
    events: list[TimelineEvent]
    truncated: bool


class CountRow(BaseModel):
    video_id: str = Field(description="The video's or the image set's id.")
    media: Literal["video", "set"]
    uri: str | None
    task: str
    task_key: str
    query: str | None
    count: int | None
    event_times_s: list[float] | None
    method: str | None = Field(description="distinct_ids (objects followed over the video), max_per_image (an "
                                           "image set: its fullest image) or stated (the number the answer gave).")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    index: str = Field(description="ready, stale, or missing")
    message: str | None = None
