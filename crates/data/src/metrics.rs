//! Classification metrics over C classes as scikit-learn computes them, from per-class
//! probabilities (row-major `[n, C]`) and gold label ids.
//!
//! - prediction: the class of highest probability, the lowest id on a tie;
//! - accuracy, the C×C confusion matrix (rows gold, columns predicted), per-class
//!   precision, recall, F1 and support (`precision_recall_fscore_support`);
//! - macro-F1 (`f1_score(average="macro")`): the mean F1 over the classes that occur
//!   among the gold labels or the predictions;
//! - per-class average precision, one-vs-rest (`average_precision_score` of that class's
//!   probability: `Σ (Rₙ − Rₙ₋₁) · Pₙ` over distinct thresholds, tied scores forming one
//!   threshold), and the precision–recall curve (`precision_recall_curve`).
//!
//! The headline `f1` and `ap` are those of label 1 for two classes, as for SST-2, and
//! the macro averages otherwise. No value is ever NaN: undefined ratios count as 0, and a
//! class without gold examples has no AP (scikit-learn would warn and give nan) and is
//! left out of the macro AP.

pub use crate::pr::{average_precision, pr_curve};

/// Precision, recall, F1 and support of one class.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassMetrics {
    /// Share of the predictions of this class that are right (0 without any).
    pub precision: f64,
    /// Share of the gold examples of this class predicted as it (0 without any).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// Gold examples of this class.
    pub support: usize,
}

/// Metrics of one evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    /// Number of examples.
    pub n: usize,
    /// Share of predictions equal to the gold label.
    pub acc: f64,
    /// Two classes: average precision of P(label 1), 0 without gold 1s. More: the mean of
    /// `class_ap` over the classes that have one (0 if none has).
    pub ap: f64,
    /// Two classes: F1 of label 1. More: `macro_f1`.
    pub f1: f64,
    /// Mean F1 over the classes that occur among the gold labels or the predictions.
    pub macro_f1: f64,
    /// Per class, in id order.
    pub classes: Vec<ClassMetrics>,
    /// One-vs-rest average precision per class; `None` for a class without gold examples.
    pub class_ap: Vec<Option<f64>>,
    /// Counts indexed `[gold][pred]`, C×C.
    pub confusion: Vec<Vec<usize>>,
}

impl Metrics {
    /// Computes all metrics from `probs`, row-major `[n, num_classes]` (any scores that
    /// rank classes within a row and examples within a column will do), and gold ids.
    ///
    /// # Panics
    /// If `num_classes` is 0, `probs` does not hold `num_classes` values per gold label,
    /// or a gold id is not below `num_classes`.
    pub fn compute(probs: &[f32], num_classes: usize, gold: &[u32]) -> Metrics {
        assert!(
            num_classes > 0 && probs.len() == gold.len() * num_classes,
            "Metrics::compute: {} probabilities for {} labels and {num_classes} classes",
            probs.len(),
            gold.len()
        );
        if let Some(bad) = gold.iter().find(|&&g| g as usize >= num_classes) {
            panic!("Metrics::compute: gold label {bad} with {num_classes} classes");
        }
        let n = gold.len();
        let preds = predictions(probs, num_classes);
        let mut confusion = vec![vec![0usize; num_classes]; num_classes];
        for (&p, &g) in preds.iter().zip(gold) {
            confusion[g as usize][p as usize] += 1;
        }
        let correct: usize = (0..num_classes).map(|k| confusion[k][k]).sum();
        let classes = class_metrics(&confusion);
        let class_ap: Vec<Option<f64>> = (0..num_classes)
            .map(|k| {
                let is_k = one_vs_rest(gold, k as u32);
                is_k.contains(&1)
                    .then(|| average_precision(&class_scores(probs, num_classes, k), &is_k))
            })
            .collect();
        let macro_f1 = macro_f1(&confusion);
        let (ap, f1) = if num_classes == 2 {
            let ap = average_precision(&class_scores(probs, 2, 1), gold);
            (ap, classes[1].f1)
        } else {
            let present: Vec<f64> = class_ap.iter().flatten().copied().collect();
            let ap = if present.is_empty() {
                0.0
            } else {
                present.iter().sum::<f64>() / present.len() as f64
            };
            (ap, macro_f1)
        };
        Metrics {
            n,
            acc: crate::pr::ratio(correct, n),
            ap,
            f1,
            macro_f1,
            classes,
            class_ap,
            confusion,
        }
    }

    /// Number of classes C.
    pub fn num_classes(&self) -> usize {
        self.confusion.len()
    }
}

/// Per-class precision, recall, F1 and support from a C×C confusion matrix
/// (`[gold][pred]`).
pub fn class_metrics(confusion: &[Vec<usize>]) -> Vec<ClassMetrics> {
    (0..confusion.len())
        .map(|k| {
            let tp = confusion[k][k];
            let support: usize = confusion[k].iter().sum();
            let predicted: usize = confusion.iter().map(|row| row[k]).sum();
            ClassMetrics {
                precision: crate::pr::ratio(tp, predicted),
                recall: crate::pr::ratio(tp, support),
                f1: crate::pr::ratio(2 * tp, support + predicted),
                support,
            }
        })
        .collect()
}

/// Macro-F1 from a C×C confusion matrix: the mean F1 over the classes that occur among
/// the gold labels or the predictions (scikit-learn's default label set); 0 when none do.
pub fn macro_f1(confusion: &[Vec<usize>]) -> f64 {
    let f1: Vec<f64> = class_metrics(confusion)
        .iter()
        .enumerate()
        .filter(|(k, c)| c.support > 0 || confusion.iter().any(|row| row[*k] > 0))
        .map(|(_, c)| c.f1)
        .collect();
    if f1.is_empty() {
        0.0
    } else {
        f1.iter().sum::<f64>() / f1.len() as f64
    }
}

/// Class probabilities from one row of logits: a softmax over C ≥ 2 logits, and
/// `[1 − σ(z), σ(z)]` for a single logit `z` (a model trained with binary cross-entropy).
pub fn probabilities(logits: &[f32]) -> Vec<f32> {
    if let [z] = logits {
        let p = 1.0 / (1.0 + (-z).exp());
        return vec![1.0 - p, p];
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|&v| (v - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.iter().map(|&v| v / sum).collect()
}

/// The first index of the largest value of `row` (0 for an empty row; NaN never wins).
pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}

/// The predicted class of each row of row-major `[n, num_classes]` scores: the highest,
/// the lowest id on a tie.
pub fn predictions(probs: &[f32], num_classes: usize) -> Vec<u32> {
    probs
        .chunks(num_classes.max(1))
        .map(|row| {
            (0..row.len())
                .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
                .unwrap_or(0) as u32
        })
        .collect()
}

/// Column `class` of row-major `[n, num_classes]` scores.
pub fn class_scores(probs: &[f32], num_classes: usize, class: usize) -> Vec<f32> {
    probs
        .chunks(num_classes.max(1))
        .map(|row| row[class])
        .collect()
}

/// The one-vs-rest precision–recall curve of `class` (see [`pr_curve`]).
///
/// # Panics
/// If `probs` does not hold `num_classes` values per gold label.
pub fn class_pr_curve(
    probs: &[f32],
    num_classes: usize,
    gold: &[u32],
    class: u32,
) -> Vec<(f64, f64)> {
    pr_curve(
        &class_scores(probs, num_classes, class as usize),
        &one_vs_rest(gold, class),
    )
}

/// 1 where the gold label is `class`, else 0.
fn one_vs_rest(gold: &[u32], class: u32) -> Vec<u32> {
    gold.iter().map(|&g| u32::from(g == class)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// Two-class probabilities `[1 − s, s]` from scores of label 1.
    fn binary(scores: &[f32]) -> Vec<f32> {
        scores.iter().flat_map(|&s| [1.0 - s, s]).collect()
    }

    #[test]
    fn degenerate_label_sets() {
        let m = Metrics::compute(&[], 2, &[]);
        assert_eq!(
            (m.n, m.acc, m.ap, m.f1, m.macro_f1),
            (0, 0.0, 0.0, 0.0, 0.0)
        );
        assert_eq!(m.confusion, vec![vec![0, 0]; 2]);
        let m = Metrics::compute(&[], 5, &[]);
        assert_eq!((m.ap, m.f1), (0.0, 0.0));
        assert_eq!(m.class_ap, vec![None; 5]);
    }

    #[test]
    fn two_classes_as_before() {
        let labels = [1, 1, 1, 0, 0];
        let scores = [0.9, 0.2, 0.6, 0.7, 0.1];
        let m = Metrics::compute(&binary(&scores), 2, &labels);
        assert_eq!(m.n, 5);
        assert_eq!(m.confusion, [[1, 1], [1, 2]]);
        assert!(close(m.acc, 0.6));
        // P = 2/3, R = 2/3 → F1 = 2/3.
        assert!(close(m.f1, 2.0 / 3.0));
        // Label 0: P = 1/2, R = 1/2; macro = (1/2 + 2/3) / 2.
        assert!(close(m.classes[0].f1, 0.5));
        assert!(close(m.macro_f1, 7.0 / 12.0));
        assert_eq!((m.classes[0].support, m.classes[1].support), (2, 3));
        // 0.9 +, 0.7 −, 0.6 +, 0.2 +, 0.1 −: 1/3·1 + 1/3·2/3 + 1/3·3/4.
        assert!(close(m.ap, (1.0 + 2.0 / 3.0 + 0.75) / 3.0));
        assert_eq!(m.class_ap[1], Some(m.ap));
        // No predicted and no gold positives: F1 is 0, not NaN.
        let m = Metrics::compute(&binary(&[0.1, 0.2]), 2, &[0, 0]);
        assert_eq!((m.f1, m.acc, m.ap), (0.0, 1.0, 0.0));
        assert_eq!(m.class_ap, [Some(1.0), None]);
    }

    #[test]
    fn probabilities_and_predictions() {
        // One logit: the sigmoid and its complement.
        let p = probabilities(&[0.0]);
        assert_eq!(p, [0.5, 0.5]);
        let p = probabilities(&[2.0]);
        assert!((p[1] - 1.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-7);
        // Softmax: shift-invariant, sums to 1, e^1 : e^0 : e^-1.
        let p = probabilities(&[1001.0, 1000.0, 999.0]);
        let e = std::f32::consts::E;
        let z = e + 1.0 + 1.0 / e;
        for (a, b) in p.iter().zip([e / z, 1.0 / z, 1.0 / e / z]) {
            assert!((a - b).abs() < 1e-6, "{p:?}");
        }
        // Ties go to the lowest id; a 0.5 / 0.5 binary row predicts 0 as `p > 0.5` did.
        assert_eq!(predictions(&[0.2, 0.4, 0.4, 0.5, 0.5, 0.0], 3), [1, 0]);
        assert_eq!(predictions(&probabilities(&[0.0]), 2), [0]);
    }

    /// Expected values from scikit-learn: `scripts/golden/metrics_multiclass.py`.
    #[allow(clippy::approx_constant, clippy::excessive_precision)]
    mod golden {
        // A: scikit-learn, scripts/golden/metrics_multiclass.py
        pub const A_PRED: [u32; 12] = [0, 1, 2, 3, 0, 3, 1, 2, 1, 1, 2, 0];
        pub const A_ACC: f64 = 0.5833333333333334;
        pub const A_MACRO_F1: f64 = 0.5773809523809523;
        pub const A_PRECISION: [f64; 4] = [0.6666666666666666, 0.5, 0.6666666666666666, 0.5];
        pub const A_RECALL: [f64; 4] = [0.6666666666666666, 0.6666666666666666, 0.5, 0.5];
        pub const A_F1: [f64; 4] = [
            0.6666666666666666,
            0.5714285714285714,
            0.5714285714285714,
            0.5,
        ];
        pub const A_SUPPORT: [usize; 4] = [3, 3, 4, 2];
        pub const A_CONFUSION: [[usize; 4]; 4] =
            [[2, 1, 0, 0], [0, 2, 0, 1], [1, 1, 2, 0], [0, 0, 1, 1]];
        /// AP of each class with a gold example: classes [0, 1, 2, 3].
        pub const A_CLASS_AP: [f64; 4] = [0.6984126984126984, 0.625, 0.9, 0.6666666666666666];
        pub const A_MACRO_AP: f64 = 0.7225198412698413;
        /// One-vs-rest PR curve of class 3 as (recall, precision).
        pub const A_PR_CLASS: u32 = 3;
        pub const A_PR: [(f64, f64); 4] = [
            (1.0, 0.16666666666666666),
            (1.0, 0.5),
            (1.0, 0.6666666666666666),
            (0.0, 1.0),
        ];

        // B: scikit-learn, scripts/golden/metrics_multiclass.py
        pub const B_PRED: [u32; 6] = [0, 2, 2, 1, 0, 0];
        pub const B_ACC: f64 = 0.5;
        pub const B_MACRO_F1: f64 = 0.38888888888888884;
        pub const B_PRECISION: [f64; 4] = [0.6666666666666666, 1.0, 0.0, 0.0];
        pub const B_RECALL: [f64; 4] = [0.6666666666666666, 0.3333333333333333, 0.0, 0.0];
        pub const B_F1: [f64; 4] = [0.6666666666666666, 0.5, 0.0, 0.0];
        pub const B_SUPPORT: [usize; 4] = [3, 3, 0, 0];
        pub const B_CONFUSION: [[usize; 4]; 4] =
            [[2, 0, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]];
        /// AP of each class with a gold example: classes [0, 1].
        pub const B_CLASS_AP: [f64; 2] = [0.8055555555555556, 0.7222222222222222];
        pub const B_MACRO_AP: f64 = 0.7638888888888888;
        /// One-vs-rest PR curve of class 1 as (recall, precision).
        pub const B_PR_CLASS: u32 = 1;
        pub const B_PR: [(f64, f64); 5] = [
            (1.0, 0.5),
            (0.6666666666666666, 0.6666666666666666),
            (0.3333333333333333, 0.5),
            (0.3333333333333333, 1.0),
            (0.0, 1.0),
        ];
    }

    // The inputs of scripts/golden/metrics_multiclass.py.
    const A_GOLD: [u32; 12] = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 2];
    const A_PROBS: [[f32; 4]; 12] = [
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
    ];
    const B_GOLD: [u32; 6] = [0, 1, 0, 1, 1, 0];
    const B_PROBS: [[f32; 4]; 6] = [
        [0.60, 0.30, 0.05, 0.05],
        [0.20, 0.30, 0.45, 0.05],
        [0.30, 0.30, 0.35, 0.05],
        [0.10, 0.80, 0.05, 0.05],
        [0.50, 0.40, 0.05, 0.05],
        [0.45, 0.45, 0.05, 0.05],
    ];

    struct Expected<'a> {
        pred: &'a [u32],
        acc: f64,
        macro_f1: f64,
        precision: &'a [f64],
        recall: &'a [f64],
        f1: &'a [f64],
        support: &'a [usize],
        confusion: Vec<Vec<usize>>,
        class_ap: &'a [f64],
        macro_ap: f64,
        pr_class: u32,
        pr: &'a [(f64, f64)],
    }

    fn check(probs: &[[f32; 4]], gold: &[u32], e: Expected) {
        let flat: Vec<f32> = probs.concat();
        assert_eq!(predictions(&flat, 4), e.pred);
        let m = Metrics::compute(&flat, 4, gold);
        assert_eq!((m.n, m.num_classes()), (gold.len(), 4));
        assert!(close(m.acc, e.acc));
        assert!(
            close(m.macro_f1, e.macro_f1),
            "{} vs {}",
            m.macro_f1,
            e.macro_f1
        );
        // More than two classes: the headline numbers are the macro ones.
        assert!(close(m.f1, e.macro_f1) && close(m.ap, e.macro_ap), "{m:?}");
        for (k, c) in m.classes.iter().enumerate() {
            assert!(close(c.precision, e.precision[k]), "precision {k}");
            assert!(close(c.recall, e.recall[k]), "recall {k}");
            assert!(close(c.f1, e.f1[k]), "f1 {k}");
            assert_eq!(c.support, e.support[k], "support {k}");
        }
        assert_eq!(m.confusion, e.confusion);
        let ap: Vec<f64> = m.class_ap.iter().flatten().copied().collect();
        assert_eq!(ap.len(), e.class_ap.len());
        for (a, b) in ap.iter().zip(e.class_ap) {
            assert!(close(*a, *b), "{ap:?} vs {:?}", e.class_ap);
        }
        let curve = class_pr_curve(&flat, 4, gold, e.pr_class);
        assert_eq!(curve.len(), e.pr.len(), "{curve:?}");
        for (c, x) in curve.iter().zip(e.pr) {
            assert!(close(c.0, x.0) && close(c.1, x.1), "{curve:?}");
        }
    }

    #[test]
    fn four_classes_like_sklearn() {
        use golden::*;
        check(
            &A_PROBS,
            &A_GOLD,
            Expected {
                pred: &A_PRED,
                acc: A_ACC,
                macro_f1: A_MACRO_F1,
                precision: &A_PRECISION,
                recall: &A_RECALL,
                f1: &A_F1,
                support: &A_SUPPORT,
                confusion: A_CONFUSION.iter().map(|r| r.to_vec()).collect(),
                class_ap: &A_CLASS_AP,
                macro_ap: A_MACRO_AP,
                pr_class: A_PR_CLASS,
                pr: &A_PR,
            },
        );
    }

    #[test]
    fn classes_without_gold_examples_like_sklearn() {
        use golden::*;
        check(
            &B_PROBS,
            &B_GOLD,
            Expected {
                pred: &B_PRED,
                acc: B_ACC,
                macro_f1: B_MACRO_F1,
                precision: &B_PRECISION,
                recall: &B_RECALL,
                f1: &B_F1,
                support: &B_SUPPORT,
                confusion: B_CONFUSION.iter().map(|r| r.to_vec()).collect(),
                class_ap: &B_CLASS_AP,
                macro_ap: B_MACRO_AP,
                pr_class: B_PR_CLASS,
                pr: &B_PR,
            },
        );
        // Class 2 (predicted, never gold) has no AP; class 3 (neither) is not in macro-F1.
        let m = Metrics::compute(&B_PROBS.concat(), 4, &B_GOLD);
        assert_eq!((m.class_ap[2], m.class_ap[3]), (None, None));
    }

    #[test]
    fn serialises_with_stable_keys() {
        let m = Metrics::compute(&A_PROBS.concat(), 4, &A_GOLD);
        let v = serde_json::to_value(&m).unwrap();
        for k in [
            "n",
            "acc",
            "ap",
            "f1",
            "macro_f1",
            "classes",
            "class_ap",
            "confusion",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["classes"][2]["support"], 4);
        assert_eq!(v["confusion"][2], serde_json::json!([1, 1, 2, 0]));
        let back: Metrics = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
        // Two classes keep the 2×2 shape of the old `[[usize; 2]; 2]`.
        let m = Metrics::compute(&binary(&[0.9, 0.1]), 2, &[1, 0]);
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["confusion"], serde_json::json!([[1, 0], [0, 1]]));
    }

    #[test]
    #[should_panic(expected = "Metrics::compute")]
    fn length_mismatch_panics() {
        Metrics::compute(&[0.5, 0.5], 2, &[1, 0]);
    }

    #[test]
    #[should_panic(expected = "gold label 3")]
    fn gold_out_of_range_panics() {
        Metrics::compute(&[0.5, 0.5, 0.2, 0.8], 2, &[1, 3]);
    }
}
