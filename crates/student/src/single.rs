//! One sentence through one layer, both directions stepped together.
//!
//! The forward chain (left to right) and the backward chain (right to left, from the last
//! token) of a sentence do not depend on each other. [`crate::cell::forward_seq`] runs one
//! after the other, each a chain of dependent operations the CPU mostly waits on; stepping
//! both in one loop lets it overlap the two, which is what a single sentence's latency is
//! made of. The step is the one of [`crate::cell`]; the portable loops ([`both_portable`])
//! do the same operations in the same order, so their states are `forward_seq`'s bit for
//! bit, and hidden size 8 on AVX-512 has a kernel of its own for latency ([`h8`]), within a
//! few roundings of them:
//! ```text
//! z = xg_t + W_hh·h      i = σ(z_i)  f = σ(z_f)  g = tanh(z_g)  o = σ(z_o)
//! c = f⊙c + i⊙g          h = o⊙tanh(c)
//! ```
//! Input rows are read where they are ([`Rows`]): layer 0 straight from its `[V, 4H]`
//! projection table by token id, so a sentence needs no buffer that grows with its length.

use crate::cell::Recurrent;
use distill_ops::math::{sigmoid, tanh};

/// Where one direction's input rows `xg_t` (`4H` floats) come from.
#[derive(Clone, Copy)]
pub enum Rows<'a> {
    /// Row `ids[t]` of a `[V, 4H]` table (ids past the table read its last row).
    Table { table: &'a [f32], ids: &'a [u32] },
    /// Row `t` of a `[len, 4H]` array.
    Dense(&'a [f32]),
}

impl Rows<'_> {
    #[inline(always)]
    fn row(&self, t: usize, g4: usize) -> &[f32] {
        let at = match self {
            Rows::Table { table, ids } => (ids[t] as usize).min(table.len() / g4 - 1),
            Rows::Dense(_) => t,
        };
        let all = match self {
            Rows::Table { table, .. } => table,
            Rows::Dense(rows) => rows,
        };
        &all[at * g4..(at + 1) * g4]
    }
}

/// State and scratch of both directions (reused across calls).
#[derive(Default)]
pub struct Scratch {
    z: [Vec<f32>; 2],
    /// Final hidden states after [`both`]: forward, backward (`[H]` each).
    pub h: [Vec<f32>; 2],
    c: [Vec<f32>; 2],
}

impl Scratch {
    /// Zero states and gate scratch of `hidden` units for a new sentence.
    fn reset(&mut self, hidden: usize) {
        for d in 0..2 {
            self.z[d].clear();
            self.z[d].resize(4 * hidden, 0.0);
            for v in [&mut self.h[d], &mut self.c[d]] {
                v.clear();
                v.resize(hidden, 0.0);
            }
        }
    }
}

/// Runs both directions of one layer over a sentence of `len` tokens. `rows[d]` are the
/// input rows of direction `d` (0 forward, 1 backward) indexed by position. With `out`
/// (`[len, 2H]`), position `t` receives the forward and backward `h_t`. Final states are left
/// in `scratch.h` (zero for `len = 0`).
pub fn both(
    rec: [&Recurrent; 2],
    rows: [Rows<'_>; 2],
    len: usize,
    scratch: &mut Scratch,
    out: Option<&mut [f32]>,
) {
    let hidden = rec[0].hidden;
    scratch.reset(hidden);
    #[cfg(target_arch = "x86_64")]
    if hidden == 8
        && rec[1].hidden == 8
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512dq")
    {
        // SAFETY: the features were just detected; `h8::both` bounds-checks its rows.
        return unsafe { h8::both(rec, rows, len, scratch, out) };
    }
    portable(rec, rows, len, scratch, out)
}

/// [`both`] with the portable loops (compiled for AVX-512 or AVX2 where present): the
/// per-sentence arithmetic of [`crate::cell`] bit for bit, for any hidden size.
pub fn both_portable(
    rec: [&Recurrent; 2],
    rows: [Rows<'_>; 2],
    len: usize,
    scratch: &mut Scratch,
    out: Option<&mut [f32]>,
) {
    let hidden = rec[0].hidden;
    scratch.reset(hidden);
    portable(rec, rows, len, scratch, out)
}

fn portable(
    rec: [&Recurrent; 2],
    rows: [Rows<'_>; 2],
    len: usize,
    scratch: &mut Scratch,
    out: Option<&mut [f32]>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was just detected on this CPU.
            return unsafe { both_avx512(rec, rows, len, scratch, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features were just detected on this CPU.
            return unsafe { both_avx2(rec, rows, len, scratch, out) };
        }
    }
    specialised(rec, rows, len, scratch, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn both_avx512(
    rec: [&Recurrent; 2],
    rows: [Rows<'_>; 2],
    len: usize,
    s: &mut Scratch,
    out: Option<&mut [f32]>,
) {
    specialised(rec, rows, len, s, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn both_avx2(
    rec: [&Recurrent; 2],
    rows: [Rows<'_>; 2],
    len: usize,
    s: &mut Scratch,
    out: Option<&mut [f32]>,
) {
    specialised(rec, rows, len, s, out)
}

#[inline(always)]
fn specialised(
    rec: [&Recurrent; 2],
    rows: [Rows<'_>; 2],
    len: usize,
    s: &mut Scratch,
    out: Option<&mut [f32]>,
) {
    match rec[0].hidden {
        8 => both_impl::<8>(rec, rows, len, s, out),
        16 => both_impl::<16>(rec, rows, len, s, out),
        64 => both_impl::<64>(rec, rows, len, s, out),
        _ => both_impl::<0>(rec, rows, len, s, out),
    }
}

#[inline(always)]
fn both_impl<const H: usize>(
    rec: [&Recurrent; 2],
    rows: [Rows<'_>; 2],
    len: usize,
    s: &mut Scratch,
    mut out: Option<&mut [f32]>,
) {
    let hd = if H > 0 { H } else { rec[0].hidden };
    let g4 = 4 * hd;
    let Scratch { z, h, c } = s;
    let [zf, zb] = z;
    let [hf, hb] = h;
    let [cf, cb] = c;
    let (zf, zb) = (&mut zf[..g4], &mut zb[..g4]);
    let (hf, hb, cf, cb) = (&mut hf[..hd], &mut hb[..hd], &mut cf[..hd], &mut cb[..hd]);
    let (wf, wb) = (&rec[0].wt[..g4 * hd], &rec[1].wt[..g4 * hd]);
    for step in 0..len {
        let (tf, tb) = (step, len - 1 - step);
        zf.copy_from_slice(rows[0].row(tf, g4));
        zb.copy_from_slice(rows[1].row(tb, g4));
        // z += W·h: k outer, gates inner, as cell's add_mul.
        for k in 0..hd {
            let (rf, rb) = (&wf[k * g4..(k + 1) * g4], &wb[k * g4..(k + 1) * g4]);
            let (xf, xb) = (hf[k], hb[k]);
            for j in 0..g4 {
                zf[j] += rf[j] * xf;
                zb[j] += rb[j] * xb;
            }
        }
        cell_update(zf, hf, cf, hd);
        cell_update(zb, hb, cb, hd);
        if let Some(out) = out.as_deref_mut() {
            out[tf * 2 * hd..tf * 2 * hd + hd].copy_from_slice(hf);
            out[tb * 2 * hd + hd..(tb + 1) * 2 * hd].copy_from_slice(hb);
        }
    }
}

/// Gates from `z`, then `c = f⊙c + i⊙g`, `h = o⊙tanh(c)`, with cell's arithmetic.
#[inline(always)]
fn cell_update(z: &[f32], h: &mut [f32], c: &mut [f32], hd: usize) {
    for k in 0..hd {
        let i = sigmoid(z[k]);
        let f = sigmoid(z[hd + k]);
        let g = 2.0 * sigmoid(2.0 * z[2 * hd + k]) - 1.0;
        let o = sigmoid(z[3 * hd + k]);
        c[k] = f * c[k] + i * g;
        h[k] = o * tanh(c[k]);
    }
}

/// Hidden size 8 (the `original` preset) on AVX-512, everything in registers and shaped for
/// latency: a direction's 32 gates are two 512-bit registers, its `h` and `c` one 256-bit
/// register each; `W·h` sums even and odd `k` apart (half the dependent chain) and `σ` is
/// [`h8::sigmoid_fast`]. Within a few roundings of the portable loops, not bit for bit.
#[cfg(target_arch = "x86_64")]
pub mod h8 {
    // Direction loops index several arrays in step.
    #![allow(clippy::needless_range_loop)]

    use std::arch::x86_64::*;

    use super::{Rows, Scratch};
    use crate::cell::Recurrent;

    use distill_ops::math::{EXP_POLY, LN2_HI, LN2_LO, ROUND};

    const LOG2E: f32 = std::f32::consts::LOG2_E;

    /// `σ(x) = 1 / (1 + e⁻ˣ)` of two vectors with a short dependent chain: `e⁻ˣ` as
    /// [`distill_ops::math::exp`] (Cephes range reduction and polynomial, `−x` clamped to
    /// [−87, 88]) with the rounding by the 1.5·2²³ trick, the polynomial evaluated in
    /// Estrin's order, the power of two built in the exponent bits; the division as a 14-bit
    /// reciprocal estimate and one Newton step.
    ///
    /// # Safety
    /// AVX-512F must be present.
    #[inline(always)]
    pub unsafe fn sigmoid_fast(x: [__m512; 2]) -> [__m512; 2] {
        // Loops, not closures: a closure would not inherit the caller's target features and
        // every intrinsic in it would become a call.
        let one = _mm512_set1_ps(1.0);
        let mut out = x;
        for v in &mut out {
            // NaN stays NaN through max/min (they return the second operand then).
            let xc = _mm512_max_ps(
                _mm512_set1_ps(-88.0),
                _mm512_min_ps(_mm512_set1_ps(87.0), *v),
            );
            let shifted = _mm512_fmadd_ps(xc, _mm512_set1_ps(-LOG2E), _mm512_set1_ps(ROUND));
            let n = _mm512_sub_ps(shifted, _mm512_set1_ps(ROUND));
            // r = −x − n·ln2
            let r = _mm512_fnmsub_ps(n, _mm512_set1_ps(LN2_HI), xc);
            let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
            // P(r) = c0 + c1·r + … + c5·r⁵, Estrin: three pairs, then r² and r⁴.
            let r2 = _mm512_mul_ps(r, r);
            let c = |i: usize| _mm512_set1_ps(EXP_POLY[5 - i]);
            let p01 = _mm512_fmadd_ps(c(1), r, c(0));
            let p23 = _mm512_fmadd_ps(c(3), r, c(2));
            let p45 = _mm512_fmadd_ps(c(5), r, c(4));
            let r4 = _mm512_mul_ps(r2, r2);
            let p = _mm512_fmadd_ps(p23, r2, p01);
            let p = _mm512_fmadd_ps(p45, r4, p);
            // e^r = 1 + r + r²·P(r)
            let er = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), one);
            // 2ⁿ from the rounded sum's low bits: (n + 127) << 23.
            let bits = _mm512_sub_epi32(
                _mm512_castps_si512(shifted),
                _mm512_set1_epi32(ROUND.to_bits() as i32 - 127),
            );
            let e = _mm512_mul_ps(er, _mm512_castsi512_ps(_mm512_slli_epi32::<23>(bits)));
            let d = _mm512_add_ps(one, e);
            let y = _mm512_rcp14_ps(d);
            *v = _mm512_mul_ps(y, _mm512_fnmadd_ps(d, y, _mm512_set1_ps(2.0)));
        }
        out
    }

    /// [`super::both`] for `H = 8`.
    ///
    /// # Safety
    /// AVX-512F and AVX-512DQ must be present; the scratch reset to `H = 8`.
    #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
    pub unsafe fn both(
        rec: [&Recurrent; 2],
        rows: [Rows<'_>; 2],
        len: usize,
        scratch: &mut Scratch,
        mut out: Option<&mut [f32]>,
    ) {
        const G4: usize = 32;
        // Loops, not closures: a closure would not inherit this function's target features.
        // Per direction, k: W_hh's column k as gates 0..16 and 16..32 (wt is [H, 4H]).
        let mut w = [[[_mm512_setzero_ps(); 2]; 8]; 2];
        for d in 0..2 {
            let wt = &rec[d].wt[..8 * G4];
            for k in 0..8 {
                w[d][k] = [
                    _mm512_loadu_ps(wt[k * G4..k * G4 + 16].as_ptr()),
                    _mm512_loadu_ps(wt[k * G4 + 16..(k + 1) * G4].as_ptr()),
                ];
            }
        }
        let mut k_index = [_mm512_setzero_si512(); 8];
        for (k, v) in k_index.iter_mut().enumerate() {
            *v = _mm512_set1_epi32(k as i32);
        }
        // The g half of the second gate register is doubled (tanh g = 2σ(2g) − 1).
        let scale = _mm512_insertf32x8::<1>(
            _mm512_castps256_ps512(_mm256_set1_ps(2.0)),
            _mm256_set1_ps(1.0),
        );
        let minus = _mm512_insertf32x8::<1>(
            _mm512_castps256_ps512(_mm256_set1_ps(1.0)),
            _mm256_set1_ps(0.0),
        );
        let two = _mm256_set1_ps(2.0);
        let mut h = [_mm256_setzero_ps(); 2];
        let mut c = [_mm256_setzero_ps(); 2];
        for step in 0..len {
            let t = [step, len - 1 - step];
            let mut z = [[_mm512_setzero_ps(); 2]; 2];
            for d in 0..2 {
                let row = rows[d].row(t[d], G4);
                let hz = _mm512_castps256_ps512(h[d]);
                let mut acc = [
                    _mm512_loadu_ps(row[..16].as_ptr()),
                    _mm512_loadu_ps(row[16..].as_ptr()),
                    _mm512_setzero_ps(),
                    _mm512_setzero_ps(),
                ];
                for k in 0..8 {
                    let hk = _mm512_permutexvar_ps(k_index[k], hz);
                    let a = 2 * (k % 2);
                    acc[a] = _mm512_fmadd_ps(w[d][k][0], hk, acc[a]);
                    acc[a + 1] = _mm512_fmadd_ps(w[d][k][1], hk, acc[a + 1]);
                }
                z[d] = [
                    _mm512_add_ps(acc[0], acc[2]),
                    _mm512_mul_ps(_mm512_add_ps(acc[1], acc[3]), scale),
                ];
            }
            let s = [sigmoid_fast(z[0]), sigmoid_fast(z[1])];
            let mut tc_in = [_mm512_setzero_ps(); 2];
            let mut o = [_mm256_setzero_ps(); 2];
            for d in 0..2 {
                let [s0, s1] = s[d];
                // (i, f) and (2σ(2g) − 1, o)
                let s1 = _mm512_fmsub_ps(scale, s1, minus);
                let (i, f) = (_mm512_castps512_ps256(s0), _mm512_extractf32x8_ps::<1>(s0));
                let (g, od) = (_mm512_castps512_ps256(s1), _mm512_extractf32x8_ps::<1>(s1));
                c[d] = _mm256_fmadd_ps(f, c[d], _mm256_mul_ps(i, g));
                tc_in[d] = _mm512_castps256_ps512(_mm256_mul_ps(two, c[d]));
                o[d] = od;
            }
            let tc = sigmoid_fast(tc_in);
            for d in 0..2 {
                let tanh_c =
                    _mm256_fmsub_ps(two, _mm512_castps512_ps256(tc[d]), _mm256_set1_ps(1.0));
                h[d] = _mm256_mul_ps(o[d], tanh_c);
            }
            if let Some(out) = out.as_deref_mut() {
                for d in 0..2 {
                    let at = &mut out[t[d] * 16 + d * 8..t[d] * 16 + d * 8 + 8];
                    _mm256_storeu_ps(at.as_mut_ptr(), h[d]);
                }
            }
        }
        for d in 0..2 {
            _mm256_storeu_ps(scratch.h[d][..8].as_mut_ptr(), h[d]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::forward_seq;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    type Both = fn([&Recurrent; 2], [Rows<'_>; 2], usize, &mut Scratch, Option<&mut [f32]>);

    /// Both directions of random sentences through `cell::forward_seq` one at a time, and
    /// through `both` and `both_portable`: final states and per-position outputs.
    #[test]
    fn both_directions_together_match_each_alone() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        for hidden in [8, 3, 16] {
            let g4 = 4 * hidden;
            let vocab = 13;
            let rec: Vec<Recurrent> = (0..2)
                .map(|_| {
                    let w = (0..g4 * hidden).map(|_| rng.gen_range(-0.8..0.8)).collect();
                    Recurrent::new(w, hidden)
                })
                .collect();
            let tables: Vec<Vec<f32>> = (0..2)
                .map(|_| (0..vocab * g4).map(|_| rng.gen_range(-3.0..3.0)).collect())
                .collect();
            for len in [0, 1, 2, 7, 40] {
                // Ids past the table read its last row.
                let ids: Vec<u32> = (0..len)
                    .map(|_| rng.gen_range(0..vocab as u32 + 2))
                    .collect();
                let mut want_h = Vec::new();
                let mut want_out = vec![0.0; len * 2 * hidden];
                for d in 0..2 {
                    let xg: Vec<f32> = ids
                        .iter()
                        .flat_map(|&i| {
                            let i = (i as usize).min(vocab - 1);
                            tables[d][i * g4..(i + 1) * g4].iter().copied()
                        })
                        .collect();
                    let (mut h, mut c) = (vec![0.0; hidden], vec![0.0; hidden]);
                    let mut seq = vec![0.0; len * hidden];
                    forward_seq(
                        &rec[d],
                        &xg,
                        len,
                        d == 1,
                        &mut h,
                        &mut c,
                        Some(&mut seq),
                        None,
                    );
                    for t in 0..len {
                        want_out[t * 2 * hidden + d * hidden..t * 2 * hidden + (d + 1) * hidden]
                            .copy_from_slice(&seq[t * hidden..(t + 1) * hidden]);
                    }
                    want_h.push(h);
                }
                let rows = [0, 1].map(|d| Rows::Table {
                    table: &tables[d],
                    ids: &ids,
                });
                let run = |f: Both| {
                    let mut s = Scratch::default();
                    let mut out = vec![f32::NAN; len * 2 * hidden];
                    f([&rec[0], &rec[1]], rows, len, &mut s, Some(&mut out));
                    (s.h.to_vec(), out)
                };
                let (h, out) = run(both_portable);
                assert_eq!(h, want_h, "portable, bit for bit: H {hidden}, len {len}");
                assert_eq!(out, want_out, "portable outputs: H {hidden}, len {len}");
                let (h, out) = run(both);
                let diff = h
                    .iter()
                    .flatten()
                    .zip(want_h.iter().flatten())
                    .chain(out.iter().zip(&want_out))
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(diff <= 2e-6, "H {hidden}, len {len}: {diff:e}");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_fast_sigmoid_matches_the_scalar_one() {
        use std::arch::x86_64::*;
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("no AVX-512 here: the portable loops are what runs");
            return;
        }
        let xs: Vec<f32> = (-120 * 64..=100 * 64)
            .map(|i| i as f32 / 64.0)
            .chain([f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30, f32::NAN])
            .collect();
        for chunk in xs.chunks(32) {
            let mut x = [0.0f32; 32];
            x[..chunk.len()].copy_from_slice(chunk);
            let mut y = [0.0f32; 32];
            // SAFETY: AVX-512F was detected above.
            unsafe {
                let v = [
                    _mm512_loadu_ps(x.as_ptr()),
                    _mm512_loadu_ps(x[16..].as_ptr()),
                ];
                let s = h8::sigmoid_fast(v);
                _mm512_storeu_ps(y.as_mut_ptr(), s[0]);
                _mm512_storeu_ps(y[16..].as_mut_ptr(), s[1]);
            }
            for (x, y) in x.iter().zip(&y).take(chunk.len()) {
                let want = distill_ops::math::sigmoid(*x);
                if x.is_nan() {
                    assert!(y.is_nan(), "σ(NaN) = {y}");
                } else {
                    assert!((y - want).abs() <= 2e-7, "σ({x}) = {y} vs {want}");
                }
            }
        }
    }
}
