//! Seeded, stratified splitting: a validation share taken per label, and a
//! smaller subset with the same label proportions (for quick presets). Both
//! keep the examples' original relative order and depend only on the seed.
//! [`ValSplit`] says how a student's validation part is drawn: row by row, or
//! as whole [`SpanGroups`] ([`sentence_split_indices`]) so that no validation row
//! is a word span of a training row.

use crate::dataset::Dataset;
use crate::spans::SpanGroups;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Indices of `data` grouped by label (unlabelled examples form their own
/// group), groups in label order, each group shuffled by one `ChaCha8Rng`
/// seeded with `seed`.
fn shuffled_strata(data: &Dataset, seed: u64) -> Vec<Vec<usize>> {
    shuffled_strata_of(data.examples.iter().map(|e| e.label).enumerate(), seed)
}

/// [`shuffled_strata`] over chosen (index, label) pairs.
fn shuffled_strata_of(
    items: impl Iterator<Item = (usize, Option<u32>)>,
    seed: u64,
) -> Vec<Vec<usize>> {
    let mut groups: BTreeMap<Option<u32>, Vec<usize>> = BTreeMap::new();
    for (i, label) in items {
        groups.entry(label).or_default().push(i);
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
    let mut in_val = vec![false; data.len()];
    for i in take_share(shuffled_strata(data, seed), val_share) {
        in_val[i] = true;
    }
    let (val, train) = (0..data.len()).partition(|&i| in_val[i]);
    (train, val)
}

/// How a student's validation part is drawn from its training file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ValSplit {
    /// Rows one by one, stratified by label ([`stratified_split_indices`]).
    #[default]
    Rows,
    /// Whole sentences with the phrases inside them ([`sentence_split_indices`]).
    Sentences,
}

impl ValSplit {
    /// (training rows, validation rows), ascending.
    pub fn indices(self, data: &Dataset, val_share: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
        match self {
            ValSplit::Rows => stratified_split_indices(data, val_share, seed),
            ValSplit::Sentences => sentence_split_indices(data, val_share, seed),
        }
    }
}

/// A train/validation split by sentence, as ascending row indices: roots of [`SpanGroups`]
/// (sentences, with duplicates and the phrases inside them) stratified by their label,
/// `round(val_share · n)` of each label's `n` roots to validation, and a row in validation
/// only if every root holding it is. Validation thus never holds a word span of a training
/// row (it comes out a little under `val_share` of the rows when phrases are shared); on
/// data where no row is inside another it is [`stratified_split_indices`] exactly.
pub fn sentence_split_indices(
    data: &Dataset,
    val_share: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let groups = SpanGroups::of(data);
    let roots = groups.roots();
    let mut root_in_val = vec![false; roots.len()];
    // Strata of root positions: where every row is a root, position = row, and the shuffles
    // are those of the row split.
    let labels = roots.iter().map(|&row| data.examples[row].label);
    for k in take_share(shuffled_strata_of(labels.enumerate(), seed), val_share) {
        root_in_val[k] = true;
    }
    let in_val = |i: &usize| groups.roots_of(*i).iter().all(|&r| root_in_val[r as usize]);
    let (val, train) = (0..data.len()).partition(in_val);
    (train, val)
}

/// The first `round(share · n)` of each shuffled stratum (`share` clamped to `[0, 1]`, NaN
/// as 0).
fn take_share(strata: Vec<Vec<usize>>, share: f64) -> impl Iterator<Item = usize> {
    let share = if share.is_nan() {
        0.0
    } else {
        share.clamp(0.0, 1.0)
    };
    strata.into_iter().flat_map(move |group| {
        let take = ((share * group.len() as f64).round() as usize).min(group.len());
        group.into_iter().take(take)
    })
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
    fn without_spans_the_sentence_split_is_the_stratified_one() {
        let d = toy();
        for (share, seed) in [(0.1, 7), (0.25, 9), (0.0, 1), (1.0, 2)] {
            assert_eq!(
                sentence_split_indices(&d, share, seed),
                stratified_split_indices(&d, share, seed)
            );
        }
    }

    #[test]
    fn validation_never_holds_a_span_of_a_training_row() {
        // 40 "sentences" of five words, each with two of its phrases, and phrases shared
        // between sentences ("w0 w1").
        let mut examples = Vec::new();
        for i in 0..40 {
            let sentence = format!("w{} w{} s{i} t{i} u{i}", i % 3, i % 3 + 1);
            let phrases = [
                sentence.clone(),
                format!("s{i} t{i}"),
                format!("w{} w{}", i % 3, i % 3 + 1),
            ];
            for text in phrases {
                examples.push(crate::dataset::Example {
                    text,
                    text_pair: None,
                    label: Some(u32::from(i % 4 == 0)),
                });
            }
        }
        let d = Dataset {
            examples,
            source: None,
        };
        let (train, val) = sentence_split_indices(&d, 0.25, 5);
        assert_eq!(train.len() + val.len(), d.len());
        let words = |i: usize| d.examples[i].text.split_whitespace().collect::<Vec<_>>();
        for &v in &val {
            for &t in &train {
                let (v, t) = (words(v), words(t));
                assert!(!t.windows(v.len()).any(|w| w == v), "{v:?} inside {t:?}");
            }
        }
        // round(2.5) = 3 of the 10 positive sentences and round(7.5) = 8 of the 30 negative
        // ones, each with its own phrase; the shared phrases stay in training.
        let sentences = val.iter().filter(|&&i| i % 3 == 0).count();
        assert_eq!(sentences, 3 + 8);
        assert_eq!(val.len(), 2 * sentences);
        assert_eq!(sentence_split_indices(&d, 0.25, 5), (train, val));
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
