//! The block step in AVX2 + FMA intrinsics, for CPUs without AVX-512 (see [`super::run`]).
//!
//! A [`Lane`] of sixteen sentences is two 8-float vectors; every line of the step runs on
//! both halves, which also gives the CPU two independent chains per unit. One unit at a
//! time per direction (its four gate rows, two halves: 8 sums, the `h` pair and a
//! broadcast weight fit AVX2's 16 registers), the two directions alternating. The
//! nonlinearities are [`distill_ops::math::avx2`]'s, with fused multiply-adds: within a few
//! roundings per step of the portable kernel.

use std::arch::x86_64::*;

use distill_ops::math::avx2::{sigmoid8, tanh8, transpose8};

use super::{lens_i32, Buffers, Direction, Lane, State, LANES};

/// Both halves of a lane.
type Pair = [__m256; 2];

#[inline(always)]
unsafe fn load(l: &Lane) -> Pair {
    let p = l.0.as_ptr();
    [_mm256_load_ps(p), _mm256_load_ps(p.add(8))]
}

#[inline(always)]
unsafe fn store(l: &mut Lane, v: Pair) {
    let p = l.0.as_mut_ptr();
    _mm256_store_ps(p, v[0]);
    _mm256_store_ps(p.add(8), v[1]);
}

/// One step of unit `k`: its gates from `z` + `W·h`, then `c` and `next` (a finished lane
/// keeps its `h`; its `c` runs on but is never read again).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn unit_step(
    k: usize,
    hd: usize,
    w: &[f32],
    z: &[Lane],
    h: &[Lane],
    c: &mut [Lane],
    next: &mut [Lane],
    active: Pair,
) {
    // Row q is gate q (i, f, g, o) of unit k.
    let mut acc = [[_mm256_setzero_ps(); 2]; 4];
    for (q, a) in acc.iter_mut().enumerate() {
        *a = load(&z[q * hd + k]);
    }
    // W·h, k' ascending for every row.
    for (kk, hk) in h.iter().enumerate() {
        let hv = load(hk);
        for (q, a) in acc.iter_mut().enumerate() {
            let wv = _mm256_set1_ps(*w.get_unchecked((q * hd + k) * hd + kk));
            a[0] = _mm256_fmadd_ps(wv, hv[0], a[0]);
            a[1] = _mm256_fmadd_ps(wv, hv[1], a[1]);
        }
    }
    let cp = load(&c[k]);
    let hp = load(&h[k]);
    let (mut cn, mut hn) = (cp, hp);
    for half in 0..2 {
        let i = sigmoid8(acc[0][half]);
        let f = sigmoid8(acc[1][half]);
        let g = tanh8(acc[2][half]);
        let o = sigmoid8(acc[3][half]);
        cn[half] = _mm256_fmadd_ps(f, cp[half], _mm256_mul_ps(i, g));
        let h_new = _mm256_mul_ps(o, tanh8(cn[half]));
        hn[half] = _mm256_blendv_ps(hp[half], h_new, active[half]);
    }
    store(&mut c[k], cn);
    store(&mut next[k], hn);
}

/// Lane `l`'s row of the current step becomes column `l` of `z`, eight gate rows and eight
/// lanes at a time through register transposes. `z.len()` (4H) is a multiple of 8.
#[inline(always)]
unsafe fn gather(rows: &[f32], offs: &[usize], z: &mut [Lane]) {
    let base = rows.as_ptr();
    for j0 in (0..z.len()).step_by(8) {
        for half in 0..2 {
            let mut r: [__m256; 8] = std::array::from_fn(|i| {
                // SAFETY: check() bounded every offset + 4H by rows.len().
                _mm256_loadu_ps(base.add(offs[8 * half + i] + j0))
            });
            transpose8(&mut r);
            for (i, v) in r.iter().enumerate() {
                _mm256_store_ps(z[j0 + i].0.as_mut_ptr().add(8 * half), *v);
            }
        }
    }
}

/// # Safety
/// AVX2 and FMA must be present; `hidden` must be even (4H a multiple of 8); `super::check`
/// must have passed for both directions and the states been reset to `hidden`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn run(
    hidden: usize,
    lens: &[usize; LANES],
    dirs: [Direction<'_>; 2],
    states: &mut [State; 2],
) {
    match hidden {
        8 => run_h::<8>(hidden, lens, dirs, states),
        64 => run_h::<64>(hidden, lens, dirs, states),
        _ => run_h::<0>(hidden, lens, dirs, states),
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
    debug_assert!(hd.is_multiple_of(2));
    let steps = lens.iter().copied().max().unwrap_or(0);
    let len_v = lens_i32(lens);
    let len_v: Pair = [
        _mm256_castsi256_ps(_mm256_loadu_si256(len_v.as_ptr().cast())),
        _mm256_castsi256_ps(_mm256_loadu_si256(len_v.as_ptr().add(8).cast())),
    ];
    let [d0, d1] = dirs;
    let (w, rows, offsets) = ([d0.w, d1.w], [d0.rows, d1.rows], [d0.offsets, d1.offsets]);
    let mut outs = [d0.out, d1.out];
    let mut b = Buffers::new(states, hd);
    for s in 0..steps {
        let step = _mm256_set1_epi32(s as i32);
        let active: Pair =
            len_v.map(|l| _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_castps_si256(l), step)));
        for d in 0..2 {
            gather(rows[d], &offsets[d][s * LANES..(s + 1) * LANES], b.z[d]);
        }
        for k in 0..hd {
            for d in 0..2 {
                unit_step(k, hd, w[d], b.z[d], b.h[d], b.c[d], b.next[d], active);
            }
        }
        b.end_step(s, lens, &mut outs);
    }
    b.finish(steps);
}
