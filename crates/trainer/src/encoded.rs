//! Sentences (or sentence pairs) as a student reads them: token ids with their supervision,
//! and the batches the model is fed.

use distill_data::{Batch, Batcher, TeacherLogits, TextEncoder, Vocab};
use rayon::prelude::*;

/// Token ids of each sentence (and, for a pair task, of its second text) with its gold label
/// (if any) and teacher logits (if any).
#[derive(Clone, Debug, Default)]
pub struct EncodedSet {
    pub ids: Vec<Vec<u32>>,
    /// The second text of each pair, row for row with `ids`; `None` for single texts.
    pub pair_ids: Option<Vec<Vec<u32>>>,
    pub labels: Vec<Option<u32>>,
    /// Row-major `[len, num_labels]` when present.
    pub teacher: Option<Vec<f32>>,
    pub num_labels: usize,
}

impl EncodedSet {
    /// Encodes `texts` with `encoder`, for a task with `num_labels` labels.
    pub fn encode(
        texts: &[&str],
        labels: Vec<Option<u32>>,
        encoder: &TextEncoder,
        num_labels: usize,
    ) -> Self {
        let ids = texts.par_iter().map(|t| encoder.encode(t)).collect();
        Self {
            ids,
            pair_ids: None,
            labels,
            teacher: None,
            num_labels,
        }
    }

    /// Encodes the pairs `(texts_a[i], texts_b[i])` with `encoder`, for a task with
    /// `num_labels` labels.
    ///
    /// # Panics
    /// If `texts_a` and `texts_b` differ in length.
    pub fn encode_pairs(
        texts_a: &[&str],
        texts_b: &[&str],
        labels: Vec<Option<u32>>,
        encoder: &TextEncoder,
        num_labels: usize,
    ) -> Self {
        assert_eq!(
            texts_a.len(),
            texts_b.len(),
            "one second text per first text"
        );
        let mut set = Self::encode(texts_a, labels, encoder, num_labels);
        set.pair_ids = Some(texts_b.par_iter().map(|t| encoder.encode(t)).collect());
        set
    }

    /// Attaches teacher logits; `rows[i]` is the cache row of sentence `i`.
    pub fn with_teacher(mut self, logits: &TeacherLogits, rows: &[usize]) -> Self {
        let c = logits.num_labels;
        let mut t = Vec::with_capacity(rows.len() * c);
        for &r in rows {
            t.extend_from_slice(logits.row(r));
        }
        self.teacher = Some(t);
        self.num_labels = c;
        self
    }

    /// Number of sentences (or pairs).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no sentences.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether the rows are pairs of texts.
    pub fn is_pair(&self) -> bool {
        self.pair_ids.is_some()
    }

    /// This set followed by `other` (e.g. training sentences plus augmented ones). If only
    /// one of them has pairs, the other's rows get an empty second text.
    pub fn concat(mut self, other: EncodedSet) -> Self {
        let (n, m) = (self.len(), other.len());
        self.pair_ids = match (self.pair_ids, other.pair_ids) {
            (None, None) => None,
            (a, b) => {
                let mut a = a.unwrap_or_else(|| vec![Vec::new(); n]);
                a.extend(b.unwrap_or_else(|| vec![Vec::new(); m]));
                Some(a)
            }
        };
        self.ids.extend(other.ids);
        self.labels.extend(other.labels);
        self.teacher = match (self.teacher, other.teacher) {
            (Some(mut a), Some(b)) => {
                a.extend(b);
                Some(a)
            }
            _ => None,
        };
        self
    }

    /// Gold labels, where every sentence has one.
    pub fn gold(&self) -> Option<Vec<u32>> {
        self.labels.iter().copied().collect()
    }

    /// The batches of one epoch ([`Batcher::batches`]); pairs are bucketed by the longer of
    /// their two texts.
    pub(crate) fn batches(&self, batcher: &Batcher, epoch: usize) -> Vec<SetBatch> {
        match &self.pair_ids {
            None => batcher
                .batches(&self.ids, epoch)
                .into_iter()
                .map(SetBatch::single)
                .collect(),
            Some(b) => batcher
                .batches(&self.longer(b), epoch)
                .iter()
                .map(|batch| SetBatch::pair(&self.ids, b, &batch.indices, batcher.max_len))
                .collect(),
        }
    }

    /// Batches in length order for inference ([`Batcher::sorted_batches`]).
    pub(crate) fn sorted_batches(&self, batcher: &Batcher) -> Vec<SetBatch> {
        match &self.pair_ids {
            None => batcher
                .sorted_batches(&self.ids)
                .into_iter()
                .map(SetBatch::single)
                .collect(),
            Some(b) => batcher
                .sorted_batches(&self.longer(b))
                .iter()
                .map(|batch| SetBatch::pair(&self.ids, b, &batch.indices, batcher.max_len))
                .collect(),
        }
    }

    /// The longer text of each pair: what pairs are bucketed by.
    fn longer(&self, second: &[Vec<u32>]) -> Vec<Vec<u32>> {
        self.ids
            .iter()
            .zip(second)
            .map(|(a, b)| if a.len() >= b.len() { a } else { b }.clone())
            .collect()
    }
}

/// One batch of an [`EncodedSet`] as the model reads it: padded ids `(rows, time)` with
/// their lengths. For single texts a row per sentence; for pairs the batch's first texts
/// followed by its second texts (`rows = 2·indices.len()`, row `r + B` is the partner of
/// row `r`), as `BiLstmClassifier::forward_embedded_pair` takes them.
pub(crate) struct SetBatch {
    /// The set's rows in this batch, in order: labels, teacher logits and outputs go by these.
    pub indices: Vec<usize>,
    pub ids: Vec<u32>,
    pub lengths: Vec<usize>,
    pub time: usize,
    pub pair: bool,
}

impl SetBatch {
    fn single(b: Batch) -> Self {
        Self {
            indices: b.indices,
            ids: b.ids,
            lengths: b.lengths,
            time: b.time,
            pair: false,
        }
    }

    /// Pads `a[i]` then `b[i]` for each `i` in `indices` to one width (as [`Batch::collate`]).
    fn pair(a: &[Vec<u32>], b: &[Vec<u32>], indices: &[usize], max_len: usize) -> Self {
        let max_len = max_len.max(1);
        let seqs = || {
            indices
                .iter()
                .map(|&i| &a[i])
                .chain(indices.iter().map(|&i| &b[i]))
        };
        let lengths: Vec<usize> = seqs().map(|s| s.len().min(max_len)).collect();
        let time = lengths.iter().copied().max().unwrap_or(0).max(1);
        let mut ids = vec![Vocab::PAD; lengths.len() * time];
        for (row, (s, &len)) in seqs().zip(&lengths).enumerate() {
            ids[row * time..row * time + len].copy_from_slice(&s[..len]);
        }
        Self {
            indices: indices.to_vec(),
            ids,
            lengths,
            time,
            pair: true,
        }
    }

    /// Rows of `ids`: the batch size, doubled for pairs.
    pub fn rows(&self) -> usize {
        self.lengths.len()
    }

    /// `values[i]` for each of the batch's set rows `i`.
    pub fn gather<T: Clone>(&self, values: &[T]) -> Vec<T> {
        self.indices.iter().map(|&i| values[i].clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs() -> EncodedSet {
        EncodedSet {
            ids: vec![vec![2, 3], vec![4], vec![5, 6, 7, 8], vec![]],
            pair_ids: Some(vec![vec![9], vec![10, 11, 12], vec![13], vec![14]]),
            labels: vec![Some(0), Some(1), Some(2), Some(0)],
            teacher: None,
            num_labels: 3,
        }
    }

    #[test]
    fn pair_batches_keep_both_texts_of_a_row_together() {
        let set = pairs();
        let batcher = Batcher::new(3).max_len(3).shuffle(true).seed(5);
        for batches in [set.batches(&batcher, 1), set.sorted_batches(&batcher)] {
            let mut seen: Vec<usize> = Vec::new();
            for b in &batches {
                let n = b.indices.len();
                assert_eq!(b.rows(), 2 * n);
                for (r, &i) in b.indices.iter().enumerate() {
                    let row = |k: usize| &b.ids[k * b.time..k * b.time + b.lengths[k]];
                    let a = &set.ids[i][..set.ids[i].len().min(3)];
                    let p = &set.pair_ids.as_ref().unwrap()[i];
                    assert_eq!(row(r), a, "first text of row {i}");
                    assert_eq!(row(r + n), &p[..p.len().min(3)], "second text of row {i}");
                }
                seen.extend(&b.indices);
            }
            seen.sort_unstable();
            assert_eq!(seen, [0, 1, 2, 3]);
        }
        // Sorted by the longer text: rows 0 (2), 1 (3), 2 (4 → 3) before row 3 (1).
        let sorted = set.sorted_batches(&Batcher::new(3).max_len(3));
        assert_eq!(sorted[1].indices, [3]);
    }

    #[test]
    fn concat_gives_single_rows_an_empty_second_text() {
        let single = EncodedSet {
            ids: vec![vec![2]],
            labels: vec![Some(1)],
            num_labels: 3,
            ..EncodedSet::default()
        };
        let joined = pairs().concat(single);
        let second = joined.pair_ids.unwrap();
        assert_eq!(second.len(), 5);
        assert!(second[4].is_empty());
    }
}
