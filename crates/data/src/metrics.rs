//! Binary classification metrics as scikit-learn computes them: accuracy, F1
//! of the positive class (label 1), the confusion matrix, the
//! precision–recall curve (`precision_recall_curve`) and average precision
//! (`average_precision_score`: `Σ (Rₙ − Rₙ₋₁) · Pₙ` over distinct score
//! thresholds, tied scores forming one threshold). No value is ever NaN:
//! undefined ratios count as 0.

/// Metrics of one evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    /// Number of examples.
    pub n: usize,
    /// Share of predictions equal to the gold label.
    pub acc: f64,
    /// Average precision of the scores for label 1.
    pub ap: f64,
    /// F1 of label 1.
    pub f1: f64,
    /// Counts indexed `[gold][pred]`, label 1 positive, anything else negative.
    pub confusion: [[usize; 2]; 2],
}

impl Metrics {
    /// Computes all metrics. `scores` rank examples by how positive they are
    /// (P(label 1), a logit margin, any monotone score); `preds` are the
    /// predicted labels; `labels` the gold ones. Labels are 0 or 1: any value
    /// other than 1 counts as negative in F1, AP and the confusion matrix.
    ///
    /// # Panics
    /// If the three slices differ in length.
    pub fn compute(scores: &[f32], preds: &[u32], labels: &[u32]) -> Metrics {
        assert!(
            scores.len() == labels.len() && preds.len() == labels.len(),
            "Metrics::compute: {} scores, {} predictions and {} labels",
            scores.len(),
            preds.len(),
            labels.len()
        );
        let n = labels.len();
        let mut confusion = [[0usize; 2]; 2];
        let mut correct = 0;
        for (&p, &g) in preds.iter().zip(labels) {
            correct += usize::from(p == g);
            confusion[usize::from(g == 1)][usize::from(p == 1)] += 1;
        }
        let tp = confusion[1][1];
        let f1_denominator = 2 * tp + confusion[0][1] + confusion[1][0];
        Metrics {
            n,
            acc: ratio(correct, n),
            ap: average_precision(scores, labels),
            f1: ratio(2 * tp, f1_denominator),
            confusion,
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The precision–recall curve as `(recall, precision)` points, in the order
/// and with the values of scikit-learn's `precision_recall_curve`: one point
/// per distinct score, from the lowest threshold (recall 1) to the highest,
/// then the end point `(0, 1)`. With no positive labels recall is 1 at every
/// threshold, as in scikit-learn.
///
/// # Panics
/// If `scores` and `labels` differ in length.
pub fn pr_curve(scores: &[f32], labels: &[u32]) -> Vec<(f64, f64)> {
    assert_eq!(
        scores.len(),
        labels.len(),
        "pr_curve: scores and labels differ in length"
    );
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    // Cumulative true and false positives at the last example of each run of
    // equal scores, highest threshold first.
    let mut points: Vec<(usize, usize)> = Vec::new();
    let (mut tps, mut fps) = (0usize, 0usize);
    for (k, &i) in order.iter().enumerate() {
        if labels[i] == 1 {
            tps += 1;
        } else {
            fps += 1;
        }
        let run_ends = order
            .get(k + 1)
            .is_none_or(|&j| scores[j].total_cmp(&scores[i]).is_ne());
        if run_ends {
            points.push((tps, fps));
        }
    }
    let mut curve: Vec<(f64, f64)> = points
        .iter()
        .rev()
        .map(|&(tp, fp)| {
            let recall = if tps == 0 { 1.0 } else { ratio(tp, tps) };
            (recall, ratio(tp, tp + fp))
        })
        .collect();
    curve.push((0.0, 1.0));
    curve
}

/// Average precision as scikit-learn's `average_precision_score`:
/// `Σ (Rₙ − Rₙ₋₁) · Pₙ` over the points of [`pr_curve`]. 0 with no positives.
pub fn average_precision(scores: &[f32], labels: &[u32]) -> f64 {
    let curve = pr_curve(scores, labels);
    let ap: f64 = curve.windows(2).map(|w| (w[0].0 - w[1].0) * w[0].1).sum();
    ap.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn ap_without_ties() {
        // Ranking: 0.8 (+), 0.4 (−), 0.35 (+), 0.1 (−).
        // AP = 0.5 · 1 + 0.5 · 2/3 = 5/6.
        let (s, y) = ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]);
        assert!(close(average_precision(&s, &y), 5.0 / 6.0));
        let curve = pr_curve(&s, &y);
        let expected = [
            (1.0, 0.5),
            (1.0, 2.0 / 3.0),
            (0.5, 0.5),
            (0.5, 1.0),
            (0.0, 1.0),
        ];
        assert_eq!(curve.len(), expected.len());
        for (c, e) in curve.iter().zip(expected) {
            assert!(close(c.0, e.0) && close(c.1, e.1), "{curve:?}");
        }
    }

    #[test]
    fn ties_form_one_threshold() {
        // Three examples tie at 0.5 (two positive): one step to recall 1 at
        // precision 2/3, not an ordering-dependent staircase.
        let (s, y) = ([0.5, 0.5, 0.5, 0.2], [1, 0, 1, 0]);
        assert!(close(average_precision(&s, &y), 2.0 / 3.0));
        assert_eq!(pr_curve(&s, &y).len(), 3);
        // 0.9 (+), {0.8 +, 0.8 −}, {0.3 +, 0.3 −}, 0.1 (−):
        // 1/3 · 1 + 1/3 · 2/3 + 1/3 · 3/5 = 34/45.
        let (s, y) = ([0.9, 0.8, 0.8, 0.3, 0.3, 0.1], [1, 0, 1, 1, 0, 0]);
        assert!(close(average_precision(&s, &y), 34.0 / 45.0));
    }

    #[test]
    fn degenerate_label_sets() {
        assert_eq!(average_precision(&[0.2, 0.3], &[0, 0]), 0.0);
        assert_eq!(
            pr_curve(&[0.2, 0.3], &[0, 0]),
            vec![(1.0, 0.0), (1.0, 0.0), (0.0, 1.0)]
        );
        assert_eq!(average_precision(&[0.2, 0.3], &[1, 1]), 1.0);
        assert_eq!(pr_curve(&[], &[]), vec![(0.0, 1.0)]);
        let m = Metrics::compute(&[], &[], &[]);
        assert_eq!((m.n, m.acc, m.ap, m.f1), (0, 0.0, 0.0, 0.0));
    }

    #[test]
    fn compute_counts_and_f1() {
        let labels = [1, 1, 1, 0, 0];
        let preds = [1, 0, 1, 1, 0];
        let scores = [0.9, 0.2, 0.6, 0.7, 0.1];
        let m = Metrics::compute(&scores, &preds, &labels);
        assert_eq!(m.n, 5);
        assert_eq!(m.confusion, [[1, 1], [1, 2]]);
        assert!(close(m.acc, 0.6));
        // P = 2/3, R = 2/3 → F1 = 2/3.
        assert!(close(m.f1, 2.0 / 3.0));
        // 0.9 +, 0.7 −, 0.6 +, 0.2 +, 0.1 −: 1/3·1 + 1/3·2/3 + 1/3·3/4.
        assert!(close(m.ap, (1.0 + 2.0 / 3.0 + 0.75) / 3.0));
        // No predicted and no gold positives: F1 is 0, not NaN.
        let m = Metrics::compute(&[0.1, 0.2], &[0, 0], &[0, 0]);
        assert_eq!((m.f1, m.acc), (0.0, 1.0));
    }

    #[test]
    fn serialises_with_stable_keys() {
        let m = Metrics::compute(&[0.9, 0.1], &[1, 0], &[1, 0]);
        let v = serde_json::to_value(&m).unwrap();
        for k in ["n", "acc", "ap", "f1", "confusion"] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        let back: Metrics = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    #[should_panic(expected = "Metrics::compute")]
    fn length_mismatch_panics() {
        Metrics::compute(&[0.5], &[1, 0], &[1, 0]);
    }
}
