//! The LSTM recurrence over one sequence, in plain Rust on slices.
//!
//! With input projections already added (`xg = W_ih·x + b_ih + b_hh`), one step is
//! ```text
//! z = xg_t + W_hh·h          (4H, gate order i, f, g, o as PyTorch)
//! i = σ(z_i)  f = σ(z_f)  g = tanh(z_g)  o = σ(z_o)
//! c = f⊙c + i⊙g              h = o⊙tanh(c)
//! ```
//! A sequence of `len` real tokens is read left to right, or right to left when `reverse`:
//! the backward direction starts at the last *real* token, so padding never reaches a state.
//! These functions are the fused kernel shared by training ([`crate::kernel`]) and serving
//! ([`crate::Predictor`]); [`crate::reference`] is the plain candle-op version they are
//! tested against. `σ` and `tanh` are [`distill_ops::math`]'s branch-free versions, which
//! vectorise (libm's calls were a third of the training time).

use distill_ops::math::{sigmoid, tanh};

/// Recurrent weights laid out for the step loops: `w` is PyTorch's `[4H, H]`,
/// `wt` its transpose `[H, 4H]` so that `W·h` runs over contiguous rows.
pub struct Recurrent {
    pub hidden: usize,
    pub w: Vec<f32>,
    pub wt: Vec<f32>,
}

impl Recurrent {
    /// Wraps PyTorch-layout `weight_hh` (`[4H, H]`, row-major).
    pub fn new(w: Vec<f32>, hidden: usize) -> Self {
        let g = 4 * hidden;
        debug_assert_eq!(w.len(), g * hidden);
        let mut wt = vec![0.0; g * hidden];
        for j in 0..g {
            for k in 0..hidden {
                wt[k * g + j] = w[j * hidden + k];
            }
        }
        Self { hidden, w, wt }
    }

    /// `z += W·h`.
    #[inline(always)]
    fn add_mul(&self, z: &mut [f32], h: &[f32]) {
        let g = 4 * self.hidden;
        for (k, &hk) in h.iter().enumerate() {
            let row = &self.wt[k * g..(k + 1) * g];
            for (zj, &wj) in z.iter_mut().zip(row) {
                *zj += wj * hk;
            }
        }
    }
}

/// Floats per hidden unit that [`forward_seq`] records per step for [`backward_seq`].
pub const TRACE: usize = 7;

/// Position of step `s` in a sequence of `len` tokens.
#[inline(always)]
fn position(s: usize, len: usize, reverse: bool) -> usize {
    if reverse {
        len - 1 - s
    } else {
        s
    }
}

/// Applies the gate nonlinearities in place: `z` (pre-activations) becomes `(i, f, g, o)`.
/// One uniform loop (`tanh x = 2σ(2x) − 1` for the `g` block) so it vectorises.
#[inline(always)]
fn activate(z: &mut [f32], hidden: usize) {
    let (g0, g1) = (2 * hidden, 3 * hidden);
    for (j, v) in z.iter_mut().enumerate() {
        let is_g = j >= g0 && j < g1;
        let scale = if is_g { 2.0 } else { 1.0 };
        let s = sigmoid(scale * *v);
        *v = if is_g { 2.0 * s - 1.0 } else { s };
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_seq_impl<const H: usize>(
    rec: &Recurrent,
    xg: &[f32],
    len: usize,
    reverse: bool,
    h: &mut [f32],
    c: &mut [f32],
    mut out: Option<&mut [f32]>,
    mut trace: Option<&mut [f32]>,
) {
    // A compile-time size for the common widths lets the compiler unroll the per-unit loops.
    let hd = if H > 0 { H } else { rec.hidden };
    let g4 = 4 * hd;
    let mut z = vec![0.0f32; g4];
    let mut tc = vec![0.0f32; hd];
    for s in 0..len {
        let t = position(s, len, reverse);
        z.copy_from_slice(&xg[t * g4..(t + 1) * g4]);
        rec.add_mul(&mut z, h);
        activate(&mut z, hd);
        for k in 0..hd {
            c[k] = z[hd + k] * c[k] + z[k] * z[2 * hd + k];
        }
        for k in 0..hd {
            tc[k] = tanh(c[k]);
            h[k] = z[3 * hd + k] * tc[k];
        }
        if let Some(out) = out.as_deref_mut() {
            out[t * hd..(t + 1) * hd].copy_from_slice(h);
        }
        if let Some(trace) = trace.as_deref_mut() {
            let row = &mut trace[s * TRACE * hd..(s + 1) * TRACE * hd];
            row[..g4].copy_from_slice(&z);
            row[g4..g4 + hd].copy_from_slice(c);
            row[g4 + hd..g4 + 2 * hd].copy_from_slice(&tc);
            row[g4 + 2 * hd..].copy_from_slice(h);
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_seq_impl<const H: usize>(
    rec: &Recurrent,
    trace: &[f32],
    len: usize,
    reverse: bool,
    d_out: &[f32],
    dh: &mut [f32],
    dc: &mut [f32],
    dxg: &mut [f32],
    dw: &mut [f32],
) {
    // A compile-time size for the common widths lets the compiler unroll the per-unit loops.
    let hd = if H > 0 { H } else { rec.hidden };
    let g4 = 4 * hd;
    let zeros = vec![0.0f32; hd];
    let mut dz = vec![0.0f32; g4];
    for s in (0..len).rev() {
        let t = position(s, len, reverse);
        let row = &trace[s * TRACE * hd..(s + 1) * TRACE * hd];
        let (gates, rest) = row.split_at(g4);
        let tanh_c = &rest[hd..2 * hd];
        let (c_prev, h_prev) = if s > 0 {
            let prev = &trace[(s - 1) * TRACE * hd..s * TRACE * hd];
            (&prev[g4..g4 + hd], &prev[g4 + 2 * hd..])
        } else {
            (&zeros[..], &zeros[..])
        };
        for k in 0..hd {
            let (i, f, g, o) = (
                gates[k],
                gates[hd + k],
                gates[2 * hd + k],
                gates[3 * hd + k],
            );
            let dhk = dh[k] + d_out[t * hd + k];
            let tc = tanh_c[k];
            let dck = dc[k] + dhk * o * (1.0 - tc * tc);
            dz[k] = dck * g * i * (1.0 - i);
            dz[hd + k] = dck * c_prev[k] * f * (1.0 - f);
            dz[2 * hd + k] = dck * i * (1.0 - g * g);
            dz[3 * hd + k] = dhk * tc * o * (1.0 - o);
            dc[k] = dck * f;
        }
        dxg[t * g4..(t + 1) * g4].copy_from_slice(&dz);
        // dW += dz ⊗ h_prev ; dh = Wᵀ·dz
        dh.iter_mut().for_each(|v| *v = 0.0);
        for (j, &dzj) in dz.iter().enumerate() {
            let wrow = &rec.w[j * hd..(j + 1) * hd];
            let dwrow = &mut dw[j * hd..(j + 1) * hd];
            for k in 0..hd {
                dwrow[k] += dzj * h_prev[k];
                dh[k] += wrow[k] * dzj;
            }
        }
    }
}

/// Compiles `$generic` a second time with AVX2 and FMA enabled and picks that copy at run
/// time when the CPU has them (the default x86-64 target only assumes SSE2, and these loops
/// are 8 and 32 lanes wide).
/// Calls `$f::<H>` with `H` the hidden size of the first argument (a [`Recurrent`]) when it
/// is one of the presets' sizes, else with `H = 0` (read at run time).
macro_rules! specialised {
    ($f:ident, ($rec:ident $(, $arg:ident)*)) => {
        match $rec.hidden {
            8 => $f::<8>($rec $(, $arg)*),
            16 => $f::<16>($rec $(, $arg)*),
            64 => $f::<64>($rec $(, $arg)*),
            _ => $f::<0>($rec $(, $arg)*),
        }
    };
}

macro_rules! dispatch {
    ($(#[$doc:meta])* pub fn $name:ident / $avx:ident = $generic:ident ($($arg:ident : $ty:ty),* $(,)?)) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                // SAFETY: the features were just detected on this CPU.
                return unsafe { $avx($($arg),*) };
            }
            specialised!($generic, ($($arg),*))
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $avx($($arg: $ty),*) {
            specialised!($generic, ($($arg),*))
        }
    };
}

dispatch! {
    /// Runs one sequence forward. `xg` is `[len_max, 4H]` (rows past `len` are ignored),
    /// `out` is `[len_max, H]` and receives `h_t` at each real position (padding untouched).
    /// `h` and `c` hold the initial state on entry and the final state on exit. When `trace`
    /// is given (`[len, TRACE·H]`), each step stores `(i, f, g, o, c, tanh c, h)` for the
    /// backward pass.
    pub fn forward_seq / forward_seq_avx2 = forward_seq_impl(
        rec: &Recurrent,
        xg: &[f32],
        len: usize,
        reverse: bool,
        h: &mut [f32],
        c: &mut [f32],
        out: Option<&mut [f32]>,
        trace: Option<&mut [f32]>,
    )
}

dispatch! {
    /// Back-propagates through one sequence whose forward `trace` was recorded by
    /// [`forward_seq`] (initial state zero). `d_out` is `[len_max, H]` (gradient w.r.t. each
    /// output `h_t`), `dh`/`dc` hold the gradients w.r.t. the final `h`/`c` on entry. Writes
    /// `dxg` (`[len_max, 4H]`, real rows only) and accumulates `dw` (`[4H, H]`).
    pub fn backward_seq / backward_seq_avx2 = backward_seq_impl(
        rec: &Recurrent,
        trace: &[f32],
        len: usize,
        reverse: bool,
        d_out: &[f32],
        dh: &mut [f32],
        dc: &mut [f32],
        dxg: &mut [f32],
        dw: &mut [f32],
    )
}
