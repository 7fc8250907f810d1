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


def test_set_rows_carry_each_image_in_set_order_with_its_time_and_wall_clock():
    from datetime import datetime

    from vidlake.platform.lake.schemas import SETS

    start = datetime(2026, 6, 1, 9, 0, 0)
    sets = _table(SETS, [{"set_id": "s1", "kind": "burst", "image_ids": ["i1", "i2", "i3"], "uris": ["/a", "/b", "/c"],
                          "folder": "/", "start_local": start, "end_local": datetime(2026, 6, 1, 9, 0, 4)},
                         {"set_id": "s2", "kind": "burst", "image_ids": ["i4"], "uris": ["/d"]}])
    items = [{"video_id": "s1", "set_uris": ["/a", "/b", "/c"], "set_image_ids": ["i1", "i2", "i3"],
              "set_times_s": [0.0, 1.5, 1.5], "set_sizes": [[64, 48], [64, 48], [40, 80]], "duration_s": 1.5}]
    (row,) = D.set_rows(sets, items).to_pylist()  # a set without facts (its images unknown) is left out
    assert (row["uri"], row["duration_s"], row["image_widths"], row["image_heights"]) == ("/a", 1.5, [64, 64, 40],
                                                                                          [48, 48, 80])
    images = D.set_images(row)
    assert [(i["image_id"], i["t"], i["captured_local"].second, i["captured_local"].microsecond) for i in images] == [
        ("i1", 0.0, 0, 0), ("i2", 1.5, 1, 500000), ("i3", 1.5, 1, 500000)]
    # the image nearest a time; of two at the same time, the first in set order
    assert [D.nearest_image(row, t) for t in (0.0, 0.7, 0.8, 1.5, 9.0)] == [0, 0, 1, 1, 1]


def test_evidence_of_an_image_set_says_which_image():
    row = {"video_id": "s1", "task": "count", "task_key": "k", "query": "deer", "label": "deer", "object_id": 1,
           "t": 2.0, "x": 10.0, "y": 20.0, "image_id": "i2"}
    (ev,) = D.evidence_rows(_table(POINTS, [row]), "points").to_pylist()
    assert (ev["image_id"], ev["t"], ev["x"]) == ("i2", 2.0, 10.0)
