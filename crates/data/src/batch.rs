//! Padding id sequences into rectangular batches, and choosing which
//! sequences go together.
//!
//! A [`Batch`] holds `ids` row-major with shape `[batch, time]`, padded with
//! [`Vocab::PAD`], where `time = max(1, longest length)` after truncation to
//! `max_len`, the true `lengths` (which are 0 for an empty sequence), and the
//! `indices` of its rows in the caller's list, so labels, teacher logits or
//! outputs can be gathered or put back in order.
//!
//! For training, [`Batcher::batches`] buckets by length: the indices are
//! shuffled (seeded by `(seed, epoch)`), cut into pools of `batch_size · 50`,
//! each pool sorted by length (longest first) and cut into batches, and the
//! batch order shuffled. Sequences of similar length share a batch, so little
//! compute goes to padding, while each epoch still sees a new order.

use crate::vocab::Vocab;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Pools hold this many batches' worth of sequences before sorting.
pub const POOL_BATCHES: usize = 50;

/// Padded sequences with their lengths and positions in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Position of each row in the caller's list.
    pub indices: Vec<usize>,
    /// Token ids, row-major `[batch, time]`, padded with [`Vocab::PAD`].
    pub ids: Vec<u32>,
    /// Length of each row after truncation (≤ `time`; 0 for an empty sequence).
    pub lengths: Vec<usize>,
    /// Number of rows.
    pub batch: usize,
    /// Number of columns: `max(1, max(lengths))`.
    pub time: usize,
}

impl Batch {
    /// Pads `seqs[i]` for each `i` in `indices` into one batch, truncating each
    /// to at most `max_len` ids (a `max_len` of 0 is treated as 1).
    ///
    /// # Panics
    /// If an index is out of range of `seqs`.
    pub fn collate(seqs: &[Vec<u32>], indices: &[usize], max_len: usize) -> Batch {
        let max_len = max_len.max(1);
        let lengths: Vec<usize> = indices
            .iter()
            .map(|&i| seqs[i].len().min(max_len))
            .collect();
        let time = lengths.iter().copied().max().unwrap_or(0).max(1);
        let mut ids = vec![Vocab::PAD; indices.len() * time];
        for (row, (&i, &len)) in indices.iter().zip(&lengths).enumerate() {
            ids[row * time..row * time + len].copy_from_slice(&seqs[i][..len]);
        }
        Batch {
            indices: indices.to_vec(),
            ids,
            lengths,
            batch: indices.len(),
            time,
        }
    }

    /// The ids of row `r` (padding included).
    pub fn row(&self, r: usize) -> &[u32] {
        &self.ids[r * self.time..(r + 1) * self.time]
    }

    /// `values[i]` for each row's index `i`: the labels or teacher-logit rows
    /// of this batch, in row order.
    pub fn gather<T: Clone>(&self, values: &[T]) -> Vec<T> {
        self.indices.iter().map(|&i| values[i].clone()).collect()
    }

    /// Number of padding cells in `ids`.
    pub fn padding(&self) -> usize {
        self.ids.len() - self.lengths.iter().sum::<usize>()
    }
}

/// Splits a list of id sequences into batches; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batcher {
    /// Rows per batch (the last batch may be smaller).
    pub batch_size: usize,
    /// Longest sequence kept; longer ones are truncated (default 128).
    pub max_len: usize,
    /// Length-bucketed shuffling (training) or input order (evaluation).
    pub shuffle: bool,
    /// Seed of the shuffles, combined with the epoch.
    pub seed: u64,
}

impl Batcher {
    /// Batches of `batch_size` (0 counts as 1), `max_len` 128, no shuffling, seed 0.
    pub fn new(batch_size: usize) -> Self {
        Batcher {
            batch_size: batch_size.max(1),
            max_len: 128,
            shuffle: false,
            seed: 0,
        }
    }

    /// Sets the truncation length.
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Turns length-bucketed shuffling on or off.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn chunk(&self, seqs: &[Vec<u32>], order: &[usize]) -> Vec<Batch> {
        order
            .chunks(self.batch_size.max(1))
            .map(|c| Batch::collate(seqs, c, self.max_len))
            .collect()
    }

    /// The batches of one epoch. With shuffling they are length-bucketed and
    /// depend only on `(seed, epoch)`; without, they follow input order and
    /// `epoch` is ignored. Every index appears in exactly one batch.
    pub fn batches(&self, seqs: &[Vec<u32>], epoch: usize) -> Vec<Batch> {
        let lengths: Vec<usize> = seqs.iter().map(Vec::len).collect();
        self.index_batches(&lengths, epoch)
            .iter()
            .map(|c| Batch::collate(seqs, c, self.max_len))
            .collect()
    }

    /// The rows of each batch of [`Batcher::batches`] for sequences of these `lengths`,
    /// without collating: for callers that pad their own inputs (the teacher's token
    /// type ids and attention masks).
    pub fn index_batches(&self, lengths: &[usize], epoch: usize) -> Vec<Vec<usize>> {
        let size = self.batch_size.max(1);
        let mut order: Vec<usize> = (0..lengths.len()).collect();
        if !self.shuffle {
            return order.chunks(size).map(<[usize]>::to_vec).collect();
        }
        // One stream per epoch: epochs differ, reruns repeat.
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(epoch as u64);
        order.shuffle(&mut rng);
        let mut batches = Vec::new();
        for pool in order.chunks_mut(size * POOL_BATCHES) {
            self.sort_by_length(lengths, pool);
            batches.extend(pool.chunks(size).map(<[usize]>::to_vec));
        }
        batches.shuffle(&mut rng);
        batches
    }

    /// Sorts `indices` by truncated length, longest first (stable).
    fn sort_by_length(&self, lengths: &[usize], indices: &mut [usize]) {
        let max_len = self.max_len.max(1);
        indices.sort_by_key(|&i| std::cmp::Reverse(lengths[i].min(max_len)));
    }

    /// Batches over all sequences sorted by length (longest first), for fast
    /// inference; use each batch's `indices` to put outputs back in order.
    pub fn sorted_batches(&self, seqs: &[Vec<u32>]) -> Vec<Batch> {
        let lengths: Vec<usize> = seqs.iter().map(Vec::len).collect();
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        self.sort_by_length(&lengths, &mut order);
        self.chunk(seqs, &order)
    }
}

/// Share of padding cells over all cells of `batches` (0 when there are none).
pub fn padding_share(batches: &[Batch]) -> f64 {
    let cells: usize = batches.iter().map(|b| b.ids.len()).sum();
    let pad: usize = batches.iter().map(Batch::padding).sum();
    if cells == 0 {
        0.0
    } else {
        pad as f64 / cells as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// `n` sequences with SST-2-like lengths (1..=52, most around 10–25);
    /// sequence `i` holds the ids `i+2, i+2, …` so rows can be traced.
    fn corpus(n: usize) -> Vec<Vec<u32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        (0..n)
            .map(|i| {
                let len = (rng.gen_range(1..=26) + rng.gen_range(0..=26)) as usize;
                vec![i as u32 + 2; len]
            })
            .collect()
    }

    fn all_indices(batches: &[Batch]) -> Vec<usize> {
        let mut all: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
        all.sort_unstable();
        all
    }

    /// The index-level batches alone (as the teacher uses them): every row once, in
    /// batches of the size asked, of similar lengths, seeded by `(seed, epoch)`.
    #[test]
    fn index_batches_bucket_lengths_without_sequences() {
        let lengths: Vec<usize> = (0..3000).map(|i| (i * 7919) % 61 + 3).collect();
        let batcher = Batcher::new(32).max_len(usize::MAX).shuffle(true).seed(1);
        let batches = batcher.index_batches(&lengths, 0);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..3000).collect::<Vec<_>>());
        assert!(batches.iter().all(|b| !b.is_empty() && b.len() <= 32));
        let padded: usize = batches
            .iter()
            .map(|b| b.len() * b.iter().map(|&i| lengths[i]).max().unwrap_or(0))
            .sum();
        let real: usize = lengths.iter().sum();
        assert!((padded as f64) < 1.1 * real as f64, "{padded} vs {real}");
        assert_eq!(batches, batcher.index_batches(&lengths, 0));
        assert_ne!(batches, batcher.index_batches(&lengths, 1));
        let in_order = Batcher::new(1000).index_batches(&lengths, 5);
        assert_eq!(in_order[2], (2000..3000).collect::<Vec<_>>());
    }

    #[test]
    fn collate_pads_truncates_and_keeps_lengths() {
        let seqs = vec![vec![5, 6, 7], vec![], vec![8, 9, 10, 11, 12]];
        let b = Batch::collate(&seqs, &[2, 0, 1], 4);
        assert_eq!((b.batch, b.time), (3, 4));
        assert_eq!(b.lengths, vec![4, 3, 0]);
        assert_eq!(b.row(0), [8, 9, 10, 11]);
        assert_eq!(b.row(1), [5, 6, 7, Vocab::PAD]);
        assert_eq!(b.row(2), [Vocab::PAD; 4]);
        assert_eq!(b.padding(), 5);
        assert_eq!(b.gather(&["a", "b", "c"]), vec!["c", "a", "b"]);
        let empty = Batch::collate(&seqs, &[1], 128);
        assert_eq!(
            (empty.time, empty.lengths[0], empty.ids.clone()),
            (1, 0, vec![Vocab::PAD])
        );
    }

    #[test]
    fn unshuffled_batches_follow_input_order() {
        let seqs = corpus(10);
        let batches = Batcher::new(4).batches(&seqs, 3);
        let idx: Vec<Vec<usize>> = batches.iter().map(|b| b.indices.clone()).collect();
        assert_eq!(idx, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
        for b in &batches {
            for (r, &i) in b.indices.iter().enumerate() {
                assert_eq!(&b.row(r)[..b.lengths[r]], &seqs[i][..]);
            }
        }
    }

    #[test]
    fn shuffled_batches_are_reproducible_and_complete() {
        let seqs = corpus(1000);
        let batcher = Batcher::new(8).shuffle(true).seed(42).max_len(30);
        let a = batcher.batches(&seqs, 0);
        assert_eq!(a, batcher.batches(&seqs, 0));
        assert_ne!(a, batcher.batches(&seqs, 1));
        assert_ne!(a, batcher.clone().seed(43).batches(&seqs, 0));
        assert_eq!(all_indices(&a), (0..1000).collect::<Vec<_>>());
        assert!(a.iter().all(|b| b.time <= 30 && b.batch <= 8));
        // Rows of a bucketed batch are longest first.
        assert!(a.iter().all(|b| b.lengths.windows(2).all(|w| w[0] >= w[1])));
    }

    #[test]
    fn bucketing_keeps_padding_small() {
        let seqs = corpus(20_000);
        let bucketed = Batcher::new(64).shuffle(true).seed(1).batches(&seqs, 0);
        let share = padding_share(&bucketed);
        assert!(share < 0.10, "bucketed padding share {share}");
        // The same batches without bucketing would waste far more.
        let plain = padding_share(&Batcher::new(64).batches(&seqs, 0));
        assert!(plain > 3.0 * share, "plain {plain} vs bucketed {share}");
    }

    #[test]
    fn sorted_batches_cover_everything_longest_first() {
        let seqs = corpus(100);
        let batches = Batcher::new(16).sorted_batches(&seqs);
        assert_eq!(all_indices(&batches), (0..100).collect::<Vec<_>>());
        let lens: Vec<usize> = batches.iter().flat_map(|b| b.lengths.clone()).collect();
        assert!(lens.windows(2).all(|w| w[0] >= w[1]));
        let mut restored = vec![0u32; 100];
        for b in &batches {
            for (r, &i) in b.indices.iter().enumerate() {
                restored[i] = b.row(r)[0];
            }
        }
        assert_eq!(restored, (0..100).map(|i| i + 2).collect::<Vec<u32>>());
    }
}
