//! One sentence through one layer, both directions stepped together.
//!
//! The forward chain (left to right) and the backward chain (right to left, from the last
//! token) of a sentence do not depend on each other. [`crate::cell::forward_seq`] runs one
//! after the other, each a chain of dependent operations the CPU mostly waits on; stepping
//! both in one loop lets it overlap the two, which is what a single sentence's latency is
//! made of. The step is the one of [`crate::cell`], with the same operations in the same
//! order, so the states are `forward_seq`'s bit for bit:
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
    for d in 0..2 {
        scratch.z[d].clear();
        scratch.z[d].resize(4 * hidden, 0.0);
        for v in [&mut scratch.h[d], &mut scratch.c[d]] {
            v.clear();
            v.resize(hidden, 0.0);
        }
    }
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
