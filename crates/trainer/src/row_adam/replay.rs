//! Replaying a row's zero-gradient Adam steps, exactly, and stopping the weight updates as
//! soon as none of the rest can change a weight.
//!
//! A step with zero gradient decays the moments (`m ← β₁m`, `v ← β₂v`) and moves the weight
//! by `u = s·m/(√v·c + ε)` (`s` the step size, `c = 1/√(1 − β₂ᵗ)`). Along a replay `|m|/√v`
//! shrinks by `ρ = β₁/√β₂` (≈ 0.9 for PyTorch's betas) each step, so the moves fade. When
//! for every element `K·|m|/√v < q` — `K` bounding `s/c` over the remaining steps (with 1%
//! to spare for rounding) and `q` a quarter of the weight's unit in the last place — every
//! remaining `u` is below `q` and `p − u` rounds back to `p`: the weights are final, and
//! only the moments still decay, multiplication by multiplication as in the full replay.
//! The result is bit for bit that of the full replay (the test compares them), for about
//! half of the divisions and square roots of a long replay.

use super::StepHyper;

/// Steps replayed in full between two checks.
const CHECK_EVERY: usize = 8;

/// Zero-gradient steps `steps` on one row (`p`, `m`, `v` of one length).
pub(super) fn replay(p: &mut [f32], m: &mut [f32], v: &mut [f32], steps: &[StepHyper]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the feature was just detected on this CPU.
        return unsafe { replay_avx2(p, m, v, steps) };
    }
    replay_generic(p, m, v, steps)
}

/// Compiled again with AVX2: a row of 16 is two 8-lane vectors instead of four of 4.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn replay_avx2(p: &mut [f32], m: &mut [f32], v: &mut [f32], steps: &[StepHyper]) {
    replay_generic(p, m, v, steps)
}

#[inline(always)]
fn replay_generic(p: &mut [f32], m: &mut [f32], v: &mut [f32], steps: &[StepHyper]) {
    let n = p.len();
    let (m, v) = (&mut m[..n], &mut v[..n]);
    let k2 = settle_bound(steps);
    let mut done = 0;
    for chunk in steps.chunks(CHECK_EVERY) {
        if let Some(k2) = k2 {
            if done > 0 && settled(p, m, v, k2) {
                decay(m, v, &steps[done..]);
                return;
            }
        }
        full(p, m, v, chunk);
        done += chunk.len();
    }
}

/// The steps as dense Adam takes them.
#[inline(always)]
fn full(p: &mut [f32], m: &mut [f32], v: &mut [f32], steps: &[StepHyper]) {
    let n = p.len();
    let (m, v) = (&mut m[..n], &mut v[..n]);
    for h in steps {
        for i in 0..n {
            m[i] *= h.b1;
            v[i] *= h.b2;
            p[i] -= h.step_size * m[i] / (v[i].sqrt() * h.inv_sqrt_bc2 + h.eps);
        }
    }
}

/// The moments' part of the steps.
#[inline(always)]
fn decay(m: &mut [f32], v: &mut [f32], steps: &[StepHyper]) {
    let n = m.len();
    let v = &mut v[..n];
    for h in steps {
        for i in 0..n {
            m[i] *= h.b1;
            v[i] *= h.b2;
        }
    }
}

/// `K²` with `K` bounding `s/c` over `steps` (1% above), or `None` when `|m|/√v` need not
/// shrink (`β₁ ≥ √β₂`, outside PyTorch's defaults) and no step may be skipped.
fn settle_bound(steps: &[StepHyper]) -> Option<f64> {
    let first = steps.first()?;
    let rho = first.b1 as f64 / (first.b2 as f64).sqrt();
    // (Also refuses a NaN ratio.)
    if rho.partial_cmp(&0.999) != Some(std::cmp::Ordering::Less) {
        return None;
    }
    let k = steps
        .iter()
        .map(|h| h.step_size as f64 / h.inv_sqrt_bc2 as f64)
        .fold(0.0f64, f64::max);
    k.is_finite().then_some((1.01 * k) * (1.01 * k))
}

/// Whether no remaining step can move any weight: `K²m² < q²v` for every element (in f64,
/// where none of these squares underflows).
#[inline(always)]
fn settled(p: &[f32], m: &[f32], v: &[f32], k2: f64) -> bool {
    let mut all = true;
    for ((&p, &m), &v) in p.iter().zip(m).zip(v) {
        let q = quarter_ulp(p) as f64;
        let m = m as f64;
        all &= k2 * m * m < q * q * v as f64;
    }
    all
}

/// A quarter of `p`'s unit in the last place; 0 for zero, subnormal, infinite or NaN `p`
/// (so those never settle).
#[inline(always)]
fn quarter_ulp(p: f32) -> f32 {
    let e = (p.to_bits() >> 23) & 0xff;
    if e > 25 && e < 255 {
        f32::from_bits((e - 25) << 23)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn steps(lr: f64, from: u64, count: u64) -> Vec<StepHyper> {
        let c = crate::optim::AdamConfig {
            lr,
            ..Default::default()
        };
        (from + 1..=from + count)
            .map(|t| super::super::hyper(&c, lr * 0.9f64.powi((t / 300) as i32), t))
            .collect()
    }

    #[test]
    fn quarter_ulps() {
        assert_eq!(quarter_ulp(1.0), f32::EPSILON / 4.0);
        assert_eq!(quarter_ulp(-3.0), 2.0 * f32::EPSILON / 4.0);
        assert_eq!(quarter_ulp(0.0), 0.0);
        assert_eq!(quarter_ulp(f32::MIN_POSITIVE / 2.0), 0.0);
        assert_eq!(quarter_ulp(f32::NAN), 0.0);
        assert_eq!(quarter_ulp(f32::INFINITY), 0.0);
    }

    /// Rows after a gradient step, replayed with and without settling: the same bits, and
    /// long replays do settle.
    #[test]
    fn settling_early_changes_no_bit() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        let mut settled_early = 0;
        for case in 0..2000 {
            let n = [1, 3, 16, 64][case % 4];
            let scale = [1.0f32, 1e-2, 1e-5, 30.0][case / 4 % 4];
            let mut p: Vec<f32> = (0..n).map(|_| rng.gen_range(-2.0..2.0) * scale).collect();
            if case % 7 == 0 {
                p[0] = 0.0;
            }
            // Moments as a few real steps leave them (some zero, some of mixed history).
            let mut m: Vec<f32> = (0..n).map(|_| rng.gen_range(-1e-2..1e-2)).collect();
            let mut v: Vec<f32> = m.iter().map(|x| x * x * rng.gen_range(0.5..20.0)).collect();
            if case % 5 == 0 {
                m[n - 1] = 0.0;
                v[n - 1] = 0.0;
            }
            let from = rng.gen_range(0..3000);
            let count = rng.gen_range(1..=200);
            let window = steps(1e-3, from, count);
            let (mut p2, mut m2, mut v2) = (p.clone(), m.clone(), v.clone());
            // Would a check before the last chunk have stopped the weight updates?
            let k2 = settle_bound(&window).expect("PyTorch's betas");
            let (mut p3, mut m3, mut v3) = (p.clone(), m.clone(), v.clone());
            for (k, chunk) in window.chunks(CHECK_EVERY).enumerate() {
                if k > 0 && settled(&p3, &m3, &v3, k2) {
                    settled_early += 1;
                    break;
                }
                full(&mut p3, &mut m3, &mut v3, chunk);
            }
            full(&mut p2, &mut m2, &mut v2, &window);
            replay(&mut p, &mut m, &mut v, &window);
            let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&p), bits(&p2), "weights, case {case}");
            assert_eq!(bits(&m), bits(&m2), "m, case {case}");
            assert_eq!(bits(&v), bits(&v2), "v, case {case}");
        }
        assert!(
            settled_early > 200,
            "only {settled_early} replays settled early"
        );
    }

    #[test]
    fn long_replays_of_typical_rows_settle() {
        // A weight of order 1 after one gradient step: m = 0.1g, v = 0.001g².
        let mut p = vec![0.7f32, -1.3, 0.4, 2.0];
        let g = [0.01f32, -0.02, 0.005, 0.03];
        let mut m: Vec<f32> = g.iter().map(|g| 0.1 * g).collect();
        let mut v: Vec<f32> = g.iter().map(|g| 0.001 * g * g).collect();
        let window = steps(1e-3, 2000, 200);
        let k2 = settle_bound(&window).unwrap();
        let mut at = None;
        for (j, h) in window.iter().enumerate() {
            if settled(&p, &m, &v, k2) {
                at = Some(j);
                break;
            }
            full(&mut p, &mut m, &mut v, std::slice::from_ref(h));
        }
        let at = at.expect("settles within 200 steps");
        assert!(at < 150, "settles after {at} steps");
    }
}
