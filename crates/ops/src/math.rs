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

/// [`exp`], [`sigmoid`] and [`tanh`] on eight lanes in AVX2 + FMA intrinsics (the trainer's
/// cell, the serving kernels' AVX2 block step): the same reduction and polynomial with fused
/// multiply-adds, so they agree with the scalar ones to a few units in the last place.
///
/// # Safety
/// Each function must be called only where AVX2 and FMA are present (from a function
/// compiled with those features, after detecting them).
#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    use std::arch::x86_64::*;

    use super::{EXP_POLY, LN2_HI, LN2_LO, ROUND};

    /// `r[i][j]` becomes `r[j][i]` for eight vectors of eight floats.
    ///
    /// # Safety
    /// AVX must be present.
    #[inline(always)]
    pub unsafe fn transpose8(r: &mut [__m256; 8]) {
        let t: [__m256; 8] = [
            _mm256_unpacklo_ps(r[0], r[1]),
            _mm256_unpackhi_ps(r[0], r[1]),
            _mm256_unpacklo_ps(r[2], r[3]),
            _mm256_unpackhi_ps(r[2], r[3]),
            _mm256_unpacklo_ps(r[4], r[5]),
            _mm256_unpackhi_ps(r[4], r[5]),
            _mm256_unpacklo_ps(r[6], r[7]),
            _mm256_unpackhi_ps(r[6], r[7]),
        ];
        let u: [__m256; 8] = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        for i in 0..4 {
            r[i] = _mm256_permute2f128_ps::<0x20>(u[i], u[i + 4]);
            r[i + 4] = _mm256_permute2f128_ps::<0x31>(u[i], u[i + 4]);
        }
    }

    /// `eˣ` lane by lane: 0 below −87, `e⁸⁸` above 88, NaN for NaN.
    ///
    /// # Safety
    /// AVX2 and FMA must be present.
    #[inline(always)]
    pub unsafe fn exp8(x: __m256) -> __m256 {
        let underflow = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(-87.0));
        // max/min return their second operand when either is NaN: x second keeps a NaN.
        let x = _mm256_min_ps(
            _mm256_set1_ps(88.0),
            _mm256_max_ps(_mm256_set1_ps(-87.0), x),
        );
        let round = _mm256_set1_ps(ROUND);
        let shifted = _mm256_fmadd_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E), round);
        let n = _mm256_sub_ps(shifted, round);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
        let mut p = _mm256_set1_ps(EXP_POLY[0]);
        for &c in &EXP_POLY[1..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let p = _mm256_fmadd_ps(
            p,
            _mm256_mul_ps(r, r),
            _mm256_add_ps(r, _mm256_set1_ps(1.0)),
        );
        let bits = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_castps_si256(round));
        let scale = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            bits,
            _mm256_set1_epi32(127),
        )));
        _mm256_andnot_ps(underflow, _mm256_mul_ps(p, scale))
    }

    /// `σ(x) = 1/(1 + e⁻ˣ)` lane by lane.
    ///
    /// # Safety
    /// AVX2 and FMA must be present.
    #[inline(always)]
    pub unsafe fn sigmoid8(x: __m256) -> __m256 {
        let one = _mm256_set1_ps(1.0);
        let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
        _mm256_div_ps(one, _mm256_add_ps(one, e))
    }

    /// `tanh x = 2σ(2x) − 1` lane by lane.
    ///
    /// # Safety
    /// AVX2 and FMA must be present.
    #[inline(always)]
    pub unsafe fn tanh8(x: __m256) -> __m256 {
        let s = sigmoid8(_mm256_add_ps(x, x));
        _mm256_sub_ps(_mm256_add_ps(s, s), _mm256_set1_ps(1.0))
    }
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

    /// The eight-lane versions against the scalar ones over the grid, the infinities and
    /// NaN (the trainer's cell and the serving kernels' AVX2 block step use them).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_lanes_match_the_scalar_functions() {
        use std::arch::x86_64::*;
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            return;
        }
        let xs: Vec<f32> = grid()
            .chain([f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1e30, -1e30])
            .collect();
        for chunk in xs.chunks(8) {
            let mut x = [0.0f32; 8];
            x[..chunk.len()].copy_from_slice(chunk);
            let (mut e, mut s, mut t) = ([0.0f32; 8], [0.0f32; 8], [0.0f32; 8]);
            // SAFETY: AVX2 and FMA were detected above.
            unsafe { lanes(&x, &mut e, &mut s, &mut t) };
            for l in 0..chunk.len() {
                let v = x[l];
                if v.is_nan() {
                    assert!(
                        e[l].is_nan() && s[l].is_nan() && t[l].is_nan(),
                        "NaN stays NaN"
                    );
                    continue;
                }
                let ulps = (e[l].to_bits() as i64 - exp(v).to_bits() as i64).abs();
                assert!(ulps <= 2, "exp({v}): {} vs {} ({ulps} ulps)", e[l], exp(v));
                assert!((s[l] - sigmoid(v)).abs() <= 2e-7, "sigmoid({v})");
                assert!((t[l] - tanh(v)).abs() <= 4e-7, "tanh({v})");
            }
        }

        #[target_feature(enable = "avx2,fma")]
        unsafe fn lanes(x: &[f32; 8], e: &mut [f32; 8], s: &mut [f32; 8], t: &mut [f32; 8]) {
            let v = _mm256_loadu_ps(x.as_ptr());
            _mm256_storeu_ps(e.as_mut_ptr(), avx2::exp8(v));
            _mm256_storeu_ps(s.as_mut_ptr(), avx2::sigmoid8(v));
            _mm256_storeu_ps(t.as_mut_ptr(), avx2::tanh8(v));
        }
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
