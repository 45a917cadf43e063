//! The precision–recall curve and average precision of one score against binary labels
//! (1 positive, anything else negative), as scikit-learn's `precision_recall_curve` and
//! `average_precision_score` compute them: `Σ (Rₙ − Rₙ₋₁) · Pₙ` over distinct score
//! thresholds, tied scores forming one threshold. [`crate::metrics`] applies them one
//! class against the rest.

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

/// `a / b`, 0 when `b` is 0 (precision or recall of nothing).
pub(crate) fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
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
    }
}
