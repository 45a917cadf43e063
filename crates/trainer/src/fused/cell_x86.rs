//! The LSTM cell of one step in 8-lane AVX2 + FMA intrinsics, for hidden sizes that are a
//! multiple of 8 (the presets' 8 and 64).
//!
//! The portable loops in `lstm` are eight wide for `H = 8`; LLVM unrolls them fully and then
//! leaves them scalar, which made the gates' nonlinearities the largest cost of a step. Here
//! each row's gates and states go through `__m256` vectors. The nonlinearities are those of
//! `distill_ops::math` (Cephes' `exp` polynomial, `σ(x) = 1/(1 + e⁻ˣ)`,
//! `tanh x = 2σ(2x) − 1`), evaluated with fused multiply-adds, so they agree with the scalar
//! ones to a few units in the last place.

use std::arch::x86_64::*;

use distill_ops::math::avx2::{sigmoid8, tanh8};

use super::lstm::{StepBackward, StepForward};

/// `σ′` from `σ`: `s·(1 − s)`.
#[inline(always)]
unsafe fn dsig(s: __m256) -> __m256 {
    _mm256_mul_ps(s, _mm256_sub_ps(_mm256_set1_ps(1.0), s))
}

#[inline(always)]
unsafe fn load(s: &[f32], at: usize) -> __m256 {
    debug_assert!(at + 8 <= s.len());
    _mm256_loadu_ps(s.as_ptr().add(at))
}

#[inline(always)]
unsafe fn store(s: &mut [f32], at: usize, v: __m256) {
    debug_assert!(at + 8 <= s.len());
    _mm256_storeu_ps(s.as_mut_ptr().add(at), v)
}

/// One forward step (`hd` a multiple of 8). The asserts bound every vector access.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn cell_forward(hd: usize, st: StepForward) {
    let StepForward {
        z,
        bias,
        prev,
        o,
        rows,
        c,
        tanh_c,
        h,
    } = st;
    let g4 = 4 * hd;
    assert!(hd.is_multiple_of(8), "whole vectors per gate");
    assert!(z.len() >= rows * g4 && bias.len() >= g4);
    assert!(c.len() >= (o + rows) * hd && tanh_c.len() >= (o + rows) * hd);
    assert!(h.len() >= (o + rows) * hd);
    if let Some(p) = prev {
        assert!(p + rows <= o, "the previous step's rows come first");
    }
    for b in 0..rows {
        let zr = b * g4;
        let (r, pr) = ((o + b) * hd, prev.map(|p| (p + b) * hd));
        for k in (0..hd).step_by(8) {
            let i = sigmoid8(_mm256_add_ps(load(z, zr + k), load(bias, k)));
            let f = sigmoid8(_mm256_add_ps(load(z, zr + hd + k), load(bias, hd + k)));
            let g = tanh8(_mm256_add_ps(
                load(z, zr + 2 * hd + k),
                load(bias, 2 * hd + k),
            ));
            let og = sigmoid8(_mm256_add_ps(
                load(z, zr + 3 * hd + k),
                load(bias, 3 * hd + k),
            ));
            store(z, zr + k, i);
            store(z, zr + hd + k, f);
            store(z, zr + 2 * hd + k, g);
            store(z, zr + 3 * hd + k, og);
            let ig = _mm256_mul_ps(i, g);
            let cr = match pr {
                Some(pr) => _mm256_fmadd_ps(f, load(c, pr + k), ig),
                None => ig,
            };
            let tc = tanh8(cr);
            store(c, r + k, cr);
            store(tanh_c, r + k, tc);
            store(h, r + k, _mm256_mul_ps(og, tc));
        }
    }
}

/// One backward step (`hd` a multiple of 8). The asserts bound every vector access.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn cell_backward(hd: usize, st: StepBackward) {
    let StepBackward {
        tr,
        prev,
        o,
        rows,
        d_out,
        dh,
        dc,
        dz,
    } = st;
    let g4 = 4 * hd;
    assert!(hd.is_multiple_of(8), "whole vectors per gate");
    assert!(tr.gates.len() >= (o + rows) * g4 && tr.tanh_c.len() >= (o + rows) * hd);
    assert!(dz.len() >= (o + rows) * g4 && dh.len() >= rows * hd && dc.len() >= rows * hd);
    if let Some(d) = d_out {
        assert!(d.len() >= (o + rows) * hd);
    }
    if let Some(p) = prev {
        assert!(tr.c.len() >= (p + rows) * hd);
    }
    let one = _mm256_set1_ps(1.0);
    for b in 0..rows {
        let (gr, r) = ((o + b) * g4, (o + b) * hd);
        for k in (0..hd).step_by(8) {
            let i = load(&tr.gates, gr + k);
            let f = load(&tr.gates, gr + hd + k);
            let g = load(&tr.gates, gr + 2 * hd + k);
            let og = load(&tr.gates, gr + 3 * hd + k);
            let tc = load(&tr.tanh_c, r + k);
            let cp = match prev {
                Some(p) => load(&tr.c, (p + b) * hd + k),
                None => _mm256_setzero_ps(),
            };
            let mut dhk = load(dh, b * hd + k);
            if let Some(d) = d_out {
                dhk = _mm256_add_ps(dhk, load(d, r + k));
            }
            // dc += dh·o·(1 − tanh²c)
            let dtanh = _mm256_fnmadd_ps(tc, tc, one);
            let dck = _mm256_fmadd_ps(_mm256_mul_ps(dhk, og), dtanh, load(dc, b * hd + k));
            store(dz, gr + k, _mm256_mul_ps(_mm256_mul_ps(dck, g), dsig(i)));
            store(
                dz,
                gr + hd + k,
                _mm256_mul_ps(_mm256_mul_ps(dck, cp), dsig(f)),
            );
            let dg = _mm256_fnmadd_ps(g, g, one);
            store(
                dz,
                gr + 2 * hd + k,
                _mm256_mul_ps(_mm256_mul_ps(dck, i), dg),
            );
            store(
                dz,
                gr + 3 * hd + k,
                _mm256_mul_ps(_mm256_mul_ps(dhk, tc), dsig(og)),
            );
            store(dc, b * hd + k, _mm256_mul_ps(dck, f));
        }
    }
}
