use std::arch::x86_64::*;

use super::{lens_i32, Buffers, Direction, Lane, State, LANES};

use distill_ops::math::{EXP_POLY, LN2_HI, LN2_LO};

const LOG2E: f32 = std::f32::consts::LOG2_E;

/// Transposes 16 rows of 16 floats in registers: `r[i][j]` becomes `r[j][i]`.
///
/// # Safety
/// AVX-512F must be present.
#[inline]
#[target_feature(enable = "avx512f")]
pub fn transpose(r: &mut [__m512; 16]) {
    let pd = _mm512_castps_pd;
    let ps = _mm512_castpd_ps;
    // Within each 128-bit lane q: t[2a] = (r[2a][4q], r[2a+1][4q], r[2a][4q+1], …).
    let mut t = [_mm512_setzero_ps(); 16];
    for a in 0..8 {
        t[2 * a] = _mm512_unpacklo_ps(r[2 * a], r[2 * a + 1]);
        t[2 * a + 1] = _mm512_unpackhi_ps(r[2 * a], r[2 * a + 1]);
    }
    // u[4g + m], lane q: column 4q + m of rows 4g..4g+4.
    let mut u = [_mm512_setzero_ps(); 16];
    for g in 0..4 {
        let (a, b, c, d) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
        u[4 * g] = ps(_mm512_unpacklo_pd(pd(a), pd(c)));
        u[4 * g + 1] = ps(_mm512_unpackhi_pd(pd(a), pd(c)));
        u[4 * g + 2] = ps(_mm512_unpacklo_pd(pd(b), pd(d)));
        u[4 * g + 3] = ps(_mm512_unpackhi_pd(pd(b), pd(d)));
    }
    // Gather the four 128-bit pieces of each column: lanes (0, 2) and (1, 3) of row
    // groups (0, 1) and (2, 3), then across.
    for m in 0..4 {
        let v0 = _mm512_shuffle_f32x4::<0x88>(u[m], u[4 + m]);
        let v1 = _mm512_shuffle_f32x4::<0xdd>(u[m], u[4 + m]);
        let w0 = _mm512_shuffle_f32x4::<0x88>(u[8 + m], u[12 + m]);
        let w1 = _mm512_shuffle_f32x4::<0xdd>(u[8 + m], u[12 + m]);
        r[m] = _mm512_shuffle_f32x4::<0x88>(v0, w0);
        r[8 + m] = _mm512_shuffle_f32x4::<0xdd>(v0, w0);
        r[4 + m] = _mm512_shuffle_f32x4::<0x88>(v1, w1);
        r[12 + m] = _mm512_shuffle_f32x4::<0xdd>(v1, w1);
    }
}

/// `σ` of `N` vectors, each step applied to all of them before the next (independent
/// chains interleaved in program order, so the CPU's scheduler always has work).
/// `e⁻ˣ` as [`distill_ops::math::exp`] (Cephes: range reduction, degree-5 polynomial) with
/// fused multiply-adds and `scalef` for the power of two, `−x` clamped to [−87, 88]; the
/// division `1 / (1 + e⁻ˣ)` as a 14-bit reciprocal estimate and one Newton step.
///
/// # Safety
/// AVX-512F must be present.
#[inline(always)]
pub unsafe fn sigmoid_n<const N: usize>(x: [__m512; N]) -> [__m512; N] {
    let one = _mm512_set1_ps(1.0);
    let mut e = [_mm512_setzero_ps(); N];
    let mut n = [_mm512_setzero_ps(); N];
    let mut r = [_mm512_setzero_ps(); N];
    for q in 0..N {
        // e^(−x) with −x clamped to [−87, 88] (NaN stays NaN).
        let xc = _mm512_max_ps(
            _mm512_set1_ps(-88.0),
            _mm512_min_ps(_mm512_set1_ps(87.0), x[q]),
        );
        n[q] = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(xc, _mm512_set1_ps(-LOG2E)),
        );
        // r = −x − n·ln2
        r[q] = _mm512_fnmsub_ps(n[q], _mm512_set1_ps(LN2_HI), xc);
    }
    for q in 0..N {
        r[q] = _mm512_fnmadd_ps(n[q], _mm512_set1_ps(LN2_LO), r[q]);
        e[q] = _mm512_set1_ps(EXP_POLY[0]);
    }
    for &c in &EXP_POLY[1..] {
        for q in 0..N {
            e[q] = _mm512_fmadd_ps(e[q], r[q], _mm512_set1_ps(c));
        }
    }
    for q in 0..N {
        let p = _mm512_fmadd_ps(_mm512_mul_ps(e[q], r[q]), r[q], r[q]);
        e[q] = _mm512_scalef_ps(_mm512_add_ps(p, one), n[q]);
    }
    for q in 0..N {
        let d = _mm512_add_ps(one, e[q]);
        let y = _mm512_rcp14_ps(d);
        e[q] = _mm512_mul_ps(y, _mm512_fnmadd_ps(d, y, _mm512_set1_ps(2.0)));
    }
    e
}

/// One step of units `k..k + U` (`G = 4U` gate rows): gates from `z` + `W·h`, then `c`
/// and `next` (a finished lane keeps its state).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn unit_step<const U: usize, const G: usize>(
    k: usize,
    hd: usize,
    w: &[f32],
    z: &[Lane],
    h: &[Lane],
    c: &mut [Lane],
    next: &mut [Lane],
    active: __mmask16,
) {
    debug_assert_eq!(G, 4 * U);
    // Row q·U + u is gate q (i, f, g, o) of unit k + u.
    let row = |r: usize| (r / U) * hd + k + r % U;
    let mut acc = [_mm512_setzero_ps(); G];
    for (r, a) in acc.iter_mut().enumerate() {
        *a = load(&z[row(r)]);
    }
    // W·h with k' ascending for every row; each h[k'] loaded once for the G rows.
    for (kk, hk) in h.iter().enumerate() {
        let hv = load(hk);
        for (r, a) in acc.iter_mut().enumerate() {
            let wv = _mm512_set1_ps(*w.get_unchecked(row(r) * hd + kk));
            *a = _mm512_fmadd_ps(wv, hv, *a);
        }
    }
    // tanh g = 2σ(2g) − 1: the g rows go through σ doubled.
    let two = _mm512_set1_ps(2.0);
    for a in &mut acc[2 * U..3 * U] {
        *a = _mm512_mul_ps(two, *a);
    }
    let gates = sigmoid_n::<G>(acc);
    let one = _mm512_set1_ps(1.0);
    let mut c_new = [_mm512_setzero_ps(); U];
    for u in 0..U {
        let (i, f) = (gates[u], gates[U + u]);
        let g = _mm512_fmsub_ps(two, gates[2 * U + u], one);
        c_new[u] = _mm512_fmadd_ps(f, load(&c[k + u]), _mm512_mul_ps(i, g));
    }
    let mut twice = [_mm512_setzero_ps(); U];
    for u in 0..U {
        twice[u] = _mm512_mul_ps(two, c_new[u]);
    }
    let t = sigmoid_n::<U>(twice);
    for u in 0..U {
        let tanh_c = _mm512_fmsub_ps(two, t[u], one);
        let h_new = _mm512_mul_ps(gates[3 * U + u], tanh_c);
        // A finished lane keeps its h; its c runs on but is never read again.
        store(&mut c[k + u], c_new[u]);
        store(
            &mut next[k + u],
            _mm512_mask_mov_ps(load(&h[k + u]), active, h_new),
        );
    }
}

/// # Safety
/// AVX-512F must be present; `super::check` must have passed for both directions and
/// the states been reset to `hidden`.
#[target_feature(enable = "avx512f")]
pub unsafe fn run(
    hidden: usize,
    lens: &[usize; LANES],
    dirs: [Direction<'_>; 2],
    states: &mut [State; 2],
) {
    match hidden {
        8 => run_h::<8>(hidden, lens, dirs, states),
        16 => run_h::<16>(hidden, lens, dirs, states),
        64 => run_h::<64>(hidden, lens, dirs, states),
        _ => run_h::<0>(hidden, lens, dirs, states),
    }
}

#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn load(l: &Lane) -> __m512 {
    _mm512_load_ps(l.0.as_ptr())
}

#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn store(l: &mut Lane, v: __m512) {
    _mm512_store_ps(l.0.as_mut_ptr(), v)
}

/// Lane `l`'s row of the current step becomes column `l` of `z`, 16 gate units at a
/// time through register transposes.
#[inline(always)]
unsafe fn gather(rows: &[f32], offs: &[usize], z: &mut [Lane]) {
    let g4 = z.len();
    let base = rows.as_ptr();
    for j0 in (0..g4).step_by(16) {
        let cols = (g4 - j0).min(16);
        let mask: __mmask16 = if cols == 16 { !0 } else { (1 << cols) - 1 };
        let mut r = [_mm512_setzero_ps(); 16];
        for (rl, &o) in r.iter_mut().zip(offs) {
            // SAFETY: check() bounded o + 4H by rows.len(); the mask stops at 4H.
            *rl = _mm512_maskz_loadu_ps(mask, base.add(o + j0));
        }
        transpose(&mut r);
        for (zj, &v) in z[j0..j0 + cols].iter_mut().zip(&r) {
            store(zj, v);
        }
    }
}

#[inline(always)]
unsafe fn run_h<const H: usize>(
    hidden: usize,
    lens: &[usize; LANES],
    dirs: [Direction<'_>; 2],
    states: &mut [State; 2],
) {
    let hd = if H > 0 { H } else { hidden };
    let steps = lens.iter().copied().max().unwrap_or(0);
    let len_v = lens_i32(lens);
    let len_v = _mm512_loadu_si512(len_v.as_ptr().cast());
    let [d0, d1] = dirs;
    let (w, rows, offsets) = ([d0.w, d1.w], [d0.rows, d1.rows], [d0.offsets, d1.offsets]);
    let mut outs = [d0.out, d1.out];
    let mut b = Buffers::new(states, hd);
    for s in 0..steps {
        let active = _mm512_cmpgt_epi32_mask(len_v, _mm512_set1_epi32(s as i32));
        for d in 0..2 {
            gather(rows[d], &offsets[d][s * LANES..(s + 1) * LANES], b.z[d]);
        }
        // Units two at a time (one at the end for odd H), the directions alternating:
        // independent chains side by side for the CPU to overlap.
        let mut k = 0;
        while k + 2 <= hd {
            for d in 0..2 {
                unit_step::<2, 8>(k, hd, w[d], b.z[d], b.h[d], b.c[d], b.next[d], active);
            }
            k += 2;
        }
        if k < hd {
            for d in 0..2 {
                unit_step::<1, 4>(k, hd, w[d], b.z[d], b.h[d], b.c[d], b.next[d], active);
            }
        }
        b.end_step(s, lens, &mut outs);
    }
    b.finish(steps);
}
