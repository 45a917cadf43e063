//! The keep-mask of inverted dropout with probability `p`:
//!
//! ```text
//! mᵢ = [uᵢ ≥ p] / (1 − p),    uᵢ = ⌊wᵢ / 2⁸⌋ · 2⁻²⁴ ∈ [0, 1)
//! ```
//!
//! where `wᵢ` is the `i`-th `next_u32` of the caller's seeded RNG: one draw per element, in
//! order, so a seed gives the same mask on any device and `x·m` is dropout with `E[x·m] = x`.
//! `uᵢ` is `rand`'s `gen::<f32>()`, so the mask is the one `rng.gen::<f32>() < p ⇒ drop`
//! draws ([`reference_keep_mask`], its test oracle); the kernel compares integers instead
//! (`⌊wᵢ/2⁸⌋ ≥ ⌈p·2²⁴⌉`). `p ≤ 0` (or NaN) keeps everything with scale 1, `p ≥ 1` drops
//! everything; either way the RNG still advances by one draw per element.

use rand::{Rng, RngCore};

/// Fills `mask` with keep-mask values (`1/(1−p)` kept, `0` dropped), drawing from `rng`.
pub fn keep_mask_into<R: RngCore + ?Sized>(mask: &mut [f32], p: f32, rng: &mut R) {
    let p = if p > 0.0 { p.min(1.0) } else { 0.0 }; // NaN too
                                                    // p·2²⁴ is exact in f32 (a power-of-two scale), so the integer threshold is exact too.
    let threshold = (p * 16_777_216.0).ceil() as u32;
    let scale = if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 };
    for m in mask.iter_mut() {
        *m = if rng.next_u32() >> 8 >= threshold {
            scale
        } else {
            0.0
        };
    }
}

/// `n` keep-mask values; see [`keep_mask_into`].
pub fn keep_mask<R: RngCore + ?Sized>(n: usize, p: f32, rng: &mut R) -> Vec<f32> {
    let mut mask = vec![0.0; n];
    keep_mask_into(&mut mask, p, rng);
    mask
}

/// The mask as a uniform float per element compared with `p`: the oracle of
/// [`keep_mask_into`] (the student's dropout before it moved here).
pub fn reference_keep_mask<R: RngCore + ?Sized>(n: usize, p: f32, rng: &mut R) -> Vec<f32> {
    let scale = 1.0 / (1.0 - p);
    (0..n)
        .map(|_| if rng.gen::<f32>() < p { 0.0 } else { scale })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn equals_the_uniform_float_composition() {
        for (seed, p) in [(0u64, 0.5f32), (1, 0.1), (2, 0.3), (3, 0.999), (4, 1e-7)] {
            let (mut a, mut b) = (
                ChaCha8Rng::seed_from_u64(seed),
                ChaCha8Rng::seed_from_u64(seed),
            );
            for n in [1usize, 7, 10_000] {
                assert_eq!(
                    keep_mask(n, p, &mut a),
                    reference_keep_mask(n, p, &mut b),
                    "seed {seed}, p {p}, n {n}"
                );
            }
            // Both consumed the same draws.
            assert_eq!(a.next_u32(), b.next_u32());
        }
    }

    #[test]
    fn threshold_is_exact_at_the_boundary() {
        // A generator that returns one fixed word.
        struct Fixed(u32);
        impl RngCore for Fixed {
            fn next_u32(&mut self) -> u32 {
                self.0
            }
            fn next_u64(&mut self) -> u64 {
                self.0 as u64
            }
            fn fill_bytes(&mut self, dest: &mut [u8]) {
                dest.fill(0)
            }
            fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
                dest.fill(0);
                Ok(())
            }
        }
        // p = 0.25 is exactly 2²² / 2²⁴: u = 0.25 is kept, the word below it dropped.
        let at = (1u32 << 22) << 8;
        assert_eq!(keep_mask(1, 0.25, &mut Fixed(at)), [1.0 / 0.75]);
        assert_eq!(keep_mask(1, 0.25, &mut Fixed(at - 1)), [0.0]);
        assert_eq!(reference_keep_mask(1, 0.25, &mut Fixed(at)), [1.0 / 0.75]);
        assert_eq!(reference_keep_mask(1, 0.25, &mut Fixed(at - 1)), [0.0]);
    }

    #[test]
    fn drops_about_p_and_keeps_the_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mask = keep_mask(100_000, 0.1, &mut rng);
        let dropped = mask.iter().filter(|&&v| v == 0.0).count();
        assert!((9_000..11_000).contains(&dropped), "{dropped} dropped");
        let mean = mask.iter().map(|&v| v as f64).sum::<f64>() / 1e5;
        assert!((mean - 1.0).abs() < 0.01, "{mean}");
    }

    #[test]
    fn degenerate_probabilities() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        assert!(keep_mask(100, 0.0, &mut rng).iter().all(|&v| v == 1.0));
        assert!(keep_mask(100, -0.5, &mut rng).iter().all(|&v| v == 1.0));
        assert!(keep_mask(100, f32::NAN, &mut rng).iter().all(|&v| v == 1.0));
        assert!(keep_mask(100, 1.0, &mut rng).iter().all(|&v| v == 0.0));
        assert!(keep_mask(100, 2.0, &mut rng).iter().all(|&v| v == 0.0));
        // Same seed, same mask; the draws advance whatever p is.
        let (mut a, mut b) = (ChaCha8Rng::seed_from_u64(6), ChaCha8Rng::seed_from_u64(6));
        keep_mask(3, 1.0, &mut a);
        keep_mask(3, 0.0, &mut b);
        assert_eq!(keep_mask(50, 0.5, &mut a), keep_mask(50, 0.5, &mut b));
    }
}
