//! Softmax of one row of attention scores, in place: `s ← softmax(scale·s + mask)`.
//!
//! The scores come from a product, so the scale and the additive mask (0 for tokens,
//! `f32::MIN` for padding) are applied here, in the pass that finds the maximum, rather than
//! in passes of their own. Rows are short (one per query, as long as the sequence, ~15
//! tokens in SST-2), so the kernel is a few vector loops; the default x86-64 target only
//! assumes SSE2, and a copy compiled for AVX2 + FMA runs where the CPU has them.

use crate::math::exp;

/// `s ← softmax(scale·s + mask)` over the row. `mask` is at least as long as `s`.
///
/// A fully masked row (every score `f32::MIN`) comes out uniform.
///
/// # Panics
/// If `mask` is shorter than `s`.
pub fn masked_softmax(s: &mut [f32], mask: &[f32], scale: f32) {
    let mask = &mask[..s.len()];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the features were just detected on this CPU.
        return unsafe { masked_softmax_avx2(s, mask, scale) };
    }
    masked_softmax_generic(s, mask, scale)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn masked_softmax_avx2(s: &mut [f32], mask: &[f32], scale: f32) {
    masked_softmax_generic(s, mask, scale)
}

/// Loops over equal lengths with eight accumulators for the max and the sum, so that they
/// vectorise (a running `max` or sum is a chain the compiler may not reorder).
#[inline(always)]
fn masked_softmax_generic(s: &mut [f32], mask: &[f32], scale: f32) {
    let n = s.len();
    let mask = &mask[..n];
    for i in 0..n {
        s[i] = scale * s[i] + mask[i];
    }
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            lanes[l] = lanes[l].max(c[l]);
        }
    }
    let max = chunks
        .remainder()
        .iter()
        .chain(&lanes)
        .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    for x in s.iter_mut() {
        *x = exp(*x - max);
    }
    let mut acc = [0f32; 8];
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            acc[l] += c[l];
        }
    }
    let total: f32 = acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>();
    let inv = 1.0 / total;
    for x in s.iter_mut() {
        *x *= inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain formula in f64.
    fn reference(s: &[f32], mask: &[f32], scale: f32) -> Vec<f64> {
        let z: Vec<f64> = s
            .iter()
            .zip(mask)
            .map(|(&s, &m)| scale as f64 * s as f64 + m as f64)
            .collect();
        let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|z| (z - max).exp()).collect();
        let total: f64 = e.iter().sum();
        e.iter().map(|e| e / total).collect()
    }

    #[test]
    fn matches_the_formula_for_every_length_and_mask() {
        for n in 1..=40 {
            let s: Vec<f32> = (0..n)
                .map(|i| ((i * 7 + 3) as f32 * 0.61).sin() * 9.0)
                .collect();
            // Padding at the end of every other row, one position masked in the others.
            let mask: Vec<f32> = (0..n)
                .map(|i| match (n % 2, i) {
                    (0, i) if i + 3 >= n && i > 0 => f32::MIN,
                    (1, 1) => f32::MIN,
                    _ => 0.0,
                })
                .collect();
            let mut got = s.clone();
            masked_softmax(&mut got, &mask, 0.177);
            for (i, (g, w)) in got.iter().zip(reference(&s, &mask, 0.177)).enumerate() {
                assert!((*g as f64 - w).abs() <= 1e-6, "n {n}, {i}: {g} vs {w}");
                if mask[i] == f32::MIN && n > 1 {
                    assert_eq!(*g, 0.0, "n {n}: a masked position gets no weight");
                }
            }
            let mut plain = s.clone();
            masked_softmax_generic(&mut plain, &mask, 0.177);
            assert_eq!(
                plain, got,
                "n {n}: the dispatched copy computes the same sums"
            );
        }
    }

    #[test]
    fn a_fully_masked_row_is_uniform() {
        let mut s = vec![1.0f32, -2.0, 3.0];
        masked_softmax(&mut s, &[f32::MIN; 3], 1.0);
        // scale·s + f32::MIN rounds to f32::MIN for these scores, so all are equal.
        assert_eq!(s, vec![1.0 / 3.0; 3]);
    }
}
