//! Seeded length-bucketed batches for training (dynamic padding).
//!
//! Each epoch the example indices are shuffled, cut into pools of `POOL` batches, each
//! pool is sorted by token count and cut into batches, and the batch order is shuffled.
//! Batches thus hold sentences of similar length (little padding) while every epoch still
//! sees a different, seeded mix. The same `(seed, epoch)` gives the same batches.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Batches per sorting pool: large enough for tight lengths, small enough to stay random.
const POOL: usize = 50;

/// Batches of indices into `lengths` for one epoch; every index appears exactly once.
pub fn bucketed_batches(
    lengths: &[usize],
    batch_size: usize,
    seed: u64,
    epoch: u64,
) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.shuffle(&mut rng);
    let mut batches: Vec<Vec<usize>> = Vec::with_capacity(lengths.len().div_ceil(batch_size));
    for pool in order.chunks_mut(batch_size * POOL) {
        pool.sort_by_key(|&i| lengths[i]);
        batches.extend(pool.chunks(batch_size).map(<[usize]>::to_vec));
    }
    batches.shuffle(&mut rng);
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_every_example_once_with_tight_lengths() {
        let lengths: Vec<usize> = (0..5000).map(|i| (i * 7919) % 61 + 3).collect();
        let batches = bucketed_batches(&lengths, 32, 1, 0);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..5000).collect::<Vec<_>>());
        assert_eq!(batches.len(), 5000usize.div_ceil(32));
        // Padding: tokens in batches vs. sum of lengths.
        let padded: usize = batches
            .iter()
            .map(|b| b.len() * b.iter().map(|&i| lengths[i]).max().unwrap_or(0))
            .sum();
        let real: usize = lengths.iter().sum();
        assert!((padded as f64) < 1.1 * real as f64, "{padded} vs {real}");
        // Seeded: same epoch same batches, another epoch other batches.
        assert_eq!(batches, bucketed_batches(&lengths, 32, 1, 0));
        assert_ne!(batches, bucketed_batches(&lengths, 32, 1, 1));
    }
}
