//! `eˣ`, `σ(x) = 1/(1 + e⁻ˣ)` and `tanh x = 2σ(2x) − 1` in f32, without branches or calls,
//! so that loops over gate and attention arrays vectorise (libm's `expf`/`tanhf` calls were a
//! third of the student's training time).
//!
//! `exp` reduces `x = n·ln 2 + r` (Cody–Waite, `|r| ≤ ln 2 / 2`) and evaluates Cephes' degree-6
//! polynomial for `eʳ`, then scales by `2ⁿ` through the exponent bits. Relative error
//! ≤ 2e-7 over `[−87, 88]`. Edge cases, each tested:
//!
//! | `x` | `exp(x)` |
//! |---|---|
//! | `< −87`, `−∞` | exactly `0` (flushed: the true value, ≤ 1.6e-38, would be subnormal or nearly) |
//! | `> 88`, `+∞` | `exp(88)` ≈ 1.65e38 (finite: saturated, so that `1/(1 + eˣ)` stays a number) |
//! | NaN | NaN |
//!
//! Hence `sigmoid(−∞) = 1/(1 + e⁸⁸)` (a tiny normal, not 0), `sigmoid(+∞) = 1`,
//! `tanh(±∞) = ±1`, and NaN in gives NaN out. `tanh` has absolute error ≤ 5e-7 (it loses
//! relative accuracy near 0, where `2σ(2x) − 1` cancels).

/// `ln 2` split in two (Cody–Waite): `LN2_HI` has few mantissa bits, so `n·LN2_HI` is exact.
pub const LN2_HI: f32 = 0.693_359_4;
/// `ln 2 − LN2_HI`.
pub const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5·2²³: adding it rounds an f32 to an integer, kept in the low mantissa bits.
pub const ROUND: f32 = 12_582_912.0;
/// Cephes' polynomial for `eʳ = 1 + r + r²·P(r)`, highest degree first:
/// `P(r) = ((((c₀r + c₁)r + c₂)r + c₃)r + c₄)r + c₅`. The SIMD versions of [`exp`] (the
/// student's serving kernels, the trainer's cell) evaluate the same coefficients.
pub const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// `Σ aᵢ bᵢ` with eight independent accumulators, so that the compiler vectorises it (a
/// plain iterator sum is a sequential chain of float additions it may not reorder).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `eˣ`; see the module doc for accuracy and edge cases.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    let [c0, c1, c2, c3, c4, c5] = EXP_POLY;
    let underflow = x < -87.0;
    let x = x.clamp(-87.0, 88.0); // NaN stays NaN
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((c0 * r + c1) * r + c2) * r + c3) * r + c4) * r + c5;
    let p = p * r * r + r + 1.0;
    // `n` as an integer without a float-to-int conversion (`as` saturates with branches
    // that stop the loops vectorising): adding ROUND left it in the low mantissa bits.
    // For x in [-87, 88], n is in [-126, 127], a normal exponent; for NaN the bits are
    // garbage but `p` is NaN, and so is the product.
    let n = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let y = p * f32::from_bits((n.wrapping_add(127) as u32) << 23);
    if underflow {
        0.0
    } else {
        y
    }
}

/// Logistic sigmoid `1 / (1 + e⁻ˣ)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh x = 2σ(2x) − 1`.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    2.0 * sigmoid(2.0 * x) - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every 1/64 from −120 to 100: below −87 and above 88 the documented saturation.
    fn grid() -> impl Iterator<Item = f32> {
        (-120 * 64..=100 * 64).map(|i| i as f32 / 64.0)
    }

    /// Against libm's `exp` in f64 (the oracle) and libm's `expf`.
    #[test]
    fn exp_matches_libm_over_a_wide_range() {
        let cap = 88f64.exp();
        for x in grid() {
            let (got, want) = (exp(x), (x as f64).exp());
            if x < -87.0 {
                assert_eq!(got, 0.0, "exp({x})");
            } else if x > 88.0 {
                assert_eq!(got, exp(88.0), "exp({x}) saturates");
                assert!((got as f64 - cap).abs() <= cap * 2e-7, "exp(88) = {got}");
            } else {
                let rel = ((got as f64 - want) / want).abs();
                assert!(rel <= 2e-7, "exp({x}) = {got} vs {want} (rel {rel})");
                let libm_f32 = x.exp();
                let ulps = (got.to_bits() as i64 - libm_f32.to_bits() as i64).abs();
                assert!(
                    ulps <= 3,
                    "exp({x}) = {got} vs expf {libm_f32} ({ulps} ulps)"
                );
            }
        }
    }

    #[test]
    fn exp_at_the_edges() {
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(-f32::NAN).is_nan());
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(f32::INFINITY), exp(88.0));
        assert!(exp(f32::INFINITY).is_finite());
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        // The flush point: −87 itself is computed, just below it is 0.
        let at = exp(-87.0) as f64;
        assert!((at - (-87f64).exp()).abs() <= (-87f64).exp() * 2e-7 && at > 0.0);
        assert_eq!(exp(-87.0f32.next_down_compat()), 0.0);
        assert_eq!(exp(f32::MIN), 0.0);
        assert_eq!(exp(f32::MAX), exp(88.0));
        // Subnormal and tiny inputs round to 1.
        assert_eq!(exp(f32::from_bits(1)), 1.0);
    }

    #[test]
    fn sigmoid_and_tanh_match_libm() {
        for x in grid() {
            let want_s = 1.0 / (1.0 + (-x as f64).exp());
            assert!(
                (sigmoid(x) as f64 - want_s).abs() <= 2e-7,
                "sigmoid({x}) = {} vs {want_s}",
                sigmoid(x)
            );
            let want_t = (x as f64).tanh();
            assert!(
                (tanh(x) as f64 - want_t).abs() <= 5e-7,
                "tanh({x}) = {} vs {want_t}",
                tanh(x)
            );
        }
    }

    #[test]
    fn sigmoid_and_tanh_at_the_edges() {
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        // 1 / (1 + e⁸⁸): the saturated exp leaves a tiny positive number, not 0.
        assert_eq!(sigmoid(f32::NEG_INFINITY), 1.0 / (1.0 + exp(88.0)));
        assert!(sigmoid(f32::NEG_INFINITY) > 0.0);
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh(0.0), 0.0);
        assert!(sigmoid(f32::NAN).is_nan() && tanh(f32::NAN).is_nan());
    }

    /// `f32::next_down` is newer than the crate's minimum Rust.
    trait NextDown {
        fn next_down_compat(self) -> Self;
    }

    impl NextDown for f32 {
        fn next_down_compat(self) -> f32 {
            // For a negative normal number, the next value down has the next larger bits.
            debug_assert!(self < 0.0 && self.is_normal());
            f32::from_bits(self.to_bits() + 1)
        }
    }
}
