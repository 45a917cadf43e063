//! Seeded, stratified splitting: a validation share taken per label, and a
//! smaller subset with the same label proportions (for quick presets). Both
//! keep the examples' original relative order and depend only on the seed.

use crate::dataset::Dataset;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Indices of `data` grouped by label (unlabelled examples form their own
/// group), groups in label order, each group shuffled by one `ChaCha8Rng`
/// seeded with `seed`.
fn shuffled_strata(data: &Dataset, seed: u64) -> Vec<Vec<usize>> {
    let mut groups: BTreeMap<Option<u32>, Vec<usize>> = BTreeMap::new();
    for (i, e) in data.examples.iter().enumerate() {
        groups.entry(e.label).or_default().push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    groups
        .into_values()
        .map(|mut g| {
            g.shuffle(&mut rng);
            g
        })
        .collect()
}

/// Splits `data` into (train, validation). For each label, `round(val_share · n)`
/// of its `n` examples, chosen by a shuffle seeded with `seed`, go to validation.
/// `val_share` is clamped to `[0, 1]`. Both parts keep the original order.
pub fn stratified_split(data: &Dataset, val_share: f64, seed: u64) -> (Dataset, Dataset) {
    let (train, val) = stratified_split_indices(data, val_share, seed);
    (data.subset(&train), data.subset(&val))
}

/// The split of [`stratified_split`] as ascending example indices
/// (train, validation), for callers that keep other per-example data
/// (teacher logits, encodings) aligned with `data`.
pub fn stratified_split_indices(
    data: &Dataset,
    val_share: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let share = if val_share.is_nan() {
        0.0
    } else {
        val_share.clamp(0.0, 1.0)
    };
    let mut in_val = vec![false; data.len()];
    for group in shuffled_strata(data, seed) {
        let take = (share * group.len() as f64).round() as usize;
        for &i in &group[..take.min(group.len())] {
            in_val[i] = true;
        }
    }
    let (val, train) = (0..data.len()).partition(|&i| in_val[i]);
    (train, val)
}

/// A subset of `n` examples (all of them if `n ≥ len`) with the label
/// proportions of `data`: each label gets its proportional share, rounded by
/// largest remainder so the sizes add up to exactly `n`. Chosen by a shuffle
/// seeded with `seed`; original order kept.
pub fn stratified_subset(data: &Dataset, n: usize, seed: u64) -> Dataset {
    if n >= data.len() {
        return data.clone();
    }
    let strata = shuffled_strata(data, seed);
    let total = data.len() as f64;
    let exact: Vec<f64> = strata
        .iter()
        .map(|g| n as f64 * g.len() as f64 / total)
        .collect();
    let mut take: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut order: Vec<usize> = (0..strata.len()).collect();
    // Largest remainder first; ties go to the lower label (stable sort).
    order.sort_by(|&a, &b| {
        let ra = exact[a] - take[a] as f64;
        let rb = exact[b] - take[b] as f64;
        rb.total_cmp(&ra)
    });
    let missing = n - take.iter().sum::<usize>();
    for &g in order.iter().take(missing) {
        take[g] += 1;
    }
    let mut chosen: Vec<usize> = strata
        .iter()
        .zip(&take)
        .flat_map(|(g, &k)| g[..k.min(g.len())].iter().copied())
        .collect();
    chosen.sort_unstable();
    data.subset(&chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Example;

    /// 70 examples of label 0 and 30 of label 1, texts "s<i>".
    fn toy() -> Dataset {
        Dataset {
            examples: (0..100)
                .map(|i| Example {
                    text: format!("s{i}"),
                    text_pair: None,
                    label: Some(u32::from(i % 10 < 3)),
                })
                .collect(),
            source: None,
        }
    }

    fn count(d: &Dataset, label: u32) -> usize {
        d.examples.iter().filter(|e| e.label == Some(label)).count()
    }

    fn positions(whole: &Dataset, part: &Dataset) -> Vec<usize> {
        part.texts()
            .iter()
            .map(|t| whole.texts().iter().position(|w| w == t).unwrap())
            .collect()
    }

    #[test]
    fn split_is_stratified_complete_and_ordered() {
        let d = toy();
        let (train, val) = stratified_split(&d, 0.1, 7);
        assert_eq!((count(&val, 0), count(&val, 1)), (7, 3));
        assert_eq!(train.len() + val.len(), d.len());
        let (pt, pv) = (positions(&d, &train), positions(&d, &val));
        assert!(pt.windows(2).all(|w| w[0] < w[1]));
        assert!(pv.windows(2).all(|w| w[0] < w[1]));
        let mut all: Vec<usize> = pt.into_iter().chain(pv).collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn split_indices_agree_with_split() {
        let d = toy();
        let (ti, vi) = stratified_split_indices(&d, 0.25, 9);
        let (train, val) = stratified_split(&d, 0.25, 9);
        assert_eq!((d.subset(&ti), d.subset(&vi)), (train, val));
        assert!(ti.windows(2).all(|w| w[0] < w[1]) && vi.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn split_is_deterministic_per_seed() {
        let d = toy();
        assert_eq!(stratified_split(&d, 0.2, 1), stratified_split(&d, 0.2, 1));
        assert_ne!(
            stratified_split(&d, 0.2, 1).1,
            stratified_split(&d, 0.2, 2).1
        );
    }

    #[test]
    fn split_extremes() {
        let d = toy();
        let (train, val) = stratified_split(&d, 0.0, 3);
        assert_eq!((train.len(), val.len()), (100, 0));
        let (train, val) = stratified_split(&d, 1.5, 3);
        assert_eq!((train.len(), val.len()), (0, 100));
    }

    #[test]
    fn subset_keeps_proportions_and_size() {
        let d = toy();
        let s = stratified_subset(&d, 11, 5);
        assert_eq!(s.len(), 11);
        // 7.7 and 3.3: floors 7 + 3, the larger remainder (label 0) gets the last one.
        assert_eq!((count(&s, 0), count(&s, 1)), (8, 3));
        let p = positions(&d, &s);
        assert!(p.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s, stratified_subset(&d, 11, 5));
        assert_ne!(s, stratified_subset(&d, 11, 6));
        assert_eq!(stratified_subset(&d, 1000, 5), d);
    }
}
