//! Replaying a row's zero-gradient steps, exactly, and stopping the weight updates as soon
//! as none of the rest can change a weight.
//!
//! A step with zero gradient decays the moments (`m ← β₁m`, `v ← β₂v`) and moves the weight
//! by `u = s·m/(√v·c + ε)` (`s` the step size, `c = 1/√(1 − β₂ᵗ)`). Along a replay `|m|/√v`
//! shrinks by `ρ = β₁/√β₂` (≈ 0.9 for PyTorch's betas) each step, so the moves fade. When,
//! without weight decay, for every element `K·|m|/√v < q` — `K` bounding `s/c` over the
//! remaining steps (with 1% to spare for rounding), `q` a quarter of the weight's unit in
//! the last place — every remaining `u` is below `q` and `p − u` rounds back to `p`: the
//! weights are final and only the moments still decay, multiplication by multiplication as
//! in the full replay. The result is bit for bit that of the full replay (the test compares
//! them), for fewer divisions and square roots in long replays.

use crate::adamw::StepRule;

/// Steps replayed in full between two checks.
const CHECK_EVERY: usize = 8;

/// The zero-gradient steps `rules` on one row (`p`, `m`, `v` of one length).
pub(super) fn replay(p: &mut [f32], m: &mut [f32], v: &mut [f32], rules: &[StepRule]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the features were just detected on this CPU.
        return unsafe { replay_avx2(p, m, v, rules) };
    }
    replay_generic(p, m, v, rules)
}

/// Compiled again with AVX2: a row of 16 is two 8-lane vectors instead of four of 4.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn replay_avx2(p: &mut [f32], m: &mut [f32], v: &mut [f32], rules: &[StepRule]) {
    replay_generic(p, m, v, rules)
}

#[inline(always)]
fn replay_generic(p: &mut [f32], m: &mut [f32], v: &mut [f32], rules: &[StepRule]) {
    let n = p.len();
    let (m, v) = (&mut m[..n], &mut v[..n]);
    let k2 = settle_bound(rules);
    let mut done = 0;
    for chunk in rules.chunks(CHECK_EVERY) {
        if let Some(k2) = k2 {
            if done > 0 && settled(p, m, v, k2) {
                decay(m, v, &rules[done..]);
                return;
            }
        }
        full(p, m, v, chunk);
        done += chunk.len();
    }
}

/// The steps as dense AdamW takes them (`StepRule`'s zero-gradient lane).
#[inline(always)]
fn full(p: &mut [f32], m: &mut [f32], v: &mut [f32], rules: &[StepRule]) {
    let n = p.len();
    let (m, v) = (&mut m[..n], &mut v[..n]);
    for h in rules {
        for i in 0..n {
            m[i] *= h.b1;
            v[i] *= h.b2;
            p[i] = p[i] * h.decay - h.step_size * m[i] / (v[i].sqrt() * h.inv_sqrt_bc2 + h.eps);
        }
    }
}

/// The moments' part of the steps.
#[inline(always)]
fn decay(m: &mut [f32], v: &mut [f32], rules: &[StepRule]) {
    let n = m.len();
    let v = &mut v[..n];
    for h in rules {
        for i in 0..n {
            m[i] *= h.b1;
            v[i] *= h.b2;
        }
    }
}

/// `K²` with `K` bounding `s/c` over `rules` (1% above), or `None` when no step may be
/// skipped: weight decay moves every weight every step, and `β₁ ≥ √β₂` (outside PyTorch's
/// defaults) need not shrink `|m|/√v`.
fn settle_bound(rules: &[StepRule]) -> Option<f64> {
    let first = rules.first()?;
    let rho = first.b1 as f64 / (first.b2 as f64).sqrt();
    // (Also refuses a NaN ratio.)
    if rho.partial_cmp(&0.999) != Some(std::cmp::Ordering::Less) {
        return None;
    }
    if rules.iter().any(|h| h.decay != 1.0) {
        return None;
    }
    let k = rules
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
    use crate::adamw::AdamWConfig;
    use rand::{Rng, SeedableRng};

    fn rules(lr: f64, from: u64, count: u64, weight_decay: f64) -> Vec<StepRule> {
        let c = AdamWConfig {
            weight_decay,
            ..AdamWConfig::default()
        };
        (from + 1..=from + count)
            .map(|t| StepRule::new(&c, t, lr * 0.9f64.powi((t / 300) as i32), true))
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

    /// Rows after gradient steps, replayed with and without settling: the same bits, with
    /// and without weight decay; and many replays do settle early.
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
            let wd = if case % 11 == 0 { 0.01 } else { 0.0 };
            let window = rules(1e-3, from, count, wd);
            let (mut p2, mut m2, mut v2) = (p.clone(), m.clone(), v.clone());
            // Would a check before the last chunk have stopped the weight updates?
            if let Some(k2) = settle_bound(&window) {
                let (mut p3, mut m3, mut v3) = (p.clone(), m.clone(), v.clone());
                for (k, chunk) in window.chunks(CHECK_EVERY).enumerate() {
                    if k > 0 && settled(&p3, &m3, &v3, k2) {
                        settled_early += 1;
                        break;
                    }
                    full(&mut p3, &mut m3, &mut v3, chunk);
                }
            } else {
                assert!(wd > 0.0, "no weight decay: the replay may settle");
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
    fn the_full_replay_is_the_rules_zero_gradient_step() {
        let window = rules(1e-3, 40, 30, 0.01);
        let (mut p, mut m, mut v) = (vec![0.3f32, -1.2], vec![1e-3f32, 2e-3], vec![1e-6f32, 4e-6]);
        let (mut p2, mut m2, mut v2) = (p.clone(), m.clone(), v.clone());
        full(&mut p, &mut m, &mut v, &window);
        for h in &window {
            h.serial(&mut p2, &mut m2, &mut v2, None);
        }
        assert_eq!((p, m, v), (p2, m2, v2));
    }

    #[test]
    fn long_replays_of_typical_rows_settle() {
        // A weight of order 1 after one gradient step: m = 0.1g, v = 0.001g².
        let mut p = vec![0.7f32, -1.3, 0.4, 2.0];
        let g = [0.01f32, -0.02, 0.005, 0.03];
        let mut m: Vec<f32> = g.iter().map(|g| 0.1 * g).collect();
        let mut v: Vec<f32> = g.iter().map(|g| 0.001 * g * g).collect();
        let window = rules(1e-3, 2000, 200, 0.0);
        let k2 = settle_bound(&window).unwrap();
        let at = (0..window.len()).find(|&j| {
            let done = settled(&p, &m, &v, k2);
            if !done {
                full(&mut p, &mut m, &mut v, &window[j..j + 1]);
            }
            done
        });
        let at = at.expect("settles within 200 steps");
        assert!(at < 150, "settles after {at} steps");
    }
}
