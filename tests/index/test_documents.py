"""Lake rows -> index rows (pure: no LanceDB, no Ray)."""

import pyarrow as pa

from vidlake.index import documents as D
from vidlake.platform.lake.schemas import ANSWERS, CAPTIONS, POINTS, TRACKS

V1 = "a" * 64


def _table(schema, rows):
    return pa.Table.from_pylist(rows, schema=schema)


def test_caption_docs_skip_blank_text_and_have_stable_ids():
    rows = [{"video_id": V1, "task": "caption", "task_key": "k", "start_s": 0.0, "end_s": 2.0, "text": " Hello there "},
            {"video_id": V1, "task": "caption", "task_key": "k", "start_s": 2.0, "end_s": 4.0, "text": "   "},
            {"video_id": V1, "task": "caption", "task_key": "k", "start_s": 4.0, "end_s": 6.0, "text": None}]
    docs = D.caption_docs(_table(CAPTIONS, rows))
    assert docs.num_rows == 1 and docs["text"][0].as_py() == "Hello there"
    again = D.caption_docs(_table(CAPTIONS, rows[:1]))
    assert docs["doc_id"].to_pylist() == again["doc_id"].to_pylist()
    assert docs["text_hash"][0].as_py() == D.text_hash("Hello there")


def test_answer_docs_join_question_and_default_to_the_whole_video():
    rows = [{"video_id": V1, "task": "qa", "task_key": "q", "question": "What is he holding?", "start_s": None,
             "end_s": None, "text": "A phone.", "window_id": "w"}]
    doc = D.answer_docs(_table(ANSWERS, rows), {V1: 12.5}).to_pylist()[0]
    assert (doc["text"], doc["question"], doc["start_s"], doc["end_s"]) == (
        "What is he holding? — A phone.", "What is he holding?", 0.0, 12.5)


def test_label_docs_span_first_to_last_sample_per_label():
    pts = [{"video_id": V1, "task": "track", "task_key": "t", "query": "the forklift", "label": "forklift",
            "object_id": i % 2, "t": float(t), "x": 1.0, "y": 1.0} for i, t in enumerate((5, 9, 7))]
    pts.append({**pts[0], "label": None, "query": "pallet", "t": 1.0, "object_id": 4})
    docs = {d["label"]: d for d in D.label_docs(_table(TRACKS, pts), "tracks").to_pylist()}
    assert (docs["forklift"]["start_s"], docs["forklift"]["end_s"], docs["forklift"]["object_ids"]) == (5.0, 9.0, [0, 1])
    assert docs["forklift"]["text"] == "forklift"  # "the forklift" adds nothing
    assert docs["pallet"]["text"] == "pallet" and docs["pallet"]["source"] == "tracks"
    ev = D.evidence_rows(_table(POINTS, [{**pts[3], "task": "point"}]), "points").to_pylist()[0]
    assert (ev["label"], ev["box"], ev["source"]) == ("pallet", None, "points")


def test_a_video_left_without_files_keeps_a_row_with_a_null_uri():
    from vidlake.platform.lake.schemas import VIDEOS

    videos = _table(VIDEOS, [{"video_id": V1, "uris": ["/x.mp4", "/y.mp4"]}, {"video_id": "b" * 64, "uris": []}])
    assert [(r["video_id"][0], r["uri"]) for r in D.video_rows(videos).to_pylist()] == [("a", "/x.mp4"), ("b", None)]
