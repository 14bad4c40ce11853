"""Tests for snippets/detection_map.py against hand-computed answers and exact-rational oracles.

The AP oracle works in fractions.Fraction straight from the definitions: interpolated precision
p_interp(r) = max{precision_k : recall_k >= r} (0 if none), compared exactly between the
float recalls tp/n_pos and the reference code's float thresholds (as both references do:
recall 2/5 is the double 0.4, which equals the threshold 0.4 although 2/5 < that double), and the all-point AP as the
exact integral of p_interp over [0, 1]. The matching oracle uses scalar rational IoU.
"""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.detection_map import (
    COCO_THRS,
    FP,
    IGNORED,
    TP,
    VOC07_THRS,
    ap_all_point,
    ap_coco101,
    ap_voc07,
    coco_ap,
    envelope,
    evaluate,
    iou_matrix,
    make_dataset,
    match_image,
    plot_pr,
    pr_curve,
)

# ---------- oracles ----------
# The reference code's threshold arrays, written out here rather than imported from the module.
REF_VOC07_THRS = np.arange(0.0, 1.1, 0.1)  # voc_eval.py: `for t in np.arange(0., 1.1, 0.1)`
REF_COCO_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1)  # Params.recThrs


def exact_pr(labels, n_pos):
    """Exact recall and precision after each of the (already sorted) detections."""
    tp = fp = 0
    rec, prec = [], []
    for lab in labels:
        tp += lab == TP
        fp += lab == FP
        rec.append(Fraction(tp / n_pos))  # the float recall the references compare, exactly
        prec.append(Fraction(tp, tp + fp))
    return rec, prec


def p_interp(rec, prec, r):
    return max((p for q, p in zip(rec, prec, strict=True) if q >= r), default=Fraction(0))


def oracle_points(rec, prec, thresholds):
    ts = [Fraction(float(t)) for t in thresholds]  # the float thresholds, exactly
    return sum(p_interp(rec, prec, t) for t in ts) / len(ts)


def oracle_area(rec, prec):
    """∫_0^1 p_interp(r) dr: p_interp is constant on each (a, b] between recall levels."""
    cuts = sorted({Fraction(0), Fraction(1), *rec})
    return sum((b - a) * p_interp(rec, prec, b) for a, b in zip(cuts, cuts[1:], strict=False))


def scalar_iou(a, b):
    a, b = [Fraction(v) for v in a], [Fraction(v) for v in b]
    w = max(Fraction(0), min(a[2], b[2]) - max(a[0], b[0]))
    h = max(Fraction(0), min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


# ---------- IoU ----------
def test_iou_hand_values():
    """Overlapping 2×2 squares shifted by 1: IoU 1/7; identical 1; disjoint 0."""
    d = np.array([[0, 0, 2, 2], [5, 5, 6, 6]], float)
    g = np.array([[1, 1, 3, 3], [0, 0, 2, 2]], float)
    np.testing.assert_allclose(iou_matrix(d, g), [[1 / 7, 1], [0, 0]], atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(*[st.integers(0, 20)] * 2, *[st.integers(1, 15)] * 2), min_size=2, max_size=6
    )
)
def test_iou_matches_rational_oracle(raw):
    """Every entry of iou_matrix equals the exact rational IoU of the two boxes."""
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in raw], float)
    m = iou_matrix(boxes[:3], boxes[3:] if len(boxes) > 3 else boxes[:1])
    for i, a in enumerate(boxes[:3]):
        for j, b in enumerate(boxes[3:] if len(boxes) > 3 else boxes[:1]):
            assert m[i, j] == pytest.approx(float(scalar_iou(a, b)), abs=1e-12)


# ---------- matching ----------
def test_duplicates_are_false_positives():
    """Two detections on one GT: the higher score is TP, the other FP (both rules)."""
    gt = np.array([[0, 0, 10, 10]], float)
    dets = np.array([[0, 0, 10, 9], [0, 0, 10, 10]], float)  # the exact box scores lower
    for rule in ("voc", "coco"):
        s, lab = match_image(dets, [0.6, 0.9], gt, rule=rule)
        assert s.tolist() == [0.9, 0.6] and lab.tolist() == [TP, FP]


def test_voc_and_coco_rules_differ_on_taken_gt():
    """The second detection's best GT is taken: VOC calls it FP, COCO moves on to a free GT."""
    gts = np.array([[0, 0, 10, 10], [3, 0, 13, 10]], float)
    dets = np.array([[0, 0, 10, 10], [1, 0, 11, 10]], float)  # IoU 9/11 with g0, 2/3 with g1
    assert match_image(dets, [0.9, 0.8], gts, rule="voc")[1].tolist() == [TP, FP]
    assert match_image(dets, [0.9, 0.8], gts, rule="coco")[1].tolist() == [TP, TP]


def test_threshold_is_inclusive_and_empty_gt():
    """IoU exactly at the threshold counts (≥); an image without GTs makes every detection FP."""
    gt = np.array([[0, 0, 10, 10]], float)
    assert match_image(np.array([[0, 0, 10, 5]], float), [1.0], gt)[1].tolist() == [TP]
    lab = match_image(np.array([[0, 0, 1, 1]], float), [1.0], np.zeros((0, 4)))[1]
    assert lab.tolist() == [FP]


def test_difficult_is_ignored():
    """A hit on a difficult GT is neither TP nor FP, and the GT is not in n_pos."""
    gts = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    dets = np.array([[20, 20, 30, 30], [0, 0, 10, 10], [50, 50, 60, 60]], float)
    image = (dets, np.array([0.9, 0.8, 0.7]), gts, np.array([True, False]))
    assert match_image(*image[:3], difficult=image[3])[1].tolist() == [TP, IGNORED, FP]
    rec, prec = evaluate([image])
    assert rec.tolist() == [1.0, 1.0] and prec.tolist() == [1.0, 0.5]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3), st.floats(0, 1)), max_size=12),
    st.sampled_from(["voc", "coco"]),
)
def test_matching_against_oracle_on_separated_gts(hits, rule):
    """GTs far apart: TP = first detection (by score) on a GT with exact IoU ≥ 0.5, else FP."""
    gts = np.array([[30 * i, 0, 30 * i + 20, 20] for i in range(5)], float)
    shrink = [0, 4, 6, 10]  # IoU 1, 0.8, 0.7, 0.5 (hits the threshold exactly)
    shrink.append(12)  # IoU 0.4: below
    dets = np.array([[30 * g, 0, 30 * g + 20 - shrink[k], 20] for g, k, _ in hits]).reshape(-1, 4)
    scores = np.array([s for *_, s in hits])
    s, lab = match_image(dets, scores, gts, rule=rule)
    order = sorted(range(len(hits)), key=lambda i: -scores[i])  # Python's sort is stable too
    seen, want = set(), []
    for i in order:
        g = hits[i][0]
        ok = scalar_iou(dets[i], gts[g]) >= Fraction(1, 2) and g not in seen
        seen |= {g} if ok else set()
        want.append(TP if ok else FP)
    assert lab.tolist() == want and s.tolist() == [scores[i] for i in order]


# ---------- PR curve and AP ----------
def test_hand_computed_two_gt_case():
    """2 GTs, detections TP, FP, TP: AP 5/6 (all-point), 28/33 (11-point), 253/303 (101)."""
    rec, prec = pr_curve([0.9, 0.8, 0.7], [TP, FP, TP], n_pos=2)
    np.testing.assert_allclose(prec, [1, 0.5, 2 / 3])
    assert ap_all_point(rec, prec) == pytest.approx(5 / 6, abs=1e-15)
    assert ap_voc07(rec, prec) == pytest.approx(28 / 33, abs=1e-15)
    assert ap_coco101(rec, prec) == pytest.approx(253 / 303, abs=1e-15)


def test_perfect_and_all_wrong():
    """Perfect ranking gives 1.0 under all three rules; only FPs give 0."""
    for labels, want in (([TP] * 4, 1.0), ([FP] * 4, 0.0)):
        rec, prec = pr_curve([0.9, 0.8, 0.7, 0.6], labels, n_pos=4)
        for ap in (ap_voc07, ap_all_point, ap_coco101):
            assert ap(rec, prec) == pytest.approx(want, abs=1e-15)


def test_float_threshold_pitfall():
    """Recall 19/20 reaches 0.95 but not linspace's 0.9500000000000001: 95 of 101 points."""
    rec, prec = pr_curve(np.linspace(1, 0, 19), [TP] * 19, n_pos=20)
    assert ap_all_point(rec, prec) == pytest.approx(0.95)
    assert ap_coco101(rec, prec) == pytest.approx(95 / 101)
    assert ap_voc07(rec, prec) == pytest.approx(10 / 11)


def test_threshold_arrays_are_the_reference_floats():
    """Bit for bit the references' arrays: 0.30000000000000004 and 0.9500000000000001 included."""
    assert VOC07_THRS.tolist() == REF_VOC07_THRS.tolist() and len(VOC07_THRS) == 11
    assert COCO_THRS.tolist() == REF_COCO_THRS.tolist() and len(COCO_THRS) == 101
    assert VOC07_THRS[3] == 0.30000000000000004 and COCO_THRS[95] == 0.9500000000000001
    rec, prec = pr_curve([0.9, 0.8, 0.7], [TP] * 3, n_pos=10)  # recall stops at exactly 3/10
    assert ap_voc07(rec, prec) == pytest.approx(3 / 11)  # t = 0, 0.1, 0.2 only: 0.3 is missed
    assert ap_coco101(rec, prec) == pytest.approx(31 / 101)  # 0.3 = 30/100 is reached here


def test_ties_keep_input_order():
    """Equal scores keep their input order (stable sort, as pycocotools), over many ties."""
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 3, 60) / 2  # 60 detections, 3 distinct scores
    labels = rng.choice([TP, FP], 60)
    order = sorted(range(60), key=lambda i: -scores[i])  # Python's sort is stable
    rec, prec = pr_curve(scores, labels, n_pos=60)
    er, ep = exact_pr([labels[i] for i in order], 60)
    assert rec.tolist() == [float(r) for r in er] and prec.tolist() == [float(p) for p in ep]
    gts = np.array([[30 * i, 0, 30 * i + 20, 20] for i in range(60)], float)
    dets = gts[np.arange(60) // 2]  # two identical boxes on each of GTs 0..29
    s, lab = match_image(dets, scores, gts)
    seen, want = set(), []
    for i in order:  # the first of each pair in the stable order is the TP
        want.append(FP if i // 2 in seen else TP)
        seen.add(i // 2)
    assert lab.tolist() == want and s.tolist() == [scores[i] for i in order]


def test_pr_curve_sorts_across_images_and_drops_ignored():
    """Scores from several images are merged high to low; IGNORED entries vanish."""
    rec, prec = pr_curve([0.1, 0.9, 0.5, 0.7], [TP, FP, IGNORED, TP], n_pos=4)
    assert rec.tolist() == [0, 0.25, 0.5] and prec.tolist() == [0, 0.5, 2 / 3]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([TP, FP]), min_size=1, max_size=30), st.integers(0, 6))
def test_ap_against_exact_definitions(labels, extra_gt):
    """All three APs equal their exact-rational definitions on random TP/FP sequences."""
    n_pos = labels.count(TP) + extra_gt or 1
    scores = np.linspace(1, 0, len(labels))
    rec, prec = pr_curve(scores, labels, n_pos)
    er, ep = exact_pr(labels, n_pos)
    np.testing.assert_allclose(envelope(prec), [float(max(ep[k:])) for k in range(len(ep))])
    assert ap_voc07(rec, prec) == pytest.approx(
        float(oracle_points(er, ep, REF_VOC07_THRS)), abs=1e-12
    )
    assert ap_coco101(rec, prec) == pytest.approx(
        float(oracle_points(er, ep, REF_COCO_THRS)), abs=1e-12
    )
    assert ap_all_point(rec, prec) == pytest.approx(float(oracle_area(er, ep)), abs=1e-12)


def test_coco_ap_over_iou_thresholds():
    """Every detection at IoU 0.72: TP at 0.50…0.70, FP above, so AP@[.5:.95] = 5/10."""
    images = [(np.array([[0, 0, 10, 7.2]]), np.array([0.9]), np.array([[0, 0, 10, 10.0]]), None)]
    mean, aps = coco_ap(images)
    assert aps.tolist() == [1.0] * 5 + [0.0] * 5 and mean == pytest.approx(0.5)


def test_dataset_and_figure():
    """The synthetic set is seeded; the figure draws the raw curve, envelope and both grids;
    the area under the drawn envelope is the all-point AP."""
    a, b = make_dataset(5, seed=3), make_dataset(5, seed=3)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b, strict=True))
    rec, prec = evaluate(make_dataset(20))
    fig = plot_pr(rec, prec)
    assert len(fig.axes[0].lines) == 4
    x, y = fig.axes[0].lines[1].get_xdata(), fig.axes[0].lines[1].get_ydata()  # the envelope
    assert x[-1] == 1 and y[-1] == 0  # p_interp is 0 past the last recall
    assert np.sum(np.diff(x) * y[1:]) == pytest.approx(ap_all_point(rec, prec))  # area = AP
    assert fig.get_figwidth() <= 5.5
