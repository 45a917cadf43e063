//! The fused LSTM sequence kernel: one candle custom op per layer and direction.
//!
//! Inputs: `xg` `(batch, time, 4H)` — input projections with both biases added — and
//! `w_hh` `(4H, H)`. Output `(batch, time + 2, H)`: rows `0..time` are `h_t` at each real
//! position (zero on padding), row `time` is the final `h`, row `time + 1` the final `c`.
//! Packing the final state into the output keeps this a single differentiable op; callers
//! `narrow` what they need. Lengths and direction live in the op.
//!
//! One op per gate per step would launch `~10·time` candle ops per direction; this runs the
//! whole recurrence in [`crate::cell`] over the batch in parallel, forward and backward
//! (when training, the forward keeps its per-step trace inside the op for the backward).
//! CPU only: other devices use [`crate::reference`].

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use distill_ops::host;
use rayon::prelude::*;

use crate::cell::{backward_seq, forward_seq, Recurrent, TRACE};

/// Below this many token steps per batch, threads cost more than they save.
const PARALLEL_MIN_STEPS: usize = 256;

/// Rows per parallel task of the backward pass.
const ROWS_PER_TASK: usize = 4;

/// One direction of one LSTM layer over a padded batch with known lengths.
#[derive(Clone, Debug)]
pub struct LstmSeqOp {
    lengths: Arc<[usize]>,
    reverse: bool,
    /// The forward trace (`[B, T, TRACE·H]`), kept for the backward pass when the inputs
    /// track gradients; the backward recomputes it if absent.
    trace: Arc<Mutex<Option<Vec<f32>>>>,
    record: bool,
}

impl LstmSeqOp {
    /// `lengths[b]` real tokens in row `b`; `reverse` reads right to left from the last real token.
    pub fn new(lengths: Arc<[usize]>, reverse: bool) -> Self {
        Self {
            lengths,
            reverse,
            trace: Arc::default(),
            record: false,
        }
    }

    /// Applies the op: `xg` `(B, T, 4H)`, `w_hh` `(4H, H)` → `(B, T + 2, H)`.
    pub fn apply(&self, xg: &Tensor, w_hh: &Tensor) -> candle_core::Result<Tensor> {
        let mut op = self.clone();
        op.record = xg.track_op() || w_hh.track_op();
        op.trace = Arc::default();
        xg.contiguous()?.apply_op2(&w_hh.contiguous()?, op)
    }

    fn dims(&self, xg: &Layout, w: &Layout) -> candle_core::Result<(usize, usize, usize)> {
        let (b, t, g4) = xg.shape().dims3()?;
        let (wg, h) = w.shape().dims2()?;
        if g4 != 4 * h || wg != g4 {
            candle_core::bail!(
                "lstm kernel: xg {:?} does not match w_hh {:?}",
                xg.shape(),
                w.shape()
            );
        }
        if b != self.lengths.len() {
            candle_core::bail!("lstm kernel: batch {b} but {} lengths", self.lengths.len());
        }
        if let Some(&l) = self.lengths.iter().find(|&&l| l > t) {
            candle_core::bail!("lstm kernel: length {l} exceeds time {t}");
        }
        Ok((b, t, h))
    }

    fn parallel(&self) -> bool {
        self.lengths.iter().sum::<usize>() >= PARALLEL_MIN_STEPS
    }
}

impl CustomOp2 for LstmSeqOp {
    fn name(&self) -> &'static str {
        "lstm-seq"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, t, h) = self.dims(l1, l2)?;
        let xg = host::slice(s1, l1, self.name())?;
        let rec = Recurrent::new(host::slice(s2, l2, self.name())?.to_vec(), h);
        let mut out = vec![0.0f32; b * (t + 2) * h];
        let row_trace = t * TRACE * h;
        let mut trace = if self.record {
            vec![0.0f32; b * row_trace]
        } else {
            Vec::new()
        };
        let run = |((row, o), tr): ((usize, &mut [f32]), &mut [f32])| {
            let (seq, state) = o.split_at_mut(t * h);
            let (hn, cn) = state.split_at_mut(h);
            let x = &xg[row * t * 4 * h..(row + 1) * t * 4 * h];
            let len = self.lengths[row];
            let tr = if tr.is_empty() {
                None
            } else {
                Some(&mut tr[..len * TRACE * h])
            };
            forward_seq(&rec, x, len, self.reverse, hn, cn, Some(seq), tr);
        };
        let traces: Vec<&mut [f32]> = if self.record {
            trace.chunks_mut(row_trace.max(1)).collect()
        } else {
            (0..b).map(|_| &mut [][..]).collect()
        };
        let rows = out.chunks_mut((t + 2) * h).enumerate().zip(traces);
        if self.parallel() {
            rows.collect::<Vec<_>>().into_par_iter().for_each(run);
        } else {
            rows.for_each(run);
        }
        if self.record {
            *self
                .trace
                .lock()
                .map_err(|_| candle_core::Error::Msg("lstm kernel: poisoned trace".into()))? =
                Some(trace);
        }
        Ok((CpuStorage::F32(out), Shape::from((b, t + 2, h))))
    }

    fn bwd(
        &self,
        xg: &Tensor,
        w_hh: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (b, t, g4) = xg.dims3()?;
        let h = g4 / 4;
        let saved = self.trace.lock().ok().and_then(|mut t| t.take());
        let xs = match saved {
            Some(_) => Vec::new(),
            None => xg.flatten_all()?.to_vec1::<f32>()?,
        };
        let gs = grad.flatten_all()?.to_vec1::<f32>()?;
        let rec = Recurrent::new(w_hh.flatten_all()?.to_vec1::<f32>()?, h);
        let mut dxg = vec![0.0f32; b * t * g4];

        let row_trace = t * TRACE * h;
        let run = |(row, dx): (usize, &mut [f32])| -> Vec<f32> {
            let len = self.lengths[row];
            let mut dw = vec![0.0f32; g4 * h];
            if len == 0 {
                return dw;
            }
            let recomputed;
            let trace = match &saved {
                Some(all) => &all[row * row_trace..row * row_trace + len * TRACE * h],
                None => {
                    let x = &xs[row * t * g4..(row + 1) * t * g4];
                    let (mut hs, mut cs) = (vec![0.0f32; h], vec![0.0f32; h]);
                    let mut tr = vec![0.0f32; len * TRACE * h];
                    forward_seq(
                        &rec,
                        x,
                        len,
                        self.reverse,
                        &mut hs,
                        &mut cs,
                        None,
                        Some(&mut tr),
                    );
                    recomputed = tr;
                    &recomputed[..]
                }
            };
            let g = &gs[row * (t + 2) * h..(row + 1) * (t + 2) * h];
            let (d_out, d_state) = g.split_at(t * h);
            let mut dh = d_state[..h].to_vec();
            let mut dc = d_state[h..].to_vec();
            backward_seq(
                &rec,
                trace,
                len,
                self.reverse,
                d_out,
                &mut dh,
                &mut dc,
                dx,
                &mut dw,
            );
            dw
        };
        let rows = dxg.chunks_mut(t * g4).enumerate();
        let dw = if self.parallel() {
            // Fixed groups of rows, their sums added in order: rayon's `reduce` adds along a
            // tree that depends on which thread stole what, so the rounding (and a seeded
            // training run) would change from run to run.
            rows.collect::<Vec<_>>()
                .into_par_iter()
                .chunks(ROWS_PER_TASK)
                .map(|group| {
                    group
                        .into_iter()
                        .map(run)
                        .fold(vec![0.0f32; g4 * h], add_into)
                })
                .collect::<Vec<_>>()
                .into_iter()
                .fold(vec![0.0f32; g4 * h], add_into)
        } else {
            rows.map(run).fold(vec![0.0f32; g4 * h], add_into)
        };
        let dev = xg.device();
        Ok((
            Some(Tensor::from_vec(dxg, (b, t, g4), dev)?),
            Some(Tensor::from_vec(dw, (g4, h), dev)?),
        ))
    }
}

fn add_into(mut a: Vec<f32>, b: Vec<f32>) -> Vec<f32> {
    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
    a
}
