"""parse_molmo2 on hand-written answers in every documented format, and on garbage (it never raises)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidlake import parse_molmo2

W, H = 640, 360


def _p(text, **kw):
    return parse_molmo2(text, width=kw.pop("width", W), height=kw.pop("height", H), **kw)


def test_documented_points_example_many_objects_many_frames():
    a = _p('<points coords="0.1 1 900 400 2 911 800;0.2 3 911 600">cup</points>', time_offset_s=30.0)
    assert a.status == "ok" and a.issues == () and a.text == "cup"
    assert [(p.object_id, p.t, p.t_model) for p in a.points] == [(1, 30.1, 0.1), (2, 30.1, 0.1), (3, 30.2, 0.2)]
    first = a.points[0]
    assert (first.x_norm, first.y_norm) == (0.9, 0.4)
    assert (first.x, first.y) == pytest.approx((576.0, 144.0))
    assert first.label == "cup" and first.kind == "point" and a.tracks == ()
    assert (a.count, a.count_source) == (3, "ids")


def test_track_ids_persist_and_reappear_after_occlusion():
    coords = "0.0 1 100 100 2 500 500;0.5 1 120 100 2 510 500;1.0 2 520 500;1.5 2 530 500;2.0 1 200 110 2 540 500"
    a = _p(f'<tracks coords="{coords}">the red car</tracks>', time_offset_s=10.0)
    car = [(p.t, p.x_norm) for p in a.tracks if p.object_id == 1]
    assert car == [(10.0, 0.1), (10.5, 0.12), (12.0, 0.2)]  # hidden at 11.0 and 11.5, same id after
    assert len([p for p in a.tracks if p.object_id == 2]) == 5
    assert a.points == () and a.object_ids == [1, 2] and a.status == "ok"
    assert all(p.kind == "track" and p.label == "the red car" for p in a.tracks)


def test_large_answer_50_objects_over_64_frames():
    groups = ";".join(
        f"{f * 0.5:.1f} " + " ".join(f"{i} {(i * 19) % 1000:03d} {(f * 15) % 1000:03d}" for i in range(1, 51))
        for f in range(64)
    )
    a = _p(f'<tracks coords="{groups}">ant</tracks>')
    assert len(a.tracks) == 50 * 64 and a.object_ids == list(range(1, 51)) and a.status == "ok"
    assert a.tracks[-1].t == pytest.approx(31.5)


@pytest.mark.parametrize(
    "text",
    [
        '<points alt="dog" coords="0.5 1 250 500">dog</points>',
        '<points coords="0.5 1 250 500" alt="dog">dog</points>',
        "<points coords='0.5 1 250 500'>dog</points>",
        '<POINTS coords="0.5 1 250 500">dog</POINTS>',
        '<points coords="0.5 1 250 500" alt="dog"></points>',  # label from alt
    ],
)
def test_attribute_order_quotes_case_and_alt(text):
    a = _p(text)
    assert a.status == "ok" and len(a.points) == 1
    assert (a.points[0].label, a.points[0].t, a.points[0].x) == ("dog", 0.5, 160.0)


@pytest.mark.parametrize("sep", [";", "\t", ":", ", "])
def test_group_separators(sep):
    a = _p(f'<points coords="0.5 1 100 200 2 300 400{sep}1.0 3 500 600">x</points>')
    assert [(p.object_id, p.t) for p in a.points] == [(1, 0.5), (2, 0.5), (3, 1.0)]


def test_comma_between_triples_of_one_frame_keeps_the_frame_time():
    a = _p('<points coords="0.5 1 100 200, 2 300 400;1.0 3 500 600">x</points>')
    assert [(p.object_id, p.t) for p in a.points] == [(1, 0.5), (2, 0.5), (3, 1.0)]


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ('Counting the <points coords="0.5 1 100 100 2 200 200 3 300 300">dogs</points> shows a total of 3.', 3),
        ("There are 4 people in the video.", 4),
        ("7", 7),
        ("12.", 12),
        ("There are none.", 0),
        ("There are three dogs.", 3),
        ("The total count is 5.", 5),
    ],
)
def test_count_forms(text, count):
    a = _p(text)
    assert a.count == count and a.count_source == "text" and a.status == "ok"


def test_count_from_distinct_ids_when_the_text_says_no_number():
    a = _p('<points coords="0.5 1 100 100 2 200 200;1.0 2 210 200 3 300 300">jumps</points>')
    assert (a.count, a.count_source) == (3, "ids")
    assert a.event_times_s == [0.5, 0.5, 1.0]
    assert _p("The dog is brown.").count is None


def test_cut_off_mid_tag_keeps_complete_triples_and_says_so():
    a = _p('The car: <tracks coords="0.0 1 100 100 2 200 200;0.5 1 110 100 2 21')
    assert a.status == "partial" and "not closed" in a.issues[0]
    assert [(p.object_id, p.t) for p in a.tracks] == [(1, 0.0), (2, 0.0), (1, 0.5)]  # "2 21" dropped
    assert a.text == "The car:" and a.raw.endswith("2 21")


def test_cut_off_number_is_not_trusted():
    a = _p('<points coords="0.0 1 100 100;0.5 1 110 10')  # "10" may be the start of "100"
    assert [(p.t, p.y_norm) for p in a.points] == [(0.0, 0.1)]


def test_cut_off_inside_the_label_and_before_coords():
    a = _p('<points coords="0.0 1 100 100">red ca')
    assert a.status == "partial" and a.points[0].label == "red ca" and a.text == "red ca"
    b = _p("It is here <points coo")
    assert b.status == "partial" and b.points == () and b.text == "It is here"


def test_broken_groups_and_off_scale_values_are_reported_and_the_rest_kept():
    a = _p('<points coords="0.5 1 1200 300;abc 1 2 3;1.0 2 500 500;1.5 3 100">q</points>')
    assert a.status == "partial" and len(a.issues) == 3
    assert [(p.object_id, p.t) for p in a.points] == [(2, 1.0)]


def test_absurd_numbers_are_reported_not_raised():
    huge = "9" * 400
    a = _p(f'<points coords="{huge} 1 100 100;0.5 {huge} 100 100;1.0 1 {huge} 5;1.5 2 500 500">x</points>')
    assert a.status == "partial" and len(a.issues) == 3 and [(p.object_id, p.t) for p in a.points] == [(2, 1.5)]


def test_several_tags_and_text_around_them():
    a = _p('I see <points coords="0.5 1 100 100">a dog</points> and <tracks coords="0.5 1 900 900">a cat</tracks>.')
    assert a.text == "I see a dog and a cat."
    assert (a.points[0].label, a.points[0].tag_index) == ("a dog", 0)
    assert (a.tracks[0].label, a.tracks[0].tag_index) == ("a cat", 1)


def test_unclosed_tag_followed_by_another_tag():
    a = _p('<points coords="0.5 1 500 500">a <points coords="1.0 2 400 400">b</points>')
    assert [p.label for p in a.points] == ["a", "b"] and a.status == "partial"


def test_rotation_swaps_the_upright_frame_sides():
    a = _p('<points coords="0.0 1 500 250">x</points>', width=640, height=360, rotation=90)
    assert (a.points[0].x, a.points[0].y) == pytest.approx((180.0, 160.0))  # upright frame is 360 x 640
    b = _p('<points coords="0.0 1 500 250">x</points>', width=640, height=360, rotation=-180)
    assert (b.points[0].x, b.points[0].y) == pytest.approx((320.0, 90.0))


def test_times_snap_to_the_frames_the_model_saw():
    frames = [50.033, 50.533, 51.067, 51.6]  # absolute PTS; the model saw 0.0, 0.5, 1.0 (1.033), 1.6
    a = _p('<points coords="0.0 1 1 1;0.5 1 1 1;1.0 1 1 1;1.6 1 1 1;3.0 1 1 1">x</points>',
           time_offset_s=50.033, frame_times_s=frames)
    assert [p.t for p in a.points] == [50.033, 50.533, 51.067, 51.6, pytest.approx(53.033)]


def test_boxes_and_molmo1_percent_points():
    a = _p('<boxes coords="0.5 1 100 200 300 400">sign</boxes>')
    assert a.points[0].kind == "box" and a.points[0].box == pytest.approx((64.0, 72.0, 192.0, 144.0))
    b = _p('<point x="50.0" y="25.0" alt="dog">dog</point> <points x1="10" y1="20" x2="30" y2="40">cats</points>')
    assert [(p.label, p.object_id, p.x, p.y, p.t) for p in b.points] == [
        ("dog", 1, 320.0, 90.0, None), ("cats", 1, 64.0, 72.0, None), ("cats", 2, 192.0, 144.0, None)]


def test_plain_text_answers_and_empty_output():
    a = _p("The man is riding a bike.")
    assert (a.status, a.text, a.points, a.tracks) == ("ok", "The man is riding a bike.", (), ())
    assert _p("").status == "empty" and _p("  \n").status == "empty" and _p(None).status == "empty"


def test_caption_spans_in_absolute_time():
    text = "A kitchen. At 1.5 seconds, a man walks in. He sits. From 3.0 to 5.5 seconds the dog runs. (7.0s) Quiet."
    spans = _p(text, time_offset_s=100.0).spans
    assert [(s.start_s, s.end_s) for s in spans] == [(100.0, None), (101.5, None), (103.0, 105.5), (107.0, None)]
    assert spans[1].text == "At 1.5 seconds, a man walks in. He sits."


def test_to_dict_is_flat_and_arrow_ready():
    import pyarrow as pa

    d = _p('Counting the <points coords="0.5 1 100 100">dogs</points> shows a total of 1.').to_dict()
    assert d["count"] == 1 and d["parse_status"] == "ok" and d["points"][0]["label"] == "dogs"
    pa.Table.from_pylist([d])  # nested lists of flat dicts convert


_FRAGMENTS = st.sampled_from([
    "<points", "<tracks", "</points>", "</tracks>", ' coords="', '"', ">", "<", ";", "\t", ":", ",", " ", "0.5",
    "1", "999", "1000", "-3", "1e9", "nan", "alt='x'", "dog", "There are", "total of", "\n", "<boxes", "x1=",
    "seconds", "At", "3.0", "<point", 'x="', "�", "9" * 400,
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=40).map("".join), st.floats(-1e6, 1e6), st.sampled_from([0, 90, 180, 270, -90]))
def test_never_raises_on_tag_soup(text, offset, rotation):
    a = parse_molmo2(text, width=W, height=H, time_offset_s=offset, rotation=rotation, frame_times_s=[0.0, 0.5])
    assert a.status in ("ok", "partial", "empty") and a.raw == text
    assert all(0 <= p.x_norm <= 1 and 0 <= p.y_norm <= 1 for p in (*a.points, *a.tracks))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_never_raises_on_any_text(text):
    parse_molmo2(text, width=W, height=H)
