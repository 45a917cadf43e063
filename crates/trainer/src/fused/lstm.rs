//! One direction of one LSTM layer over a packed batch ([`Pack`]), forward and backward.
//!
//! Forward, for every packed row `r = (s, b)` (gate order i, f, g, o as PyTorch; `p` the
//! row `(s − 1, b)`, zero state at `s = 0`):
//! ```text
//! z_r = x_r·W_ihᵀ + h_p·W_hhᵀ + (b_ih + b_hh)       (4H)
//! i, f, o = σ(z_i, z_f, z_o)   g = tanh z_g
//! c_r = f⊙c_p + i⊙g            h_r = o⊙tanh c_r
//! ```
//! The input projection is one `(N, in)·(in, 4H)` product over all tokens; only `h·W_hhᵀ` is
//! sequential, one `(count[s], H)·(H, 4H)` product per step across the rows still reading.
//! The first layer's input is an embedding row per token, and a batch repeats its tokens
//! (a bucketed SST-2 batch holds about 45 % distinct ones), so there it is given as a table
//! of the batch's distinct rows ([`Input::Distinct`]): the projection runs once per distinct
//! token and is gathered per row, and backward sums `dz` per token first, so `dW_ih` and the
//! input gradient (one row per distinct token, as the embedding's optimiser takes it) are
//! products over the table too.
//!
//! Backward, with `dh`, `dc` the gradients flowing into a row's state from its next step (or
//! from the classifier for its final `h`) plus `d_out_r` from the layer above:
//! ```text
//! dh = dh + d_out_r              dc = dc + dh⊙o⊙(1 − tanh²c_r)
//! dz_i = dc⊙g⊙i(1−i)   dz_f = dc⊙c_p⊙f(1−f)   dz_g = dc⊙i⊙(1−g²)   dz_o = dh⊙tanh c_r⊙o(1−o)
//! dc_p = dc⊙f                    dh_p = dz·W_hh
//! ```
//! and then, over all rows at once, `dW_ih = dzᵀ·x`, `dW_hh = dzᵀ·h_p`, `db_ih = db_hh = Σ dz`,
//! `dx = dz·W_ih`. Shapes: `x` `(N, in)`, `h`, `c` `(N, H)`, `dz` `(N, 4H)`. With a table of
//! `D` distinct rows, `Dz` `(D, 4H)` is `dz` summed per row of the table and `dW_ih = Dzᵀ·table`,
//! `db = Σ Dz`, `dx = Dz·W_ih` `(D, in)`.

use distill_ops::math::{sigmoid, tanh};

use super::pack::Pack;
use distill_ops::gemm::{gemm, gemm_panels, gemm_tn, Panels};

/// The weights of one direction, PyTorch layout plus the transposes the products read.
pub struct Weights<'a> {
    /// `(4H, in)`.
    pub w_ih: &'a [f32],
    /// `(in, 4H)`.
    pub w_ih_t: &'a [f32],
    /// `W_hhᵀ` `(H, 4H)` and `W_hh` `(4H, H)` packed: each is the right-hand side of one
    /// product per step of the recurrence (forward and backward).
    pub w_hh_t: &'a Panels,
    pub w_hh: &'a Panels,
    /// `b_ih + b_hh` `(4H)`.
    pub bias: &'a [f32],
}

/// A direction's input, in its packed order.
#[derive(Clone, Copy)]
pub enum Input<'a> {
    /// One row per packed token `(N, in)`.
    Rows(&'a [f32]),
    /// `D` distinct rows `(D, in)` and, per packed token, the index of its row.
    Distinct { table: &'a [f32], slot: &'a [u32] },
}

/// What the forward pass keeps for the backward, one row per packed token.
#[derive(Default)]
pub struct Trace {
    /// Gate activations `(i, f, g, o)` `(N, 4H)`.
    pub gates: Vec<f32>,
    /// Cell states `(N, H)`.
    pub c: Vec<f32>,
    /// `tanh c` `(N, H)`.
    pub tanh_c: Vec<f32>,
    /// Outputs `h` `(N, H)`.
    pub h: Vec<f32>,
    /// The projection of a distinct-row input `(D, 4H)` (not read by the backward).
    projected: Vec<f32>,
}

/// Gradients of one direction's parameters (PyTorch layout; `bias` is that of both biases).
#[derive(Default)]
pub struct Grads {
    pub w_ih: Vec<f32>,
    pub w_hh: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Scratch space of the backward pass, kept between steps.
#[derive(Default)]
pub struct Scratch {
    dh: Vec<f32>,
    dc: Vec<f32>,
    dz: Vec<f32>,
    h_prev: Vec<f32>,
    /// `dz` summed per distinct input row `(D, 4H)`.
    dz_rows: Vec<f32>,
}

/// Runs the direction over `x` (`input` wide) in this direction's packed order.
pub fn forward(pack: &Pack, hidden: usize, input: usize, x: Input, w: &Weights, tr: &mut Trace) {
    let (n, g4) = (pack.tokens(), 4 * hidden);
    resize(&mut tr.gates, n * g4);
    resize(&mut tr.c, n * hidden);
    resize(&mut tr.tanh_c, n * hidden);
    resize(&mut tr.h, n * hidden);
    // The biases are added with the activations (see `cell_forward`).
    match x {
        Input::Rows(x) => gemm(
            n,
            input,
            g4,
            x,
            input,
            w.w_ih_t,
            g4,
            &mut tr.gates,
            g4,
            false,
        ),
        Input::Distinct { table, slot } => {
            let d = table.len() / input.max(1);
            resize(&mut tr.projected, d * g4);
            gemm(
                d,
                input,
                g4,
                table,
                input,
                w.w_ih_t,
                g4,
                &mut tr.projected,
                g4,
                false,
            );
            for (z, &t) in tr.gates.chunks_exact_mut(g4).zip(&slot[..n]) {
                let t = t as usize;
                z.copy_from_slice(&tr.projected[t * g4..(t + 1) * g4]);
            }
        }
    }
    for s in 0..pack.steps() {
        let (o, rows) = (pack.offset[s], pack.count[s]);
        let z = &mut tr.gates[o * g4..(o + rows) * g4];
        let prev = s.checked_sub(1).map(|p| pack.offset[p]);
        if let Some(p) = prev {
            let h_prev = &tr.h[p * hidden..(p + rows) * hidden];
            gemm_panels(rows, h_prev, hidden, w.w_hh_t, z, g4, true);
        }
        let step = StepForward {
            z,
            bias: w.bias,
            prev,
            o,
            rows,
            c: &mut tr.c,
            tanh_c: &mut tr.tanh_c,
            h: &mut tr.h,
        };
        cell_forward(hidden, step);
    }
}

/// Back-propagates through the direction. `d_final` `(rows, H)` (sorted order) is the
/// gradient of each row's final `h`; `d_out` `(N, H)`, if any, that of every output. Writes
/// the parameter gradients into `g` and, if asked, the input's gradient into `dx`: `(N,
/// input)` for [`Input::Rows`], `(D, input)` for [`Input::Distinct`].
#[allow(clippy::too_many_arguments)]
pub fn backward(
    pack: &Pack,
    hidden: usize,
    input: usize,
    x: Input,
    w: &Weights,
    tr: &Trace,
    d_final: &[f32],
    d_out: Option<&[f32]>,
    sc: &mut Scratch,
    g: &mut Grads,
    dx: Option<&mut [f32]>,
) {
    let (n, g4) = (pack.tokens(), 4 * hidden);
    let rows = pack.rows();
    sc.dh.clear();
    sc.dh.extend_from_slice(&d_final[..rows * hidden]);
    sc.dc.clear();
    sc.dc.resize(rows * hidden, 0.0);
    resize(&mut sc.dz, n * g4);
    for s in (0..pack.steps()).rev() {
        let (o, active) = (pack.offset[s], pack.count[s]);
        let prev = s.checked_sub(1).map(|p| pack.offset[p]);
        let step = StepBackward {
            tr,
            prev,
            o,
            rows: active,
            d_out,
            dh: &mut sc.dh,
            dc: &mut sc.dc,
            dz: &mut sc.dz,
        };
        cell_backward(hidden, step);
        if s > 0 {
            let dz = &sc.dz[o * g4..(o + active) * g4];
            gemm_panels(active, dz, g4, w.w_hh, &mut sc.dh, hidden, false);
        }
    }

    // The input's rows and the `dz` that pairs with each: per token, or summed per
    // distinct row.
    let (x, dz_in, rows_in) = match x {
        Input::Rows(x) => (x, &sc.dz[..], n),
        Input::Distinct { table, slot } => {
            let d = table.len() / input.max(1);
            sc.dz_rows.clear();
            sc.dz_rows.resize(d * g4, 0.0);
            for (dz, &t) in sc.dz.chunks_exact(g4).zip(&slot[..n]) {
                let t = t as usize;
                for (acc, v) in sc.dz_rows[t * g4..(t + 1) * g4].iter_mut().zip(dz) {
                    *acc += v;
                }
            }
            (table, &sc.dz_rows[..], d)
        }
    };
    g.bias.clear();
    g.bias.resize(g4, 0.0);
    // Row by row, so the sum runs across the gates in vector lanes.
    for row in dz_in.chunks_exact(g4) {
        for (b, d) in g.bias.iter_mut().zip(row) {
            *b += d;
        }
    }
    resize(&mut g.w_ih, g4 * input);
    gemm_tn(
        g4,
        rows_in,
        input,
        dz_in,
        g4,
        x,
        input,
        &mut g.w_ih,
        input,
        false,
    );
    // dW_hh pairs each row from step 1 on with its row's previous output.
    let first = pack.count.first().copied().unwrap_or(0);
    resize(&mut sc.h_prev, (n - first) * hidden);
    for s in 1..pack.steps() {
        let (o, p, active) = (pack.offset[s], pack.offset[s - 1], pack.count[s]);
        sc.h_prev[(o - first) * hidden..(o - first + active) * hidden]
            .copy_from_slice(&tr.h[p * hidden..(p + active) * hidden]);
    }
    resize(&mut g.w_hh, g4 * hidden);
    gemm_tn(
        g4,
        n - first,
        hidden,
        &sc.dz[first * g4..],
        g4,
        &sc.h_prev,
        hidden,
        &mut g.w_hh,
        hidden,
        false,
    );
    if let Some(dx) = dx {
        gemm(
            rows_in, g4, input, dz_in, g4, w.w_ih, input, dx, input, false,
        );
    }
}

/// `v` with exactly `len` elements (contents unspecified: every user overwrites them).
fn resize(v: &mut Vec<f32>, len: usize) {
    v.resize(len, 0.0);
}

macro_rules! specialised {
    ($hidden:expr, $f:ident ($($arg:expr),*)) => {
        match $hidden {
            8 => $f::<8>($($arg),*),
            16 => $f::<16>($($arg),*),
            32 => $f::<32>($($arg),*),
            64 => $f::<64>($($arg),*),
            _ => $f::<0>($($arg),*),
        }
    };
}

/// One step of the forward recurrence: the `rows` packed rows from `o`, whose previous
/// step's rows start at `prev`.
pub(super) struct StepForward<'a> {
    /// `x·W_ihᵀ + h·W_hhᵀ` of the step's rows `(rows, 4H)`; becomes the gate activations.
    pub(super) z: &'a mut [f32],
    /// `b_ih + b_hh`, added here.
    pub(super) bias: &'a [f32],
    pub(super) prev: Option<usize>,
    pub(super) o: usize,
    pub(super) rows: usize,
    pub(super) c: &'a mut [f32],
    pub(super) tanh_c: &'a mut [f32],
    pub(super) h: &'a mut [f32],
}

/// Gates → states for one step.
fn cell_forward(hidden: usize, st: StepForward) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        if hidden.is_multiple_of(8) {
            // SAFETY: the features were just detected on this CPU.
            return unsafe { super::cell_x86::cell_forward(hidden, st) };
        }
        // SAFETY: as above.
        return unsafe { cell_forward_avx2(hidden, st) };
    }
    specialised!(hidden, cell_forward_impl(hidden, st))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn cell_forward_avx2(hidden: usize, st: StepForward) {
    specialised!(hidden, cell_forward_impl(hidden, st))
}

#[inline(always)]
fn cell_forward_impl<const HC: usize>(hidden: usize, st: StepForward) {
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
    // A compile-time width for the presets' sizes lets the per-unit loops unroll.
    let hd = if HC > 0 { HC } else { hidden };
    let g4 = 4 * hd;
    let (c_before, c_now) = c.split_at_mut(o * hd);
    let bias = &bias[..g4];
    for gates in z.chunks_exact_mut(g4).take(rows) {
        // One uniform loop (tanh x = 2σ(2x) − 1 for the g block) so it vectorises. (One
        // flat loop over all the step's rows, with `j % 4H`, did not.)
        for ((j, v), b) in gates.iter_mut().enumerate().zip(bias) {
            let is_g = j >= 2 * hd && j < 3 * hd;
            let x = *v + b;
            let s = sigmoid(if is_g { 2.0 * x } else { x });
            *v = if is_g { 2.0 * s - 1.0 } else { s };
        }
    }
    for (b, gates) in z.chunks_exact(g4).take(rows).enumerate() {
        let (i, rest) = gates.split_at(hd);
        let (f, rest) = rest.split_at(hd);
        let (g, og) = rest.split_at(hd);
        let cr = &mut c_now[b * hd..(b + 1) * hd];
        match prev {
            Some(p) => {
                let cp = &c_before[(p + b) * hd..(p + b + 1) * hd];
                for k in 0..hd {
                    cr[k] = f[k] * cp[k] + i[k] * g[k];
                }
            }
            None => {
                for k in 0..hd {
                    cr[k] = i[k] * g[k];
                }
            }
        }
        let r = o + b;
        let tc = &mut tanh_c[r * hd..(r + 1) * hd];
        let hr = &mut h[r * hd..(r + 1) * hd];
        for k in 0..hd {
            tc[k] = tanh(cr[k]);
            hr[k] = og[k] * tc[k];
        }
    }
}

/// One step of the backward recurrence: the `rows` packed rows from `o` (previous step's
/// rows from `prev`). Writes their `dz` and leaves `dc` of the previous step in `dc`; `dh`
/// on entry is the gradient flowing into each row's `h` from its next step (the caller
/// then sets it to `dz·W_hh`).
pub(super) struct StepBackward<'a> {
    pub(super) tr: &'a Trace,
    pub(super) prev: Option<usize>,
    pub(super) o: usize,
    pub(super) rows: usize,
    /// Gradient of every output from the layer above `(N, H)`, if any.
    pub(super) d_out: Option<&'a [f32]>,
    pub(super) dh: &'a mut [f32],
    pub(super) dc: &'a mut [f32],
    pub(super) dz: &'a mut [f32],
}

fn cell_backward(hidden: usize, st: StepBackward) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        if hidden.is_multiple_of(8) {
            // SAFETY: the features were just detected on this CPU.
            return unsafe { super::cell_x86::cell_backward(hidden, st) };
        }
        // SAFETY: as above.
        return unsafe { cell_backward_avx2(hidden, st) };
    }
    specialised!(hidden, cell_backward_impl(hidden, st))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn cell_backward_avx2(hidden: usize, st: StepBackward) {
    specialised!(hidden, cell_backward_impl(hidden, st))
}

#[inline(always)]
fn cell_backward_impl<const HC: usize>(hidden: usize, st: StepBackward) {
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
    let hd = if HC > 0 { HC } else { hidden };
    let g4 = 4 * hd;
    let zeros = [0.0f32; 64];
    let mut zero_vec = Vec::new();
    let zero: &[f32] = if hd <= 64 {
        &zeros[..hd]
    } else {
        zero_vec.resize(hd, 0.0);
        &zero_vec
    };
    for b in 0..rows {
        let r = o + b;
        let gates = &tr.gates[r * g4..(r + 1) * g4];
        let (i, rest) = gates.split_at(hd);
        let (f, rest) = rest.split_at(hd);
        let (g, og) = rest.split_at(hd);
        let tc = &tr.tanh_c[r * hd..(r + 1) * hd];
        let cp = match prev {
            Some(p) => &tr.c[(p + b) * hd..(p + b + 1) * hd],
            None => zero,
        };
        let up = match d_out {
            Some(d) => &d[r * hd..(r + 1) * hd],
            None => zero,
        };
        let dhb = &mut dh[b * hd..(b + 1) * hd];
        let dcb = &mut dc[b * hd..(b + 1) * hd];
        let dzr = &mut dz[r * g4..(r + 1) * g4];
        let (dzi, rest) = dzr.split_at_mut(hd);
        let (dzf, rest) = rest.split_at_mut(hd);
        let (dzg, dzo) = rest.split_at_mut(hd);
        for k in 0..hd {
            let dhk = dhb[k] + up[k];
            let t = tc[k];
            let dck = dcb[k] + dhk * og[k] * (1.0 - t * t);
            dzi[k] = dck * g[k] * i[k] * (1.0 - i[k]);
            dzf[k] = dck * cp[k] * f[k] * (1.0 - f[k]);
            dzg[k] = dck * i[k] * (1.0 - g[k] * g[k]);
            dzo[k] = dhk * t * og[k] * (1.0 - og[k]);
            dcb[k] = dck * f[k];
        }
    }
}
