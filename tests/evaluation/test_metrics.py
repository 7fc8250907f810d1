"""The evaluation metrics on small cases whose numbers are worked out by hand in the comments."""

from __future__ import annotations

import math

import pytest

from vidlake.evaluation.metrics import (Point, Span, TrackPoint, count_metrics, point_metrics, search_metrics,
                                        track_metrics)

SIZE = {"v": (300, 400), "w": (300, 400)}  # diagonal 500 px: the default threshold 0.05 is 25 px


# counting

def test_counts_exact_off_by_one_and_errors():
    m = count_metrics([(3, 3), (2, 3), (5, 3), (None, 1)])
    # errors 0, -1, +2 and one missing: exact 1/4, |err| <= 1 for 2 of 4; MAE (0+1+2)/3, RMSE sqrt((0+1+4)/3)
    assert (m.n, m.missing) == (4, 1)
    assert m.exact == 0.25 and m.off_by_one == 0.5
    assert m.mae == pytest.approx(1.0) and m.rmse == pytest.approx(math.sqrt(5 / 3))


def test_counts_without_predictions_or_pairs():
    m = count_metrics([(None, 2), (None, 0)])  # all missing: both accuracies 0, nothing to average
    assert (m.exact, m.off_by_one, m.mae, m.rmse, m.missing) == (0.0, 0.0, None, None, 2)
    assert count_metrics([]).exact is None


# pointing

def _pt(x, y, t=1.0, key="circles", video="v"):
    return Point(video, key, t, x, y)


def test_perfect_points_score_one():
    truth = [_pt(10, 10), _pt(200, 300), _pt(50, 60, t=2.0, key="squares")]
    m = point_metrics(truth, truth, SIZE)
    assert (m.tp, m.fp, m.fn, m.f1, m.mean_distance_px) == (3, 0, 0, 1.0, 0.0)


def test_a_point_just_beyond_the_threshold_is_a_miss_and_a_false_alarm():
    truth = [_pt(100, 100)]
    far = point_metrics([_pt(125.5, 100)], truth, SIZE)  # 25.5 px > 25 px
    assert (far.tp, far.fp, far.fn, far.f1, far.mean_distance_px) == (0, 1, 1, 0.0, None)
    near = point_metrics([_pt(124.5, 100)], truth, SIZE)  # 24.5 px
    assert (near.tp, near.fp, near.fn, near.mean_distance_px) == (1, 0, 0, 24.5)
    # the threshold is a parameter: 0.1 x 500 = 50 px takes the far one too
    assert point_metrics([_pt(125.5, 100)], truth, SIZE, threshold=0.1).tp == 1


def test_two_predictions_for_one_true_point():
    m = point_metrics([_pt(103, 104), _pt(100, 100)], [_pt(100, 100)], SIZE)
    # one TP (the exact one, 0 px), one FP: precision 1/2, recall 1, F1 2*(1/2)/(3/2) = 2/3
    assert (m.tp, m.fp, m.fn, m.mean_distance_px) == (1, 1, 0, 0.0)
    assert (m.precision, m.recall, m.f1) == (0.5, 1.0, pytest.approx(2 / 3))


def test_assignment_beats_greedy_nearest_first():
    truth = [_pt(100, 100), _pt(120, 100)]
    pred = [_pt(115, 100), _pt(140, 100)]
    # greedy takes the closest pair (115 -> 120, 5 px) and leaves 140 -> 100 (40 px > 25): 1 TP.
    # the assignment pairs 115 -> 100 (15 px) and 140 -> 120 (20 px): 2 TP, mean 17.5 px
    m = point_metrics(pred, truth, SIZE)
    assert (m.tp, m.fp, m.fn, m.mean_distance_px) == (2, 0, 0, 17.5)


def test_points_match_only_within_video_key_and_time():
    truth = [_pt(100, 100)]
    for other in (_pt(100, 100, t=1.1), _pt(100, 100, key="squares"), _pt(100, 100, video="w")):
        assert (point_metrics([other], truth, SIZE).tp, point_metrics([other], truth, SIZE).fp) == (0, 1)
    assert point_metrics([_pt(100, 100, t=1.0004)], truth, SIZE).tp == 1  # the same millisecond


def test_points_with_nothing_on_one_side():
    none_found = point_metrics([], [_pt(1, 1)], SIZE)  # no prediction: precision 1 by definition, recall 0
    assert (none_found.precision, none_found.recall, none_found.f1) == (1.0, 0.0, 0.0)
    no_truth = point_metrics([_pt(1, 1)], [], SIZE)  # no truth: recall 1 by definition, precision 0
    assert (no_truth.precision, no_truth.recall, no_truth.f1) == (0.0, 1.0, 0.0)
    nothing = point_metrics([], [], SIZE)
    assert (nothing.precision, nothing.recall, nothing.f1) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="frame size"):
        point_metrics([_pt(1, 1, video="x")], [_pt(1, 1, video="x")], SIZE)


# tracking: two objects, 10 frames each, far apart (their similarity to each other is 0)

def _tracks(video="v", ids=lambda t: ("A", "B"), dx=0.0, only=None):
    rows = []
    for t in range(10):
        for k, (x, y) in enumerate(((100.0, 100.0), (200.0, 300.0))):
            if only is None or k == only:
                rows.append(TrackPoint(video, t * 0.5, ids(t)[k], x + dx, y))
    return rows


def test_perfect_tracks():
    m = track_metrics(_tracks(ids=lambda t: (7, 8)), _tracks(), SIZE)  # any ids, consistently used
    assert (m.hota, m.deta, m.assa, m.idf1, m.mota, m.id_switches) == (1.0, 1.0, 1.0, 1.0, 1.0, 0)


def test_swapped_ids_halfway():
    m = track_metrics(_tracks(ids=lambda t: (1, 2) if t < 5 else (2, 1)), _tracks(), SIZE)
    # every point is found: DetA 1. Each true id shares 5 of its 10 frames with each predicted id:
    # AssA = 5 / (10 + 10 - 5) = 1/3, HOTA = sqrt(1 * 1/3). IDF1: best id pairing keeps 10 of 20:
    # IDTP 10, IDFP 10, IDFN 10 -> 10 / (10 + 5 + 5) = 1/2. Two switches at t=5: MOTA (20 - 2) / 20 = 0.9
    assert m.deta == pytest.approx(1.0)
    assert m.assa == pytest.approx(1 / 3) and m.hota == pytest.approx(math.sqrt(1 / 3))
    assert (m.idf1, m.mota, m.id_switches) == (pytest.approx(0.5), pytest.approx(0.9), 2)


def test_points_shifted_beyond_the_threshold_match_nothing():
    m = track_metrics(_tracks(dx=26), _tracks(), SIZE)  # 26 px > 25 px: similarity 0 everywhere
    # nothing matches: DetA 0, HOTA 0; MOTA (0 - 20 FP) / 20 true = -1
    assert (m.deta, m.hota, m.idf1, m.mota, m.tp, m.fp, m.fn) == (0.0, 0.0, 0.0, -1.0, 0, 20, 20)


def test_points_shifted_within_the_threshold_lower_only_hota():
    m = track_metrics(_tracks(dx=7), _tracks(), SIZE)
    # similarity 1 - 7/25 = 0.72: matched at HOTA's thresholds 0.05..0.70 (14 of 19), so DetA = AssA =
    # HOTA = 14/19; MOTA and IDF1 match any pair closer than 25 px: both 1
    assert m.hota == pytest.approx(14 / 19) and m.deta == pytest.approx(14 / 19)
    assert (m.mota, m.idf1) == (1.0, 1.0)


def test_a_missed_track():
    m = track_metrics(_tracks(only=0), _tracks(), SIZE)
    # 10 TP, 10 FN: DetA 10/20, AssA 1, HOTA sqrt(1/2); MOTA 10/20; IDF1 10 / (10 + 0 + 5) = 2/3
    assert m.deta == pytest.approx(0.5) and m.assa == pytest.approx(1.0)
    assert m.hota == pytest.approx(math.sqrt(0.5))
    assert (m.mota, m.idf1) == (pytest.approx(0.5), pytest.approx(2 / 3))


def test_videos_combine_as_trackeval_does():
    swapped = _tracks("w", ids=lambda t: (1, 2) if t < 5 else (2, 1))
    m = track_metrics(_tracks("v") + swapped, _tracks("v") + _tracks("w"), SIZE)
    # counts add up: IDTP 20 + 10, IDFP = IDFN = 0 + 10 -> IDF1 30/40; MOTA (40 - 2) / 40.
    # AssA is weighted by matches: (20 * 1 + 20 * 1/3) / 40 = 2/3, DetA 1, HOTA sqrt(2/3)
    assert (m.idf1, m.mota, m.id_switches) == (pytest.approx(0.75), pytest.approx(0.95), 2)
    assert m.assa == pytest.approx(2 / 3) and m.hota == pytest.approx(math.sqrt(2 / 3))
    assert m.per_video["v"].idf1 == 1.0 and m.per_video["w"].idf1 == pytest.approx(0.5)


def test_a_track_id_twice_in_one_frame_is_refused():
    twice = _tracks(ids=lambda t: ("A", "A"))
    with pytest.raises(ValueError, match="twice"):
        track_metrics(twice, _tracks(), SIZE)


# search

def test_search_recall_at_k_and_mrr():
    eleven = [Span("v1", 0, 1)] * 10 + [Span("v1", 95, 100)]
    results = [
        # relevant at rank 2; it overlaps the first of two occurrences
        ([Span("v1", 0, 5), Span("v2", 10, 20)], {Span("v2", 15, 16), Span("v2", 50, 60)}),
        (eleven, {Span("v1", 100, 100)}),  # an instant, touched by the 11th hit only
        ([Span("v3", 0, 1)], {Span("v3", 1, 2)}),  # touching ranges overlap: rank 1
        ([Span("v9", 0, 10)], {Span("v8", 0, 10)}),  # the right time in the wrong video
        ([Span("v1", 0, 10)], set()),  # nothing true: not scored
    ]
    m = search_metrics(results)
    # 4 scored queries; found in the top 10 by the 1st and 3rd: 2/4. Reciprocal ranks 1/2, 1/11, 1, 0.
    # occurrences: 1 of 2, 0 of 1, 1 of 1, 0 of 1 -> 2/5
    assert (m.queries, m.without_truth, m.k) == (4, 1, 10)
    assert m.recall_at_k == 0.5 and m.occurrences_at_k == pytest.approx(2 / 5)
    assert m.mrr == pytest.approx((1 / 2 + 1 / 11 + 1 + 0) / 4)
    assert search_metrics(results, k=11).recall_at_k == 0.75  # the 2nd query counts at k = 11
    assert search_metrics([]).recall_at_k is None
