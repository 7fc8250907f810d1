"""Every lake table's Arrow schema, in one place.

A table is a Delta table at ``<lake>/<name>``. ``KEYS`` names each table's logical key (what makes
a row unique); writers rely on it for exactly-once commits. Columns are added here first, then
written; readers (DuckDB, Polars, Spark) see exactly these types.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = [
    "ANALYSIS_COUNTS", "ANALYSIS_CROSSINGS", "ANALYSIS_INPUTS", "ANALYSIS_PRESENCE", "ANALYSIS_TRACKS",
    "ANALYSIS_ZONE_VISITS", "LINE_CROSSINGS", "TRACK_STATS", "ZONE_VISITS", "ANSWERS", "CAPTIONS", "DEPLOYMENTS", "PLACEMENTS", "CLAIMS", "COUNTS", "ERRORS", "EVALS", "IMAGES", "SETS", "FILES", "KEYS", "OUTPUTS", "POINTS", "RUNS", "SCHEMAS", "TRACKS", "VIDEOS",
    "WINDOWS", "empty_table", "schema_for",
]

_TS = pa.timestamp("us", tz="UTC")

VIDEOS = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),  # sha256 of the bytes
        pa.field("uris", pa.list_(pa.string()), nullable=False),  # every place this content was seen
        pa.field("size", pa.int64()),
        pa.field("duration_s", pa.float64()),
        pa.field("fps", pa.float64()),  # average frame rate
        pa.field("frames", pa.int64()),  # counted from the stream's packets
        pa.field("width", pa.int32()),  # coded size, before rotation
        pa.field("height", pa.int32()),
        pa.field("codec", pa.string()),
        pa.field("rotation", pa.int32()),  # display rotation in degrees (as PyAV's VideoFrame.rotation)
        pa.field("has_audio", pa.bool_()),
        pa.field("damage", pa.string()),  # null, or why only part of the file is readable
        pa.field("first_seen", _TS),
        pa.field("run_id", pa.string()),  # run that first saw it
    ]
)

IMAGES = pa.schema(  # still images, one row per distinct content (docs/images.md)
    [
        pa.field("image_id", pa.string(), nullable=False),  # sha256 of the bytes
        pa.field("uris", pa.list_(pa.string()), nullable=False),  # every place this content was seen
        pa.field("size", pa.int64()),
        pa.field("format", pa.string()),  # JPEG, PNG, TIFF, WEBP, HEIF
        pa.field("width", pa.int32()),  # upright, as a viewer shows it (EXIF orientation applied)
        pa.field("height", pa.int32()),
        pa.field("orientation", pa.int32()),  # the EXIF orientation tag (1: none)
        pa.field("mode", pa.string()),  # Pillow's pixel mode: RGB, RGBA, L, I;16, ...
        pa.field("bit_depth", pa.int32()),
        pa.field("has_alpha", pa.bool_()),
        pa.field("captured_at", _TS),  # the capture instant (UTC) when known: EXIF with offset, or the file time
        pa.field("captured_local", pa.timestamp("us")),  # the camera's wall-clock time (EXIF), zone unknown or not
        pa.field("utc_offset", pa.string()),  # "+02:00" when EXIF gives it
        pa.field("captured_at_source", pa.string()),  # exif_offset | exif_local | file_mtime
        pa.field("first_seen", _TS),
        pa.field("run_id", pa.string()),  # run that first saw it
    ]
)

SETS = pa.schema(  # image sets: what the pipeline treats like one video window (docs/images.md)
    [
        pa.field("set_id", pa.string(), nullable=False),  # stable hash of kind, members and grouping parameters
        pa.field("kind", pa.string()),  # burst | timelapse | manifest
        pa.field("label", pa.string()),  # a manifest's own name for the set
        pa.field("image_ids", pa.list_(pa.string()), nullable=False),  # members in capture (or manifest) order
        pa.field("uris", pa.list_(pa.string())),  # one path per member, in the same order
        pa.field("folder", pa.string()),
        pa.field("start_local", pa.timestamp("us")),  # first and last capture, as wall-clock times
        pa.field("end_local", pa.timestamp("us")),
        pa.field("params_json", pa.string()),  # the grouping parameters (gap, size limit)
        pa.field("first_seen", _TS),
        pa.field("run_id", pa.string()),
    ]
)

FILES = pa.schema(
    [
        pa.field("uri", pa.string(), nullable=False),  # one row per path, as last seen
        pa.field("size", pa.int64()),
        pa.field("mtime", pa.float64()),
        pa.field("video_id", pa.string()),  # the content found there: a video's id, or an image's (null: unusable)
        pa.field("run_id", pa.string()),  # the ingest that saw it so
        pa.field("seen_at", _TS),
    ]
)

CLAIMS = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),  # the run that took the work on
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("task_key", pa.string(), nullable=False),
        pa.field("holder", pa.string()),  # host:pid of the run's driver
        pa.field("at", _TS),
    ]
)

ERRORS = pa.schema(
    [
        pa.field("uri", pa.string()),
        pa.field("video_id", pa.string()),  # null when the file could not be hashed
        pa.field("stage", pa.string(), nullable=False),  # probe, sample, infer, parse, write
        pa.field("task_key", pa.string()),  # the job's failed window: its task and window (null for ingest)
        pa.field("window_id", pa.string()),
        pa.field("error_kind", pa.string(), nullable=False),  # stable slug, see docs/errors.md
        pa.field("message", pa.string()),
        pa.field("size", pa.int64()),  # file size and mtime when it failed: a changed file is retried
        pa.field("mtime", pa.float64()),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("at", _TS),
    ]
)

RUNS = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("job", pa.string(), nullable=False),  # ingest, caption, analyze, index
        pa.field("status", pa.string(), nullable=False),  # running, completed, failed
        pa.field("started_at", _TS),
        pa.field("ended_at", _TS),
        pa.field("seconds", pa.float64()),
        pa.field("sources", pa.list_(pa.string())),
        pa.field("spec_json", pa.string()),  # the settings / job spec the run used
        pa.field("task_keys", pa.list_(pa.string())),
        pa.field("model_id", pa.string()),
        pa.field("model_revision", pa.string()),
        pa.field("vidlake_version", pa.string()),
        pa.field("files_found", pa.int64()),
        pa.field("videos_new", pa.int64()),
        pa.field("videos_known", pa.int64()),
        pa.field("failed", pa.int64()),
        pa.field("metrics_json", pa.string()),  # job-specific counts and timings
        pa.field("message", pa.string()),  # why a failed run failed
    ]
)

WINDOWS = pa.schema(
    [
        pa.field("window_id", pa.string(), nullable=False),  # ids.window_id(video, span, sampling)
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("kind", pa.string()),  # slow (dense windows) | fast (one sparse sweep of the video)
        pa.field("window_index", pa.int32()),
        pa.field("start_s", pa.float64()),
        pa.field("end_s", pa.float64()),
        pa.field("timestamps_s", pa.list_(pa.float64())),  # PTS of every frame the model saw
        pa.field("sampling_json", pa.string()),
        pa.field("decoder", pa.string()),
        pa.field("partial", pa.bool_()),
        pa.field("partial_reason", pa.string()),
        pa.field("run_id", pa.string()),
    ]
)

# Output tables. Every row carries task/task_key (what produced it) and run_id (when).
_OUT = [
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("task", pa.string(), nullable=False),  # caption, qa, point, count, track, ground, anomaly, custom
    pa.field("task_key", pa.string(), nullable=False),
]
_PROVENANCE = [pa.field("window_id", pa.string()), pa.field("run_id", pa.string())]

OUTPUTS = pa.schema(  # the raw model text of every (video, task, window): parsed rows derive from it
    _OUT
    + [
        pa.field("window_id", pa.string(), nullable=False),
        pa.field("query", pa.string()),
        pa.field("prompt", pa.string()),
        pa.field("raw_text", pa.string()),
        pa.field("parse_status", pa.string()),  # ok | partial | empty | failed
        pa.field("prompt_tokens", pa.int32()),
        pa.field("generated_tokens", pa.int32()),
        pa.field("model_id", pa.string()),
        pa.field("model_revision", pa.string()),
        pa.field("run_id", pa.string()),
    ]
)

CAPTIONS = pa.schema(
    _OUT + [pa.field("start_s", pa.float64()), pa.field("end_s", pa.float64()), pa.field("text", pa.string())] + _PROVENANCE
)

ANSWERS = pa.schema(
    _OUT
    + [
        pa.field("question", pa.string()),
        pa.field("start_s", pa.float64()),
        pa.field("end_s", pa.float64()),
        pa.field("text", pa.string()),
    ]
    + _PROVENANCE
)

_XY = [
    pa.field("x", pa.float64()),  # pixels of the upright (rotation applied) original frame
    pa.field("y", pa.float64()),
    pa.field("x_norm", pa.float64()),  # 0..1 of width / height
    pa.field("y_norm", pa.float64()),
]

_IMAGE = [pa.field("image_id", pa.string())]  # image sets: the image the point is on (null for video)

POINTS = pa.schema(
    _OUT
    + [pa.field("query", pa.string()), pa.field("label", pa.string()), pa.field("t", pa.float64()),
       pa.field("object_id", pa.int32())]
    + _XY
    + _PROVENANCE
    + _IMAGE
)

TRACKS = pa.schema(
    _OUT
    + [pa.field("query", pa.string()), pa.field("label", pa.string()), pa.field("object_id", pa.int32()),
       pa.field("id_scope", pa.string()),  # video: followed by position | appearance: joined by looks | window: per window
       pa.field("t", pa.float64())]
    + _XY
    + [pa.field("box", pa.list_(pa.float64(), 4))]  # x0, y0, x1, y1 in pixels when the output has boxes
    + _PROVENANCE
    + _IMAGE
)

COUNTS = pa.schema(
    _OUT
    + [pa.field("query", pa.string()), pa.field("count", pa.int32()),
       pa.field("event_times_s", pa.list_(pa.float64()))]
    + _PROVENANCE
    + [pa.field("method", pa.string())]  # distinct_ids | max_per_image (image sets) | stated (the answer's number)
)

EVALS = pa.schema(  # vidlake eval: one row per (evaluation run, task_key, query, metric)
    [
        pa.field("run_id", pa.string(), nullable=False),  # the evaluation's own run
        pa.field("evaluated_run_id", pa.string()),  # the run it was restricted to (--run), else null
        pa.field("task_key", pa.string(), nullable=False),
        pa.field("task", pa.string()),
        pa.field("windows", pa.string()),  # slow (the dense windows) | fast (one sparse sweep per video)
        pa.field("query", pa.string(), nullable=False),  # "" for all queries of the task together
        pa.field("metric", pa.string(), nullable=False),  # count_exact, point_f1, hota, idf1, search_mrr, ...
        pa.field("value", pa.float64()),
        pa.field("n", pa.int64()),  # what the metric is over: videos x queries, true points, queries...
        pa.field("model_id", pa.string()),
        pa.field("model_revision", pa.string()),
        pa.field("truth", pa.string()),  # the truth folder as given
        pa.field("truth_fingerprint", pa.string()),  # sha256 of the truth files: which truth this was
        pa.field("at", _TS),
    ]
)

# vidlake analyze (vidlake/analysis/, docs/analysis.md)
DEPLOYMENTS = pa.schema(  # the deployments file as last loaded (Camtrap DP deployments, times in UTC)
    [
        pa.field("deployment_id", pa.string(), nullable=False),
        pa.field("location_id", pa.string()),
        pa.field("location_name", pa.string()),
        pa.field("latitude", pa.float64()),
        pa.field("longitude", pa.float64()),
        pa.field("camera_id", pa.string()),
        pa.field("start", _TS),
        pa.field("end", _TS),
        pa.field("timezone", pa.string()),  # IANA
        pa.field("clock_offset_s", pa.float64()),  # added to the camera's clock to get the true time
        pa.field("pixels_per_metre", pa.float64()),
        pa.field("run_id", pa.string()),
    ]
)

PLACEMENTS = pa.schema(  # where and when each video or image set was recorded
    [
        pa.field("video_id", pa.string(), nullable=False),  # a video's id or an image set's id
        pa.field("kind", pa.string()),  # video | set
        pa.field("uri", pa.string()),
        pa.field("deployment_id", pa.string()),  # null: the path names no deployment
        pa.field("start_utc", _TS),  # null: no known start (analysed in video time only)
        pa.field("end_utc", _TS),
        pa.field("timezone", pa.string()),
        pa.field("start_source", pa.string()),  # sidecar | media | filename | container | exif | exif_local | file_mtime
        pa.field("dated", pa.bool_()),
        pa.field("problem", pa.string()),  # why it is not dated or placed
        pa.field("placed_with", pa.string()),  # fingerprint of the deployments setup that placed it
        pa.field("run_id", pa.string()),
    ]
)

_ANALYSIS = [
    pa.field("analysis", pa.string(), nullable=False),  # the analysis' name
    pa.field("fingerprint", pa.string(), nullable=False),  # name@version#hash of its settings
]

ANALYSIS_COUNTS = pa.schema(
    _ANALYSIS
    + [
        pa.field("deployment_id", pa.string()),
        pa.field("query", pa.string(), nullable=False),
        pa.field("dated", pa.bool_()),  # false: footage without a known start, binned in its own time
        pa.field("video_id", pa.string()),  # undated rows only
        pa.field("bin", pa.string()),  # minute | hour | day
        pa.field("clock", pa.string()),  # local | utc
        pa.field("bin_start_utc", _TS),
        pa.field("bin_start_local", pa.timestamp("us")),  # the deployment's wall clock (UTC for clock: utc)
        pa.field("bin_offset_s", pa.float64()),  # undated rows: the bin's start in the video's own time
        pa.field("effort_min", pa.float64()),  # recorded minutes in the bin
        pa.field("detections", pa.int64()),  # pointed objects on sampled frames
        pa.field("individuals", pa.int64()),  # distinct objects first seen in the bin
        pa.field("max_n", pa.int64()),  # most objects on one sampled frame
        pa.field("events", pa.int64()),  # independent events starting in the bin
        pa.field("first_utc", _TS),  # the bin's first and last detection
        pa.field("last_utc", _TS),
        pa.field("task_keys", pa.list_(pa.string())),
        pa.field("run_id", pa.string()),
    ]
)

ANALYSIS_PRESENCE = pa.schema(
    _ANALYSIS
    + [
        pa.field("deployment_id", pa.string(), nullable=False),
        pa.field("query", pa.string(), nullable=False),
        pa.field("present", pa.bool_()),
        pa.field("detections", pa.int64()),
        pa.field("individuals", pa.int64()),
        pa.field("first_seen_utc", _TS),
        pa.field("last_seen_utc", _TS),
        pa.field("first_seen_local", pa.timestamp("us")),
        pa.field("last_seen_local", pa.timestamp("us")),
        pa.field("effort_min", pa.float64()),
        pa.field("undated_videos", pa.int64()),  # videos with detections but no known start
        pa.field("task_keys", pa.list_(pa.string())),
        pa.field("run_id", pa.string()),
    ]
)

# the geometry analyses' rows (vidlake/analysis/geometry.py), and as lake tables with what produced them
_KEY_FIELDS = [pa.field("deployment_id", pa.string()), pa.field("video_id", pa.string()),
               pa.field("query", pa.string()), pa.field("object_id", pa.int32())]

TRACK_STATS = pa.schema(  # one row per track
    _KEY_FIELDS
    + [
        pa.field("samples", pa.int64()),
        pa.field("start_t", pa.float64()),  # video seconds of the first and last sample
        pa.field("end_t", pa.float64()),
        pa.field("start_utc", _TS),  # null when the video's start time is unknown
        pa.field("end_utc", _TS),
        pa.field("duration_s", pa.float64()),  # end_t - start_t, gaps included
        pa.field("path_length_norm", pa.float64()),  # frame widths/heights (normalised units), gaps left out
        pa.field("mean_speed_norm", pa.float64()),  # path length / time spent on the counted steps
        pa.field("max_speed_norm", pa.float64()),  # fastest counted step
        pa.field("path_length_m", pa.float64()),  # from pixels and the deployment's px_per_m; else null
        pa.field("mean_speed_m_s", pa.float64()),
        pa.field("max_speed_m_s", pa.float64()),
    ]
)

LINE_CROSSINGS = pa.schema(  # one row per crossing of a line by a track
    [pa.field("deployment_id", pa.string()), pa.field("line", pa.string())]
    + _KEY_FIELDS[1:]
    + [
        pa.field("t", pa.float64()),  # video seconds, interpolated at the crossing point
        pa.field("t_utc", _TS),
        pa.field("direction", pa.string()),  # in | out (see Line)
    ]
)

ZONE_VISITS = pa.schema(  # one row per visit of a track to a zone
    [pa.field("deployment_id", pa.string()), pa.field("zone", pa.string())]
    + _KEY_FIELDS[1:]
    + [
        pa.field("enter_t", pa.float64()),  # video seconds of the first and last sample inside
        pa.field("exit_t", pa.float64()),
        pa.field("enter_utc", _TS),
        pa.field("exit_utc", _TS),
        pa.field("dwell_s", pa.float64()),  # midpoint rule, see zone_visits
        pa.field("samples", pa.int64()),  # samples inside during the visit
    ]
)

ANALYSIS_TRACKS = pa.schema(_ANALYSIS + list(TRACK_STATS) + [pa.field("task_keys", pa.list_(pa.string())),
                                                              pa.field("run_id", pa.string())])
ANALYSIS_CROSSINGS = pa.schema(_ANALYSIS + list(LINE_CROSSINGS) + [pa.field("task_keys", pa.list_(pa.string())),
                                                                   pa.field("run_id", pa.string())])
ANALYSIS_ZONE_VISITS = pa.schema(_ANALYSIS + list(ZONE_VISITS) + [pa.field("task_keys", pa.list_(pa.string())),
                                                                  pa.field("run_id", pa.string())])

ANALYSIS_INPUTS = pa.schema(  # what each analysis last read: the incremental runs' ledger
    [
        pa.field("fingerprint", pa.string(), nullable=False),
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("task_key", pa.string(), nullable=False),
        pa.field("output_run_id", pa.string()),  # the run whose rows of (video, task_key) were read
        pa.field("placement", pa.string()),  # the placement then (deployment and start)
        pa.field("table_version", pa.int64()),  # the version of the rows' table (points or tracks) then
        pa.field("run_id", pa.string()),
    ]
)

NOTIFICATIONS = pa.schema(  # webhook deliveries: one row per (run, webhook, event), after its last attempt
    [
        pa.field("delivery_id", pa.string(), nullable=False),  # also the payload's delivery_id header
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("event", pa.string()),  # completed | failed | skipped
        pa.field("url", pa.string()),  # scheme, host and path only: a query string may carry a token
        pa.field("ok", pa.bool_()),
        pa.field("attempts", pa.int32()),
        pa.field("status_code", pa.int32()),  # the last response's, null when none came
        pa.field("error", pa.string()),  # why the last attempt failed
        pa.field("signed", pa.bool_()),
        pa.field("at", _TS),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "videos": VIDEOS,
    "images": IMAGES,
    "sets": SETS,
    "files": FILES,
    "claims": CLAIMS,
    "errors": ERRORS,
    "runs": RUNS,
    "windows": WINDOWS,
    "outputs": OUTPUTS,
    "captions": CAPTIONS,
    "answers": ANSWERS,
    "points": POINTS,
    "tracks": TRACKS,
    "counts": COUNTS,
    "evals": EVALS,
    "deployments": DEPLOYMENTS,
    "placements": PLACEMENTS,
    "analysis_counts": ANALYSIS_COUNTS,
    "analysis_presence": ANALYSIS_PRESENCE,
    "analysis_inputs": ANALYSIS_INPUTS,
    "analysis_tracks": ANALYSIS_TRACKS,
    "analysis_crossings": ANALYSIS_CROSSINGS,
    "analysis_zone_visits": ANALYSIS_ZONE_VISITS,
    "notifications": NOTIFICATIONS,
}

KEYS: dict[str, tuple[str, ...]] = {
    "videos": ("video_id",),
    "images": ("image_id",),
    "sets": ("set_id",),
    "files": ("uri",),
    "claims": ("run_id", "video_id", "task_key"),
    "errors": ("uri", "stage", "run_id", "task_key", "window_id"),
    "runs": ("run_id",),
    "windows": ("window_id",),
    "outputs": ("video_id", "task_key", "window_id"),
    "captions": ("video_id", "task_key", "start_s", "end_s"),
    "answers": ("video_id", "task_key", "question", "window_id"),
    "points": ("video_id", "task_key", "t", "object_id", "image_id"),
    "tracks": ("video_id", "task_key", "object_id", "t", "image_id"),
    "counts": ("video_id", "task_key", "query"),
    "evals": ("run_id", "task_key", "query", "metric"),
    "deployments": ("deployment_id",),
    "placements": ("video_id",),
    "analysis_counts": ("fingerprint", "deployment_id", "query", "video_id", "bin_start_utc", "bin_offset_s"),
    "analysis_presence": ("fingerprint", "deployment_id", "query"),
    "analysis_inputs": ("fingerprint", "video_id", "task_key"),
    "analysis_tracks": ("fingerprint", "video_id", "query", "object_id"),
    "analysis_crossings": ("fingerprint", "line", "video_id", "query", "object_id", "t"),
    "analysis_zone_visits": ("fingerprint", "zone", "video_id", "query", "object_id", "enter_t"),
    "notifications": ("delivery_id",),
}


def schema_for(table: str) -> pa.Schema:
    try:
        return SCHEMAS[table]
    except KeyError:
        raise KeyError(f"unknown lake table {table!r}; known: {', '.join(sorted(SCHEMAS))}") from None


def empty_table(table: str) -> pa.Table:
    return schema_for(table).empty_table()
