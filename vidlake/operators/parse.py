"""ParseOutput: raw Molmo 2 text -> captions, answers, points, tracks and counts (CPU, pure)."""

from __future__ import annotations

from typing import Any

from vidlake.models.molmo2_parse import parse_molmo2
from vidlake.operators.step import Resources, Step

__all__ = ["ParseOutput", "PARSE_COLUMNS"]

PARSE_COLUMNS = (
    "answer", "points", "tracks", "count", "count_source", "event_times_s", "captions", "parse_status", "parse_issues",
    "appearance",
)


class ParseOutput(Step):
    """Parses ``raw_text`` of one window (1:1) with :func:`vidlake.parse_molmo2`.

    Reads ``raw_text``, ``width``, ``height``, ``rotation`` (the video's coded size and display
    rotation), ``time_offset_s`` (from BuildPrompt), ``timestamps_s``, ``start_s``, ``end_s``,
    ``task``. Writes ``answer`` (text without grounding tags), ``points``/``tracks`` (lists of flat
    dicts: label, object_id, t, t_model, x, y in pixels of the upright frame, x_norm, y_norm, box; for
    an image set's window, ``kind="set"``, also ``image_index`` and ``image_id``: the image a point
    names, whose capture time and pixels it has),
    ``count``, ``count_source``, ``event_times_s``, ``captions`` (caption task: spans of absolute
    time; the whole window when the text names no times), ``parse_status`` (ok | partial | empty |
    failed), ``parse_issues`` and ``appearance`` (what each pointed object looks like, from ``thumbs``:
    ``[{object_id, vector}]``, see operators/appearance.py; the merge re-identifies objects with it);
    drops ``thumbs``. Keeps ``raw_text``. A parser bug is not a row error: the row keeps
    its raw text with ``parse_status="failed"``. Runs on the driver (milliseconds per window), or inside
    the engine's own tasks where the engine is a plain map (the oracle), so its rows and frame copies
    make no extra trip.
    """

    stage = "parse"
    outputs = PARSE_COLUMNS
    drops = ("thumbs",)
    default_resources = Resources(num_cpus=0.25, placement="driver")

    def __init__(self, snap_to_frames: bool = True, resources: Resources | None = None):
        super().__init__(resources)
        self.snap_to_frames = snap_to_frames  # move parsed times onto the PTS of the frame the model named

    def process(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {**row, **{c: None for c in PARSE_COLUMNS}}
        if not isinstance(row.get("raw_text"), str):
            return out
        images = None
        if row.get("kind") == "set":  # the prefix of a point names its image: its capture time and size
            images = [(float(t), int(w), int(h)) for t, (w, h) in zip(row["set_times_s"], row["set_sizes"])]
        try:
            answer = parse_molmo2(
                row["raw_text"], width=int(row["width"]), height=int(row["height"]),
                rotation=int(row.get("rotation") or 0), time_offset_s=float(row.get("time_offset_s") or 0.0),
                frame_times_s=row.get("timestamps_s") if self.snap_to_frames else None, images=images,
            )
        except Exception as exc:  # noqa: BLE001 - a parser bug must not stop the run; the raw text stays
            out.update(parse_status="failed", parse_issues=[f"{type(exc).__name__}: {exc}"], answer=row["raw_text"])
            return out
        out.update(answer.to_dict())
        if images is not None:
            ids = list(row["set_image_ids"])
            for p in (*out["points"], *out["tracks"]):
                p["image_id"] = ids[p["image_index"] - 1]
        spans = out.pop("spans")
        if row.get("task") == "caption":
            inside, outside = _split_spans(spans, row)
            if outside:
                out["parse_status"] = "partial"
                out["parse_issues"] = [*out["parse_issues"],
                                       f"times outside the window ignored: {', '.join(f'{t:g}' for t in outside[:5])}"]
            out["captions"] = _captions(inside, answer.text, row)
        else:
            out["captions"] = []
        if row.get("thumbs") is not None:
            from vidlake.operators.appearance import describe_objects

            out["appearance"] = describe_objects(row["thumbs"], row["timestamps_s"],
                                                 [*(out["points"] or ()), *(out["tracks"] or ())]) or None
        return out


def _split_spans(spans: list[dict], row: dict[str, Any], slack_s: float = 1.0) -> tuple[list[dict], list[float]]:
    """Spans whose start lies in the window (a time the model could have seen), and the other starts."""
    lo, hi = _window_span(row)
    inside = [s for s in spans if lo - slack_s <= s["start_s"] <= hi + slack_s]
    return inside, [s["start_s"] for s in spans if s not in inside]


def _window_span(row: dict[str, Any]) -> tuple[float, float]:
    """The window's start and end (from its frames' times when the plan's are missing)."""
    times = [float(t) for t in (row.get("timestamps_s") if row.get("timestamps_s") is not None else ())]
    start = row.get("start_s")
    start = float(start if start is not None else min(times or [0.0]))
    end = row.get("end_s")
    return start, float(end if end is not None else max(times or [start]))


def _captions(spans: list[dict], text: str, row: dict[str, Any]) -> list[dict]:
    """Caption rows: each time span ends where the next begins (the last at the window end), in time order
    (a model may name its times out of order)."""
    start, end = _window_span(row)
    if not spans:
        return [{"start_s": start, "end_s": end, "text": text}] if text else []
    spans = sorted(spans, key=lambda span: span["start_s"])
    rows = []
    for i, span in enumerate(spans):
        stop = span["end_s"]
        if stop is None:
            stop = spans[i + 1]["start_s"] if i + 1 < len(spans) else max(end, span["start_s"])
        rows.append({"start_s": span["start_s"], "end_s": stop, "text": span["text"]})
    return rows
