//! The whole student's forward and backward over one batch, without tensors.
//!
//! ```text
//! ids (rows, T) ─pack─▶ embedding rows x (N, E), in each direction's order
//!   └─ per layer: forward ‖ backward direction (two threads when it pays) ─▶ h (N, H) each
//!        next layer's input (N, 2H) = [h_fwd ; h_bwd] of the same token
//!   └─ top layer's final states (rows, 2H) ─▶ head ─▶ logits (B, C) ─▶ loss
//! and back: d logits → head → d final states → layers top-down → dx (N, E) → embedding rows
//! ```
//! `rows` is the batch size, or twice it for pairs (first texts, then second texts). The
//! gradient of the embedding comes as one summed row per distinct token id, for the lazy
//! row optimiser.

use rand::RngCore;

use distill_student::StudentConfig;

use super::gemm::transpose;
use super::head::{self, HeadCache, Linear, LinearGrads};
use super::loss::loss_and_grad;
use super::lstm::{self, Scratch, Trace, Weights};
use super::pack::Pack;
use super::params::{direction_index, Params};
use crate::{Error, Loss, Result};

/// Below this many multiply-adds per direction and layer, the second thread costs more than
/// it saves.
const PARALLEL_MIN_MACS: usize = 150_000;

/// One batch as the fused step reads it.
#[derive(Clone, Copy, Debug)]
pub struct StepBatch<'a> {
    /// Token ids, row-major `(rows, time)`; pairs stack the first texts, then the second.
    pub ids: &'a [u32],
    /// Real tokens of each row.
    pub lengths: &'a [usize],
    pub time: usize,
    pub pair: bool,
    /// Gold label of each example (`None`: unlabelled).
    pub labels: &'a [Option<u32>],
    /// Teacher logits `(examples, C)`, if the loss has a teacher term.
    pub teacher: Option<&'a [f32]>,
}

/// Gradients of one batch: dense ones in [`Params::names`] order, the embedding's as rows.
#[derive(Clone, Debug, Default)]
pub struct Gradients {
    pub dense: Vec<Vec<f32>>,
    /// Distinct token ids whose embedding rows have a gradient.
    pub rows: Vec<u32>,
    /// Their gradients, `(rows.len(), E)`.
    pub row_grads: Vec<f32>,
}

/// One direction's buffers, kept between steps.
#[derive(Default)]
struct Direction {
    /// Input in this direction's packed order `(N, in)`.
    x: Vec<f32>,
    w_ih_t: Vec<f32>,
    w_hh_t: Vec<f32>,
    bias: Vec<f32>,
    trace: Trace,
    scratch: Scratch,
    grads: lstm::Grads,
    /// Gradient of the final states `(rows, H)` (sorted order), of every output `(N, H)`
    /// and of the input `(N, in)`.
    d_final: Vec<f32>,
    d_out: Vec<f32>,
    dx: Vec<f32>,
}

/// Buffers of a step, kept so that steps allocate nothing once warm.
#[derive(Default)]
pub(super) struct Workspace {
    pack: Pack,
    /// Token id of each forward packed row.
    tokens: Vec<u32>,
    layers: Vec<[Direction; 2]>,
    /// Top layer's final states `(rows, 2H)`, batch order.
    states: Vec<f32>,
    logits: Vec<f32>,
    d_logits: Vec<f32>,
    d_states: Vec<f32>,
    head: HeadCache,
    head_grads: [LinearGrads; 2],
    /// Per vocabulary row, its index in `touched` while a batch is prepared (`u32::MAX`:
    /// none; reset after).
    slot: Vec<u32>,
    /// Distinct token ids of the batch, in order of first appearance.
    touched: Vec<u32>,
    /// For each forward packed row, the index of its token in `touched`.
    token_slot: Vec<u32>,
    /// Examples in the batch.
    examples: usize,
}

/// A student's parameters with the buffers to train them; see the module docs.
pub struct FusedStudent {
    pub(super) config: StudentConfig,
    pub(super) params: Params,
    pub(super) ws: Workspace,
}

impl FusedStudent {
    /// A student over these parameters.
    pub fn new(config: &StudentConfig, params: Params) -> Self {
        Self {
            config: config.clone(),
            params,
            ws: Workspace::default(),
        }
    }

    /// The architecture.
    pub fn config(&self) -> &StudentConfig {
        &self.config
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Loss of `batch` and the gradient of every parameter (into `grads`). With
    /// `dropout_rng` dropout is on, drawing as the candle model does.
    pub fn gradients(
        &mut self,
        loss: &Loss,
        batch: &StepBatch,
        dropout_rng: Option<&mut dyn RngCore>,
        grads: &mut Gradients,
    ) -> Result<f64> {
        self.prepare(batch, dropout_rng)?;
        self.ws
            .gradients(&self.config, &self.params.dense, loss, batch, grads)
    }

    /// Logits `(B, C)` of `batch` (training mode when `dropout_rng` is given).
    pub fn logits(
        &mut self,
        batch: &StepBatch,
        dropout_rng: Option<&mut dyn RngCore>,
    ) -> Result<&[f32]> {
        self.prepare(batch, dropout_rng)?;
        self.ws.forward(&self.config, &self.params.dense);
        Ok(&self.ws.logits)
    }

    /// The first part of a step, the only one that reads the embedding table and the
    /// generator: packs the batch, gathers its embedding rows and draws the dropout.
    pub(super) fn prepare(
        &mut self,
        batch: &StepBatch,
        rng: Option<&mut dyn RngCore>,
    ) -> Result<()> {
        let cfg = &self.config;
        let rows = batch.lengths.len();
        let examples = if batch.pair { rows / 2 } else { rows };
        if batch.pair != cfg.pair || (batch.pair && rows % 2 != 0) {
            return Err(Error::Config(format!(
                "the student reads {}, the batch has {rows} rows of {}",
                if cfg.pair { "pairs" } else { "single texts" },
                if batch.pair { "pairs" } else { "single texts" },
            )));
        }
        if batch.ids.len() != rows * batch.time || batch.labels.len() != examples {
            return Err(Error::Config(format!(
                "a batch of {rows} rows × {} steps has {} ids and {} labels",
                batch.time,
                batch.ids.len(),
                batch.labels.len()
            )));
        }
        let e = cfg.embedding_dim;
        let ws = &mut self.ws;
        ws.examples = examples;
        ws.pack = Pack::new(batch.lengths, batch.time);
        let pack = &ws.pack;
        ws.tokens.clear();
        ws.tokens.extend(
            pack.forward_positions()
                .map(|(r, s)| batch.ids[r * batch.time + s]),
        );
        if let Some(&bad) = ws.tokens.iter().find(|&&t| t as usize >= cfg.vocab_size) {
            return Err(Error::Config(format!(
                "token id {bad} is outside the vocabulary of {}",
                cfg.vocab_size
            )));
        }
        // The distinct rows the batch reads, which its gradient touches.
        ws.slot.resize(cfg.vocab_size, u32::MAX);
        ws.touched.clear();
        ws.token_slot.clear();
        for &t in &ws.tokens {
            let slot = &mut ws.slot[t as usize];
            if *slot == u32::MAX {
                *slot = ws.touched.len() as u32;
                ws.touched.push(t);
            }
            ws.token_slot.push(*slot);
        }
        for &t in &ws.touched {
            ws.slot[t as usize] = u32::MAX;
        }
        ws.layers.resize_with(cfg.num_layers, Default::default);
        // Layer 0 reads the embedding rows, in each direction's order.
        let [f, r] = &mut ws.layers[0];
        f.x.clear();
        for &t in &ws.tokens {
            let t = t as usize;
            f.x.extend_from_slice(&self.params.embedding[t * e..(t + 1) * e]);
        }
        reorder(&f.x, e, &pack.rev, &mut r.x);
        let width = if cfg.pair { 8 } else { 2 } * cfg.hidden_size;
        head::draw_dropout(&mut ws.head, examples, width, cfg.dropout, rng);
        Ok(())
    }

    /// Distinct token ids of the prepared batch: the embedding rows its gradient touches.
    pub(super) fn touched(&self) -> &[u32] {
        &self.ws.touched
    }
}

impl Workspace {
    /// The rest of a step after [`FusedStudent::prepare`]: forward, loss, backward.
    pub(super) fn gradients(
        &mut self,
        cfg: &StudentConfig,
        dense: &[Vec<f32>],
        loss: &Loss,
        batch: &StepBatch,
        grads: &mut Gradients,
    ) -> Result<f64> {
        self.forward(cfg, dense);
        let c = cfg.num_outputs;
        self.d_logits.resize(self.logits.len(), 0.0);
        let value = loss_and_grad(
            loss,
            &self.logits,
            c,
            batch.labels,
            batch.teacher,
            &mut self.d_logits,
        )?;
        self.backward(cfg, dense, grads);
        Ok(value)
    }

    /// Logits of the prepared batch into `self.logits`.
    fn forward(&mut self, cfg: &StudentConfig, dense: &[Vec<f32>]) {
        let (e, h) = (cfg.embedding_dim, cfg.hidden_size);
        let ws = self;
        let pack = &ws.pack;
        let n = pack.tokens();
        for l in 0..cfg.num_layers {
            let input = if l == 0 { e } else { 2 * h };
            let [f, r] = &mut ws.layers[l];
            for (d, dir) in [(&mut *f, false), (&mut *r, true)] {
                let k = direction_index(l, dir);
                d.w_ih_t.resize(input * 4 * h, 0.0);
                transpose(4 * h, input, &dense[k], input, &mut d.w_ih_t);
                d.w_hh_t.resize(h * 4 * h, 0.0);
                transpose(4 * h, h, &dense[k + 1], h, &mut d.w_hh_t);
                d.bias.clear();
                d.bias
                    .extend(dense[k + 2].iter().zip(&dense[k + 3]).map(|(a, b)| a + b));
            }
            let run = |d: &mut Direction, reverse: bool| {
                let k = direction_index(l, reverse);
                let w = Weights {
                    w_ih: &dense[k],
                    w_hh: &dense[k + 1],
                    w_ih_t: &d.w_ih_t,
                    w_hh_t: &d.w_hh_t,
                    bias: &d.bias,
                };
                lstm::forward(pack, h, input, &d.x, &w, &mut d.trace);
            };
            if n * 4 * h * (input + h) >= PARALLEL_MIN_MACS {
                rayon::join(|| run(f, false), || run(r, true));
            } else {
                run(f, false);
                run(r, true);
            }
            if l + 1 < cfg.num_layers {
                let (below, above) = ws.layers.split_at_mut(l + 1);
                let [f, r] = &below[l];
                let [nf, nr] = &mut above[0];
                nf.x.clear();
                for i in 0..n {
                    nf.x.extend_from_slice(&f.trace.h[i * h..(i + 1) * h]);
                    let j = pack.rev[i];
                    nf.x.extend_from_slice(&r.trace.h[j * h..(j + 1) * h]);
                }
                reorder(&nf.x, 2 * h, &pack.rev, &mut nr.x);
            }
        }
        // The top layer's final states, in batch order (zero for an empty row).
        let [f, r] = &ws.layers[cfg.num_layers - 1];
        ws.states.clear();
        ws.states.resize(pack.rows() * 2 * h, 0.0);
        for b in 0..pack.rows() {
            if let Some(i) = pack.last(b) {
                let row = &mut ws.states[pack.perm[b] * 2 * h..(pack.perm[b] + 1) * 2 * h];
                row[..h].copy_from_slice(&f.trace.h[i * h..(i + 1) * h]);
                row[h..].copy_from_slice(&r.trace.h[i * h..(i + 1) * h]);
            }
        }
        let hi = direction_index(cfg.num_layers, false);
        let c = cfg.num_outputs;
        if cfg.pair {
            let fc0 = Linear {
                w: &dense[hi],
                b: &dense[hi + 1],
                inp: 8 * h,
                out: 2 * h,
            };
            let fc2 = Linear {
                w: &dense[hi + 2],
                b: &dense[hi + 3],
                inp: 2 * h,
                out: c,
            };
            head::pair_forward(
                &ws.states,
                ws.examples,
                &fc0,
                &fc2,
                &mut ws.head,
                &mut ws.logits,
            );
        } else {
            let fc = Linear {
                w: &dense[hi],
                b: &dense[hi + 1],
                inp: 2 * h,
                out: c,
            };
            head::single_forward(&ws.states, ws.examples, &fc, &mut ws.head, &mut ws.logits);
        }
    }

    /// Back-propagates `d_logits` through the batch of the last [`Self::forward`].
    fn backward(&mut self, cfg: &StudentConfig, p: &[Vec<f32>], grads: &mut Gradients) {
        let (e, h, c) = (cfg.embedding_dim, cfg.hidden_size, cfg.num_outputs);
        let ws = self;
        let pack = &ws.pack;
        let n = pack.tokens();
        let rows = pack.rows();
        let hi = direction_index(cfg.num_layers, false);
        grads.dense.resize_with(p.len(), Vec::new);
        if cfg.pair {
            let examples = rows / 2;
            let fc0 = Linear {
                w: &p[hi],
                b: &p[hi + 1],
                inp: 8 * h,
                out: 2 * h,
            };
            let fc2 = Linear {
                w: &p[hi + 2],
                b: &p[hi + 3],
                inp: 2 * h,
                out: c,
            };
            let [g0, g2] = &mut ws.head_grads;
            head::pair_backward(
                &ws.states,
                examples,
                &fc0,
                &fc2,
                &ws.d_logits,
                &mut ws.head,
                g0,
                g2,
                &mut ws.d_states,
            );
            for (k, v) in [&g0.w, &g0.b, &g2.w, &g2.b].into_iter().enumerate() {
                copy_into(&mut grads.dense[hi + k], v);
            }
        } else {
            let fc = Linear {
                w: &p[hi],
                b: &p[hi + 1],
                inp: 2 * h,
                out: c,
            };
            let g = &mut ws.head_grads[0];
            head::single_backward(rows, &fc, &ws.d_logits, &mut ws.head, g, &mut ws.d_states);
            copy_into(&mut grads.dense[hi], &g.w);
            copy_into(&mut grads.dense[hi + 1], &g.b);
        }

        for l in (0..cfg.num_layers).rev() {
            let input = if l == 0 { e } else { 2 * h };
            let top = l + 1 == cfg.num_layers;
            let [f, r] = &mut ws.layers[l];
            for (d, half) in [(&mut *f, 0), (&mut *r, 1)] {
                d.d_final.clear();
                d.d_final.resize(rows * h, 0.0);
                if top {
                    for b in 0..rows {
                        let src = pack.perm[b] * 2 * h + half * h;
                        d.d_final[b * h..(b + 1) * h].copy_from_slice(&ws.d_states[src..src + h]);
                    }
                }
                d.dx.resize(n * input, 0.0);
            }
            let run = |d: &mut Direction, reverse: bool| {
                let k = direction_index(l, reverse);
                let w = Weights {
                    w_ih: &p[k],
                    w_hh: &p[k + 1],
                    w_ih_t: &d.w_ih_t,
                    w_hh_t: &d.w_hh_t,
                    bias: &d.bias,
                };
                let d_out = (!top).then_some(&d.d_out[..]);
                lstm::backward(
                    pack,
                    h,
                    input,
                    &d.x,
                    &w,
                    &d.trace,
                    &d.d_final,
                    d_out,
                    &mut d.scratch,
                    &mut d.grads,
                    Some(&mut d.dx),
                );
            };
            if n * 4 * h * (input + h) >= PARALLEL_MIN_MACS {
                rayon::join(|| run(f, false), || run(r, true));
            } else {
                run(f, false);
                run(r, true);
            }
            for (d, reverse) in [(&*f, false), (&*r, true)] {
                let k = direction_index(l, reverse);
                copy_into(&mut grads.dense[k], &d.grads.w_ih);
                copy_into(&mut grads.dense[k + 1], &d.grads.w_hh);
                copy_into(&mut grads.dense[k + 2], &d.grads.bias);
                copy_into(&mut grads.dense[k + 3], &d.grads.bias);
            }
            if l > 0 {
                // Split each input gradient into the two directions' outputs below.
                let (below, here) = ws.layers.split_at_mut(l);
                let [f, r] = &here[0];
                let [bf, br] = &mut below[l - 1];
                bf.d_out.resize(n * h, 0.0);
                br.d_out.resize(n * h, 0.0);
                for i in 0..n {
                    let j = pack.rev[i];
                    let (dfi, drj) = (
                        &f.dx[i * 2 * h..(i + 1) * 2 * h],
                        &r.dx[j * 2 * h..(j + 1) * 2 * h],
                    );
                    for k in 0..h {
                        bf.d_out[i * h + k] = dfi[k] + drj[k];
                        br.d_out[j * h + k] = drj[h + k] + dfi[h + k];
                    }
                }
            }
        }

        // Embedding rows: both directions' input gradients of each token, summed per id.
        let [f, r] = &ws.layers[0];
        grads.rows.clone_from(&ws.touched);
        grads.row_grads.clear();
        grads.row_grads.resize(ws.touched.len() * e, 0.0);
        for (i, &s) in ws.token_slot.iter().enumerate() {
            let s = s as usize;
            let j = pack.rev[i];
            let g = &mut grads.row_grads[s * e..(s + 1) * e];
            let (a, b) = (&f.dx[i * e..(i + 1) * e], &r.dx[j * e..(j + 1) * e]);
            for k in 0..e {
                g[k] += a[k] + b[k];
            }
        }
    }
}

/// `out[j] = x[rev[j]]`, rows of `width`.
fn reorder(x: &[f32], width: usize, rev: &[usize], out: &mut Vec<f32>) {
    out.clear();
    for &i in rev {
        out.extend_from_slice(&x[i * width..(i + 1) * width]);
    }
}

fn copy_into(dst: &mut Vec<f32>, src: &[f32]) {
    dst.clear();
    dst.extend_from_slice(src);
}
