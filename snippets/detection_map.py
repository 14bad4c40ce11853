r"""Detection mAP from scratch: IoU, greedy matching (VOC and COCO rules), the PR curve, and
the three ways of turning it into one number: VOC2007 11-point, VOC2010+ all-point
(area under the precision envelope) and COCO 101-point interpolation.

Follows the reference code: py-faster-rcnn's ``voc_eval.py`` (port of the VOC devkit) and
pycocotools' ``cocoeval.py`` (``evaluateImg`` / ``accumulate``), threshold arrays included.
"""

# --8<-- [start:imports]
import matplotlib.pyplot as plt
import numpy as np

# --8<-- [end:imports]


# --8<-- [start:iou]
def iou_matrix(dets: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """(D, 4), (G, 4) boxes as x1, y1, x2, y2 -> (D, G) IoU. Continuous coordinates, as in
    pycocotools; the VOC devkit adds 1 to every width and height (integer pixels)."""
    dets, gts = dets.reshape(-1, 4), gts.reshape(-1, 4)
    x1 = np.maximum(dets[:, None, 0], gts[None, :, 0])
    y1 = np.maximum(dets[:, None, 1], gts[None, :, 1])
    x2 = np.minimum(dets[:, None, 2], gts[None, :, 2])
    y2 = np.minimum(dets[:, None, 3], gts[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)  # |A ∩ B|
    area_d = (dets[:, 2] - dets[:, 0]) * (dets[:, 3] - dets[:, 1])
    area_g = (gts[:, 2] - gts[:, 0]) * (gts[:, 3] - gts[:, 1])
    return inter / (area_d[:, None] + area_g[None, :] - inter)  # |A ∩ B| / |A ∪ B|


# --8<-- [end:iou]


# --8<-- [start:match]
TP, FP, IGNORED = 1, 0, -1


def match_image(det_boxes, scores, gt_boxes, *, iou_thr=0.5, difficult=None, rule="voc"):
    """Label one image's detections of one class, highest score first: TP, FP or IGNORED.

    rule="voc": take the GT with the largest IoU; if it is already taken, FP (voc_eval.py).
    rule="coco": take the best GT among those still free (cocoeval.py's evaluateImg).
    A detection whose GT is "difficult" is IGNORED: neither TP nor FP (VOC; COCO's crowd
    and area-range ignores are not modelled here).
    Returns (scores sorted high to low, labels in that order).
    """
    order = np.argsort(-np.asarray(scores), kind="mergesort")  # stable, as pycocotools
    ious = iou_matrix(np.asarray(det_boxes, float), np.asarray(gt_boxes, float))[order]
    difficult = np.zeros(ious.shape[1], bool) if difficult is None else np.asarray(difficult)
    taken = np.zeros(ious.shape[1], bool)
    labels = np.full(len(order), FP)
    for d, row in enumerate(ious):  # greedy: earlier (higher-score) detections choose first
        if rule == "coco":
            row = np.where(taken, -1.0, row)  # free GTs only
        if row.size == 0 or row.max() < iou_thr:
            continue  # no GT overlaps enough: FP
        g = int(np.argmax(row))
        if difficult[g]:
            labels[d] = IGNORED  # matched a "difficult" GT: does not count
        elif not taken[g]:
            labels[d], taken[g] = TP, True
        # else: the best GT was already matched: a duplicate, FP
    return np.asarray(scores, float)[order], labels


# --8<-- [end:match]


# --8<-- [start:pr]
def pr_curve(scores, labels, n_pos: int):
    """All images' detections of one class -> recall and precision after each detection."""
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    labels = np.asarray(labels)[order]
    labels = labels[labels != IGNORED]
    tp = np.cumsum(labels == TP)  # TP among the top k detections
    fp = np.cumsum(labels == FP)
    recall = tp / n_pos  # n_pos: GTs that are not "difficult"
    precision = tp / np.maximum(tp + fp, 1)
    return recall, precision


# --8<-- [end:pr]


# --8<-- [start:ap]
VOC07_THRS = np.arange(0.0, 1.1, 0.1)  # voc_eval.py's 11 recall levels (float: 0.30000000000000004)
COCO_THRS = np.linspace(0.0, 1.0, 101)  # cocoeval.py's recThrs


def envelope(precision: np.ndarray) -> np.ndarray:
    """p_interp at each point: the largest precision at this or any later (higher-recall) point."""
    return np.maximum.accumulate(precision[::-1])[::-1]


def ap_voc07(recall, precision) -> float:
    r"""$\frac{1}{11}\sum_{t} \max_{r \ge t} p(r)$, t in {0, 0.1, ..., 1}; 0 if no recall ≥ t."""
    return sum(precision[recall >= t].max(initial=0.0) for t in VOC07_THRS) / len(VOC07_THRS)


def ap_all_point(recall, precision) -> float:
    r"""$\sum_k (r_k - r_{k-1})\, p_{\text{interp}}(r_k)$ over the points where recall changes."""
    mrec = np.concatenate(([0.0], recall, [1.0]))  # sentinels, as voc_eval.py
    mpre = envelope(np.concatenate(([0.0], precision, [0.0])))
    i = np.flatnonzero(mrec[1:] != mrec[:-1])  # recall steps
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def ap_coco101(recall, precision) -> float:
    r"""$\frac{1}{101}\sum_{t} p_{\text{interp}}$ at the first point with recall ≥ t; 0 past the end."""
    idx = np.searchsorted(recall, COCO_THRS, side="left")  # first k with recall[k] >= t
    env = envelope(precision)
    q = [env[k] if k < len(recall) else 0.0 for k in idx]
    return float(np.mean(q))


# --8<-- [end:ap]


# --8<-- [start:evaluate]
def evaluate(images, *, iou_thr=0.5, rule="voc"):
    """images: list of (det_boxes, scores, gt_boxes, difficult or None). -> recall, precision."""
    all_scores, all_labels, n_pos = [], [], 0
    for det_boxes, scores, gt_boxes, difficult in images:
        s, lab = match_image(det_boxes, scores, gt_boxes, iou_thr=iou_thr,
                             difficult=difficult, rule=rule)  # fmt: skip
        all_scores.append(s)
        all_labels.append(lab)
        n_pos += len(gt_boxes) - (0 if difficult is None else int(np.sum(difficult)))
    return pr_curve(np.concatenate(all_scores), np.concatenate(all_labels), n_pos)


def coco_ap(images) -> tuple[float, np.ndarray]:
    """AP@[.5:.95]: 101-point AP with COCO matching at IoU 0.50, 0.55, ..., 0.95, averaged."""
    iou_thrs = np.linspace(0.5, 0.95, 10)  # cocoeval.py's iouThrs
    aps = np.array([ap_coco101(*evaluate(images, iou_thr=t, rule="coco")) for t in iou_thrs])
    return float(aps.mean()), aps


# --8<-- [end:evaluate]


# --8<-- [start:data]
def make_dataset(n_images=200, seed=0):
    """A synthetic detector on 100×100 images: jittered hits, duplicates, spurious boxes."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n_images):
        n_gt = rng.integers(1, 4)
        xy = rng.uniform(0, 60, (n_gt, 2))
        gts = np.hstack([xy, xy + rng.uniform(15, 40, (n_gt, 2))])  # x1, y1, x2, y2
        dets, scores = [], []
        for g in gts:
            for _ in range(rng.choice(3, p=[0.15, 0.7, 0.15])):  # missed, found, found twice
                wh = g[2:] - g[:2]
                dets.append(g + rng.normal(0, 0.08, 4) * np.tile(wh, 2))  # jitter ∝ box size
                scores.append(rng.beta(5, 2))  # true hits: mostly high scores
        for _ in range(rng.poisson(0.8)):  # spurious boxes: mostly low scores
            xy = rng.uniform(0, 70, 2)
            dets.append(np.concatenate([xy, xy + rng.uniform(10, 30, 2)]))
            scores.append(rng.beta(2, 4))
        images.append((np.array(dets).reshape(-1, 4), np.array(scores), gts, None))
    return images


# --8<-- [end:data]


# --8<-- [start:plot]
def plot_pr(recall, precision):
    """Raw PR curve, its envelope, and the points the 11- and 101-point rules read."""
    fig, ax = plt.subplots(figsize=(5.0, 4.4), layout="constrained")
    ax.plot(recall, precision, color="C7", lw=1.5, zorder=3, label="原始 precision")
    # p_interp(r): one step per recall level (first point of each), then 0 past the last recall
    env, first = envelope(precision), np.r_[True, recall[1:] != recall[:-1]]
    ax.step(np.r_[0, recall[first], 1], np.r_[env[0], env[first], 0], where="pre",
            color="C1", lw=3, alpha=0.7, label="包络（全点 AP = 面积）")  # fmt: skip
    marks = ((COCO_THRS, ".", 4, "C0", "COCO 101 点"), (VOC07_THRS, "o", 7, "C3", "VOC07 11 点"))
    for thrs, mark, size, color, name in marks:
        idx = np.searchsorted(recall, thrs, side="left")
        q = np.array([env[k] if k < len(recall) else 0.0 for k in idx])
        ax.plot(thrs, q, mark, ms=size, ls="none", color=color, zorder=4, label=name)
    ax.set(xlim=(0, 1.02), ylim=(0, 1.05), xlabel="召回率 recall", ylabel="精确率 precision")
    ax.set_title("PR 曲线、包络与两种插值点（IoU 0.5）", fontsize=11)
    fig.legend(loc="outside lower center", ncols=2, fontsize=10)
    return fig


# --8<-- [end:plot]


if __name__ == "__main__":
    rec, prec = evaluate(make_dataset())
    print(ap_voc07(rec, prec), ap_all_point(rec, prec), ap_coco101(rec, prec))
    print(coco_ap(make_dataset())[0])
