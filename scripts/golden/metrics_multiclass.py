#!/usr/bin/env python3
"""Expected values for the N-class tests of crates/data/src/metrics.rs, from scikit-learn.

Run with a Python that has numpy and scikit-learn (checked with numpy 2.4, scikit-learn 1.9):

    python scripts/golden/metrics_multiclass.py

and paste its output into the `golden` module of the tests in metrics.rs. The inputs below
are the same as there; probabilities go through float32 first, as the Rust code holds them.

Conventions checked here, as metrics.rs states them:
- prediction: the class of highest probability, the lowest id on a tie (np.argmax);
- macro-F1: scikit-learn's `f1_score(average="macro")`, over the classes that occur in
  the gold labels or the predictions;
- AP per class: one-vs-rest `average_precision_score` of that class's probability; macro AP
  the mean over the classes with at least one gold example (scikit-learn cannot score a
  class without one);
- PR curve of a class: `precision_recall_curve` one-vs-rest, as (recall, precision) points.
"""

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_recall_fscore_support,
)

# Four classes, every one with gold examples; ties within rows (argmax) and columns (AP).
A_GOLD = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 2]
A_PROBS = [
    [0.70, 0.10, 0.10, 0.10],
    [0.20, 0.50, 0.20, 0.10],
    [0.10, 0.20, 0.60, 0.10],
    [0.25, 0.25, 0.10, 0.40],
    [0.40, 0.40, 0.10, 0.10],
    [0.30, 0.20, 0.10, 0.40],
    [0.10, 0.50, 0.30, 0.10],
    [0.10, 0.10, 0.40, 0.40],
    [0.20, 0.60, 0.10, 0.10],
    [0.10, 0.70, 0.10, 0.10],
    [0.10, 0.10, 0.70, 0.10],
    [0.40, 0.10, 0.30, 0.20],
]

# Four classes: class 2 is predicted but never gold, class 3 neither.
B_GOLD = [0, 1, 0, 1, 1, 0]
B_PROBS = [
    [0.60, 0.30, 0.05, 0.05],
    [0.20, 0.30, 0.45, 0.05],
    [0.30, 0.30, 0.35, 0.05],
    [0.10, 0.80, 0.05, 0.05],
    [0.50, 0.40, 0.05, 0.05],
    [0.45, 0.45, 0.05, 0.05],
]


def rust(values):
    return "[" + ", ".join(repr(float(v)) for v in values) + "]"


def report(name, gold, probs):
    probs = np.asarray(probs, dtype=np.float32).astype(np.float64)
    gold = np.asarray(gold)
    c = probs.shape[1]
    pred = probs.argmax(axis=1)
    classes = list(range(c))
    p, r, f, s = precision_recall_fscore_support(
        gold, pred, labels=classes, zero_division=0
    )
    onehot = np.eye(c, dtype=int)[gold]
    present = [k for k in classes if onehot[:, k].any()]
    ap = [average_precision_score(onehot[:, k], probs[:, k]) for k in present]
    print(f"// {name}: scikit-learn, scripts/golden/metrics_multiclass.py")
    print(f"pub const {name}_PRED: [u32; {len(pred)}] = {list(map(int, pred))};")
    print(f"pub const {name}_ACC: f64 = {accuracy_score(gold, pred)!r};")
    print(f"pub const {name}_MACRO_F1: f64 = {f1_score(gold, pred, average='macro', zero_division=0)!r};")
    print(f"pub const {name}_PRECISION: [f64; {c}] = {rust(p)};")
    print(f"pub const {name}_RECALL: [f64; {c}] = {rust(r)};")
    print(f"pub const {name}_F1: [f64; {c}] = {rust(f)};")
    print(f"pub const {name}_SUPPORT: [usize; {c}] = {list(map(int, s))};")
    cm = confusion_matrix(gold, pred, labels=classes)
    print(f"pub const {name}_CONFUSION: [[usize; {c}]; {c}] = {[list(map(int, row)) for row in cm]};")
    print(f"/// AP of each class with a gold example: classes {present}.")
    print(f"pub const {name}_CLASS_AP: [f64; {len(present)}] = {rust(ap)};")
    print(f"pub const {name}_MACRO_AP: f64 = {float(np.mean(ap))!r};")
    if len(present) == c:
        # All classes present: scikit-learn's own multiclass macro AP agrees.
        assert np.isclose(np.mean(ap), average_precision_score(gold, probs, average="macro"))
    k = present[-1]
    precision, recall, _ = precision_recall_curve(onehot[:, k], probs[:, k])
    print(f"/// One-vs-rest PR curve of class {k} as (recall, precision).")
    print(f"pub const {name}_PR_CLASS: u32 = {k};")
    points = ", ".join(f"({float(x)!r}, {float(y)!r})" for x, y in zip(recall, precision))
    print(f"pub const {name}_PR: [(f64, f64); {len(recall)}] = [{points}];")
    print()


report("A", A_GOLD, A_PROBS)
report("B", B_GOLD, B_PROBS)
