//! The LSTM recurrence over many sentences at once, one sentence per SIMD lane.
//!
//! Same step as [`crate::cell`] (gate order i, f, g, o as PyTorch):
//! ```text
//! z = xg_t + W_hh·h      i = σ(z_i)  f = σ(z_f)  g = tanh(z_g)  o = σ(z_o)
//! c = f⊙c + i⊙g          h = o⊙tanh(c)
//! ```
//! but for a block of [`LANES`] sentences side by side: every state is stored unit-major,
//! `h[k][l]` = unit `k` of sentence `l`, so each arithmetic line of the step is one vector
//! operation over the block (16 `f32` lanes: one AVX-512 register, two AVX2 ones) instead of
//! one sentence's short dependent chain. A step of one sentence is a chain of ~20 dependent
//! operations through `W·h` and two nonlinearities; sixteen independent chains keep the
//! vector units busy where one leaves them waiting.
//!
//! Each lane reads its own input row per step (`xg` of its token at its position: a table
//! row for layer 0, a projected row for deeper layers), gathered through per-step row
//! offsets that the caller lays out in reading order (right to left for the backward
//! direction, starting at each sentence's last real token). A lane past its length keeps its
//! state (a masked update), so the block runs `max(len)` steps and shorter sentences drop out
//! with their final state intact; sorting sentences by length keeps that waste small.
//!
//! The sums run in the same order as [`crate::cell::forward_seq`] (`k` ascending, multiply
//! then add) and the nonlinearities are the same functions, so a lane's result is the
//! per-sentence result bit for bit.

// Lane loops index several arrays in step; an index reads plainer than zipped iterators.
#![allow(clippy::needless_range_loop)]

use crate::cell::{sigmoid, tanh};

/// Sentences per block: 16 `f32`, one 512-bit register.
pub const LANES: usize = 16;

/// One value per sentence of a block, aligned to a cache line (one 512-bit load).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(64))]
pub struct Lane(pub [f32; LANES]);

/// Scratch for one block's recurrence (reused across blocks and calls).
#[derive(Default)]
pub struct State {
    /// `[4H]` gate pre-activations, then activations.
    z: Vec<Lane>,
    /// `[H]` hidden state (final state once the block is done).
    pub h: Vec<Lane>,
    /// `[H]` cell state.
    c: Vec<Lane>,
    /// `[H]` the next hidden state (the AVX-512 step writes it beside `h`).
    next: Vec<Lane>,
}

impl State {
    fn reset(&mut self, hidden: usize) {
        self.z.clear();
        self.z.resize(4 * hidden, Lane::default());
        for v in [&mut self.h, &mut self.c, &mut self.next] {
            v.clear();
            v.resize(hidden, Lane::default());
        }
    }
}

/// Where a block's per-step outputs go (layers below the top): lane `l`'s `h` at step `s`
/// is written to `out[at[s·LANES + l]..][..H]` while `s < lens[l]`.
pub struct Outputs<'a> {
    pub out: &'a mut [f32],
    pub at: &'a [usize],
}

/// Runs one direction of one layer over a block. `w` is PyTorch's `weight_hh` `[4H, H]`;
/// `rows` holds `4H`-float input rows and `offsets[s·LANES + l]` is where lane `l`'s row of
/// step `s` starts (`s < max(lens)`; any valid offset where `s ≥ lens[l]`). On return
/// `state.h` holds each lane's final hidden state (zero for a lane of length 0).
///
/// On a CPU with AVX-512 this is a hand-written kernel ([`avx512`]: fused multiply-adds, a
/// reciprocal estimate refined by a Newton step in place of the division of `σ`, rows
/// gathered by 16×16 register transposes), within a few float roundings per step of the
/// portable kernel ([`run_portable`]), which runs elsewhere and matches [`crate::cell`] bit
/// for bit.
pub fn run(
    w: &[f32],
    hidden: usize,
    rows: &[f32],
    offsets: &[usize],
    lens: &[usize; LANES],
    state: &mut State,
    out: Option<Outputs<'_>>,
) {
    check(w, hidden, rows, offsets, lens, &out);
    state.reset(hidden);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the feature was just detected; `check` has bounded every row and output.
        return unsafe { avx512::run(w, hidden, rows, offsets, lens, state, out) };
    }
    portable(w, hidden, rows, offsets, lens, state, out)
}

/// [`run`] with the portable kernel: the loops of [`crate::cell`] across lanes, compiled
/// for AVX2 where the CPU has it; bit for bit the per-sentence result.
pub fn run_portable(
    w: &[f32],
    hidden: usize,
    rows: &[f32],
    offsets: &[usize],
    lens: &[usize; LANES],
    state: &mut State,
    out: Option<Outputs<'_>>,
) {
    check(w, hidden, rows, offsets, lens, &out);
    state.reset(hidden);
    portable(w, hidden, rows, offsets, lens, state, out)
}

fn portable(
    w: &[f32],
    hidden: usize,
    rows: &[f32],
    offsets: &[usize],
    lens: &[usize; LANES],
    state: &mut State,
    out: Option<Outputs<'_>>,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the features were just detected on this CPU.
        return unsafe { run_avx2(w, hidden, rows, offsets, lens, state, out) };
    }
    specialised(w, hidden, rows, offsets, lens, state, out)
}

/// Panics unless every row and output the block reads or writes is in bounds (the
/// AVX-512 kernel reads and writes through raw pointers).
fn check(
    w: &[f32],
    hidden: usize,
    rows: &[f32],
    offsets: &[usize],
    lens: &[usize; LANES],
    out: &Option<Outputs<'_>>,
) {
    let steps = lens.iter().copied().max().unwrap_or(0);
    assert_eq!(w.len(), 4 * hidden * hidden, "weight_hh is [4H, H]");
    assert!(
        offsets.len() >= steps * LANES,
        "an offset per lane and step"
    );
    let fits = |o: usize, n: usize, len: usize| o.checked_add(n).is_some_and(|e| e <= len);
    assert!(
        offsets[..steps * LANES]
            .iter()
            .all(|&o| fits(o, 4 * hidden, rows.len())),
        "every row in bounds"
    );
    if let Some(o) = out {
        assert!(
            o.at.len() >= steps * LANES,
            "an output offset per lane and step"
        );
        assert!(
            o.at[..steps * LANES]
                .iter()
                .all(|&a| fits(a, hidden, o.out.len())),
            "every output in bounds"
        );
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(
    w: &[f32],
    hidden: usize,
    rows: &[f32],
    offsets: &[usize],
    lens: &[usize; LANES],
    state: &mut State,
    out: Option<Outputs<'_>>,
) {
    specialised(w, hidden, rows, offsets, lens, state, out)
}

/// A compile-time hidden size for the presets' widths lets the compiler unroll the loops.
#[inline(always)]
fn specialised(
    w: &[f32],
    hidden: usize,
    rows: &[f32],
    offsets: &[usize],
    lens: &[usize; LANES],
    state: &mut State,
    out: Option<Outputs<'_>>,
) {
    match hidden {
        8 => run_impl::<8>(w, hidden, rows, offsets, lens, state, out),
        16 => run_impl::<16>(w, hidden, rows, offsets, lens, state, out),
        64 => run_impl::<64>(w, hidden, rows, offsets, lens, state, out),
        _ => run_impl::<0>(w, hidden, rows, offsets, lens, state, out),
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn run_impl<const H: usize>(
    w: &[f32],
    hidden: usize,
    rows: &[f32],
    offsets: &[usize],
    lens: &[usize; LANES],
    state: &mut State,
    mut out: Option<Outputs<'_>>,
) {
    let hd = if H > 0 { H } else { hidden };
    let g4 = 4 * hd;
    let steps = lens.iter().copied().max().unwrap_or(0);
    let State { z, h, c, .. } = state;
    let (z, h, c) = (&mut z[..g4], &mut h[..hd], &mut c[..hd]);
    for s in 0..steps {
        let offs = &offsets[s * LANES..(s + 1) * LANES];
        // Gather: lane l's row becomes column l of z.
        for (l, &o) in offs.iter().enumerate() {
            let row = &rows[o..o + g4];
            for (zj, &x) in z.iter_mut().zip(row) {
                zj.0[l] = x;
            }
        }
        // z += W·h, k ascending for each gate unit (the order of cell::forward_seq).
        for (j, zj) in z.iter_mut().enumerate() {
            let wj = &w[j * hd..(j + 1) * hd];
            let mut acc = zj.0;
            for (&wjk, hk) in wj.iter().zip(h.iter()) {
                for l in 0..LANES {
                    acc[l] += wjk * hk.0[l];
                }
            }
            zj.0 = acc;
        }
        let (gi, rest) = z.split_at_mut(hd);
        let (gf, rest) = rest.split_at_mut(hd);
        let (gg, go) = rest.split_at_mut(hd);
        let mut active = [false; LANES];
        for l in 0..LANES {
            active[l] = s < lens[l];
        }
        for k in 0..hd {
            let (mut ck, mut hk) = (c[k].0, h[k].0);
            for l in 0..LANES {
                let i = sigmoid(gi[k].0[l]);
                let f = sigmoid(gf[k].0[l]);
                let g = 2.0 * sigmoid(2.0 * gg[k].0[l]) - 1.0;
                let o = sigmoid(go[k].0[l]);
                let cn = f * ck[l] + i * g;
                let hn = o * tanh(cn);
                // A finished lane keeps its state.
                ck[l] = if active[l] { cn } else { ck[l] };
                hk[l] = if active[l] { hn } else { hk[l] };
            }
            c[k].0 = ck;
            h[k].0 = hk;
        }
        if let Some(Outputs { out, at }) = out.as_mut() {
            let at = &at[s * LANES..(s + 1) * LANES];
            for l in 0..LANES {
                if active[l] {
                    let row = &mut out[at[l]..at[l] + hd];
                    for (o, hk) in row.iter_mut().zip(h.iter()) {
                        *o = hk.0[l];
                    }
                }
            }
        }
    }
}

/// The block step in AVX-512 intrinsics (see [`run`]).
#[cfg(target_arch = "x86_64")]
pub mod avx512 {
    use std::arch::x86_64::*;

    use super::{Lane, Outputs, State, LANES};

    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;

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
    /// `e⁻ˣ` as [`crate::cell::exp`] (Cephes: range reduction, degree-5 polynomial) with
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
            e[q] = _mm512_set1_ps(1.987_569_1e-4);
        }
        for c in [
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            0.5,
        ] {
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
    /// AVX-512F must be present; `super::check` must have passed for these arguments and
    /// `state` been reset to `hidden`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn run(
        w: &[f32],
        hidden: usize,
        rows: &[f32],
        offsets: &[usize],
        lens: &[usize; LANES],
        state: &mut State,
        out: Option<Outputs<'_>>,
    ) {
        match hidden {
            8 => run_h::<8>(w, hidden, rows, offsets, lens, state, out),
            16 => run_h::<16>(w, hidden, rows, offsets, lens, state, out),
            64 => run_h::<64>(w, hidden, rows, offsets, lens, state, out),
            _ => run_h::<0>(w, hidden, rows, offsets, lens, state, out),
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

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_h<const H: usize>(
        w: &[f32],
        hidden: usize,
        rows: &[f32],
        offsets: &[usize],
        lens: &[usize; LANES],
        state: &mut State,
        mut out: Option<Outputs<'_>>,
    ) {
        let hd = if H > 0 { H } else { hidden };
        let g4 = 4 * hd;
        let steps = lens.iter().copied().max().unwrap_or(0);
        let mut len_v = [0i32; LANES];
        for (v, &l) in len_v.iter_mut().zip(lens) {
            *v = l.min(i32::MAX as usize) as i32;
        }
        let len_v = _mm512_loadu_si512(len_v.as_ptr().cast());
        let State { z, h, c, next } = state;
        let (z, c) = (&mut z[..g4], &mut c[..hd]);
        let (mut h, mut next) = (&mut h[..hd], &mut next[..hd]);
        let base = rows.as_ptr();
        for s in 0..steps {
            let active = _mm512_cmpgt_epi32_mask(len_v, _mm512_set1_epi32(s as i32));
            let offs = &offsets[s * LANES..(s + 1) * LANES];
            // Gather: lane l's row becomes column l of z, 16 gate units at a time.
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
            // Units two at a time (one at the end for odd H): their eight gates' rows of
            // z + W·h, the gates, then c and the next h. Two units' work side by side gives
            // the CPU independent chains to overlap.
            let mut k = 0;
            while k + 2 <= hd {
                unit_step::<2, 8>(k, hd, w, z, h, c, next, active);
                k += 2;
            }
            if k < hd {
                unit_step::<1, 4>(k, hd, w, z, h, c, next, active);
            }
            std::mem::swap(&mut h, &mut next);
            if let Some(Outputs { out, at }) = out.as_mut() {
                let at = &at[s * LANES..(s + 1) * LANES];
                for l in 0..LANES {
                    if s < lens[l] {
                        let row = &mut out[at[l]..at[l] + hd];
                        for (o, hk) in row.iter_mut().zip(h.iter()) {
                            *o = hk.0[l];
                        }
                    }
                }
            }
        }
        // After an odd number of steps the final state is in `next`'s buffer.
        if steps % 2 == 1 {
            next.copy_from_slice(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::{forward_seq, Recurrent};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A random block: weights, a table of `rows` input rows and each lane's row ids per
    /// position. Lanes past `n` are empty.
    struct Case {
        hidden: usize,
        w: Vec<f32>,
        table: Vec<f32>,
        ids: Vec<Vec<usize>>,
    }

    fn case(rng: &mut ChaCha8Rng, hidden: usize, n: usize, max_len: usize) -> Case {
        let g4 = 4 * hidden;
        let rows = 11;
        let w = (0..g4 * hidden).map(|_| rng.gen_range(-0.8..0.8)).collect();
        let table = (0..rows * g4).map(|_| rng.gen_range(-3.0..3.0)).collect();
        let mut ids: Vec<Vec<usize>> = (0..n)
            .map(|_| {
                let len = rng.gen_range(0..=max_len);
                (0..len).map(|_| rng.gen_range(0..rows)).collect()
            })
            .collect();
        ids.resize(LANES, Vec::new());
        Case {
            hidden,
            w,
            table,
            ids,
        }
    }

    /// Each lane alone through `cell::forward_seq`: final h and per-position outputs.
    fn per_sentence(c: &Case, reverse: bool) -> Vec<(Vec<f32>, Vec<f32>)> {
        let (h, g4) = (c.hidden, 4 * c.hidden);
        let rec = Recurrent::new(c.w.clone(), h);
        c.ids
            .iter()
            .map(|ids| {
                let xg: Vec<f32> = ids
                    .iter()
                    .flat_map(|&i| c.table[i * g4..(i + 1) * g4].iter().copied())
                    .collect();
                let (mut hs, mut cs) = (vec![0.0; h], vec![0.0; h]);
                let mut out = vec![0.0; ids.len() * h];
                forward_seq(
                    &rec,
                    &xg,
                    ids.len(),
                    reverse,
                    &mut hs,
                    &mut cs,
                    Some(&mut out),
                    None,
                );
                (hs, out)
            })
            .collect()
    }

    type Kernel =
        fn(&[f32], usize, &[f32], &[usize], &[usize; LANES], &mut State, Option<Outputs<'_>>);

    /// The block through `kernel`: final h per lane and per-position outputs.
    fn block(c: &Case, reverse: bool, kernel: Kernel) -> Vec<(Vec<f32>, Vec<f32>)> {
        let (h, g4) = (c.hidden, 4 * c.hidden);
        let mut lens = [0; LANES];
        for (l, ids) in c.ids.iter().enumerate() {
            lens[l] = ids.len();
        }
        let steps = lens.iter().copied().max().unwrap();
        let maxl = steps.max(1);
        let (mut offsets, mut at) = (Vec::new(), Vec::new());
        for s in 0..steps {
            for l in 0..LANES {
                let t = (s < lens[l]).then(|| if reverse { lens[l] - 1 - s } else { s });
                // Finished lanes read row 3 (any row): the state must not move.
                offsets.push(t.map_or(3 * g4, |t| c.ids[l][t] * g4));
                at.push(t.map_or(0, |t| (l * maxl + t) * h));
            }
        }
        let mut out = vec![f32::NAN; LANES * maxl * h];
        let mut state = State::default();
        kernel(
            &c.w,
            h,
            &c.table,
            &offsets,
            &lens,
            &mut state,
            Some(Outputs {
                out: &mut out,
                at: &at,
            }),
        );
        (0..LANES)
            .map(|l| {
                let hs = state.h.iter().map(|v| v.0[l]).collect();
                (hs, out[l * maxl * h..(l * maxl + lens[l]) * h].to_vec())
            })
            .collect()
    }

    fn max_diff(a: &[(Vec<f32>, Vec<f32>)], b: &[(Vec<f32>, Vec<f32>)]) -> f32 {
        let mut m = 0.0f32;
        for ((ha, oa), (hb, ob)) in a.iter().zip(b) {
            assert_eq!(oa.len(), ob.len());
            for (x, y) in ha.iter().zip(hb).chain(oa.iter().zip(ob)) {
                assert!(x.is_finite(), "a finite state");
                m = m.max((x - y).abs());
            }
        }
        m
    }

    #[test]
    fn blocks_match_each_sentence_alone_in_both_directions() {
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        // 8, 16, 64: compile-time widths; 1, 3, 5, 12: run-time ones, 4H not a multiple of 16.
        for (hidden, n, max_len) in [
            (8, 16, 30),
            (8, 5, 9),
            (1, 16, 12),
            (3, 9, 20),
            (5, 16, 7),
            (12, 13, 15),
            (16, 16, 10),
            (64, 7, 6),
        ] {
            let c = case(&mut rng, hidden, n, max_len);
            for reverse in [false, true] {
                let want = per_sentence(&c, reverse);
                let portable = block(&c, reverse, run_portable);
                assert_eq!(
                    portable, want,
                    "portable kernel, bit for bit: H {hidden}, reverse {reverse}"
                );
                let fast = block(&c, reverse, run);
                let d = max_diff(&fast, &want);
                assert!(d <= 2e-6, "H {hidden}, reverse {reverse}: {d:e}");
            }
        }
    }

    #[test]
    fn an_empty_block_leaves_zero_states() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let c = case(&mut rng, 8, 0, 0);
        for kernel in [run as Kernel, run_portable] {
            let got = block(&c, false, kernel);
            assert!(got
                .iter()
                .all(|(h, o)| h.iter().all(|&v| v == 0.0) && o.is_empty()));
        }
    }

    #[test]
    #[should_panic(expected = "every row in bounds")]
    fn a_row_past_the_table_is_refused() {
        let mut lens = [0; LANES];
        lens[0] = 1;
        let offsets = [4; LANES];
        run(
            &[0.0; 4],
            1,
            &[0.0; 7],
            &offsets,
            &lens,
            &mut State::default(),
            None,
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_pieces_match_the_scalar_ones() {
        use std::arch::x86_64::*;
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("no AVX-512 here: the portable kernel is what runs");
            return;
        }
        // SAFETY: AVX-512F was detected above.
        unsafe {
            let mut m = [[0.0f32; 16]; 16];
            for (i, row) in m.iter_mut().enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = (i * 16 + j) as f32;
                }
            }
            let mut r = m.map(|row| _mm512_loadu_ps(row.as_ptr()));
            avx512::transpose(&mut r);
            for (j, v) in r.iter().enumerate() {
                let mut col = [0.0f32; 16];
                _mm512_storeu_ps(col.as_mut_ptr(), *v);
                for (i, &x) in col.iter().enumerate() {
                    assert_eq!(x, m[i][j], "transpose ({i}, {j})");
                }
            }
            let xs: Vec<f32> = (-120 * 64..=100 * 64)
                .map(|i| i as f32 / 64.0)
                .chain([f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30])
                .collect();
            for chunk in xs.chunks(16) {
                let mut x = [0.0f32; 16];
                x[..chunk.len()].copy_from_slice(chunk);
                let v = _mm512_loadu_ps(x.as_ptr());
                let (mut s, mut t) = ([0.0f32; 16], [0.0f32; 16]);
                _mm512_storeu_ps(s.as_mut_ptr(), avx512::sigmoid_n([v])[0]);
                // tanh x = 2σ(2x) − 1, as the kernel computes it.
                let two = _mm512_set1_ps(2.0);
                let st = avx512::sigmoid_n([_mm512_mul_ps(two, v)])[0];
                let tv = _mm512_fmsub_ps(two, st, _mm512_set1_ps(1.0));
                _mm512_storeu_ps(t.as_mut_ptr(), tv);
                for l in 0..chunk.len() {
                    let (ws, wt) = (crate::cell::sigmoid(x[l]), crate::cell::tanh(x[l]));
                    assert!((s[l] - ws).abs() <= 2e-7, "σ({}) = {} vs {ws}", x[l], s[l]);
                    assert!(
                        (t[l] - wt).abs() <= 4e-7,
                        "tanh({}) = {} vs {wt}",
                        x[l],
                        t[l]
                    );
                }
            }
            let nan = avx512::sigmoid_n([_mm512_set1_ps(f32::NAN)])[0];
            let mut s = [0.0f32; 16];
            _mm512_storeu_ps(s.as_mut_ptr(), nan);
            assert!(s.iter().all(|v| v.is_nan()), "NaN stays NaN");
        }
    }
}
