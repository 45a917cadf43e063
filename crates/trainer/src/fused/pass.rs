//! The forward and backward pass over a prepared batch (see `student`), in buffers kept
//! from step to step.
//!
//! Per layer both directions run on the packed batch (`lstm`), the second on the step's
//! [`Partner`] thread when there is one and the batch is large enough. The first layer
//! reads the batch's distinct embedding rows (`lstm::Input::Distinct`); the next layer
//! reads `[h_fwd ; h_bwd]` of each token,
//! gathered through `Pack::rev`. The head reads the top layer's final states in batch
//! order; the backward pass returns each layer's input gradient split the same way, and the
//! embedding's as one summed row per distinct token.

use distill_student::StudentConfig;

use super::head::{self, HeadCache, Linear, LinearGrads};
use super::loss::loss_and_grad;
use super::lstm::{self, Input, Scratch, Trace, Weights};
use super::pack::Pack;
use super::params::direction_index;
use super::partner::Partner;
use super::student::{reorder, Gradients, StepBatch};
use crate::{Loss, Result};
use distill_ops::gemm::{transpose, Panels};

/// Below this many multiply-adds per direction and layer, the second thread costs more than
/// it saves.
const PARALLEL_MIN_MACS: usize = 150_000;

/// One direction's buffers, kept between steps.
#[derive(Default)]
pub(super) struct Direction {
    /// Input in this direction's packed order `(N, in)` (layers above the first).
    pub(super) x: Vec<f32>,
    w_ih_t: Vec<f32>,
    /// `W_hhᵀ` before packing.
    w_hh_t_plain: Vec<f32>,
    w_hh_t: Panels,
    w_hh: Panels,
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

impl Direction {
    /// The forms of this direction's weights the products read (PyTorch's `w_ih`, `w_hh`,
    /// `b_ih`, `b_hh` in `p`), from this step's parameters; the backward reuses them.
    fn prepare_weights(&mut self, h: usize, input: usize, p: &[Vec<f32>]) {
        self.w_ih_t.resize(input * 4 * h, 0.0);
        transpose(4 * h, input, &p[0], input, &mut self.w_ih_t);
        self.w_hh_t_plain.resize(h * 4 * h, 0.0);
        transpose(4 * h, h, &p[1], h, &mut self.w_hh_t_plain);
        self.w_hh_t.pack(h, 4 * h, &self.w_hh_t_plain, 4 * h);
        self.w_hh.pack(4 * h, h, &p[1], h);
        self.bias.clear();
        self.bias.extend(p[2].iter().zip(&p[3]).map(|(a, b)| a + b));
    }
}

/// Buffers of a step, kept so that steps allocate nothing once warm.
#[derive(Default)]
pub(super) struct Workspace {
    pub(super) pack: Pack,
    /// Token id of each forward packed row.
    pub(super) tokens: Vec<u32>,
    pub(super) layers: Vec<[Direction; 2]>,
    /// Top layer's final states `(rows, 2H)`, batch order.
    states: Vec<f32>,
    pub(super) logits: Vec<f32>,
    d_logits: Vec<f32>,
    d_states: Vec<f32>,
    pub(super) head: HeadCache,
    head_grads: [LinearGrads; 2],
    /// Per vocabulary row, its index in `touched` while a batch is prepared (`u32::MAX`:
    /// none; reset after).
    pub(super) slot: Vec<u32>,
    /// Distinct token ids of the batch, in order of first appearance.
    pub(super) touched: Vec<u32>,
    /// For each packed row of the forward and of the backward direction, the index of its
    /// token in `touched`.
    pub(super) token_slot: [Vec<u32>; 2],
    /// The embedding rows of `touched` `(touched, E)`: the first layer's input.
    pub(super) table: Vec<f32>,
    /// Examples in the batch.
    pub(super) examples: usize,
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
        mut partner: Option<&mut Partner>,
    ) -> Result<f64> {
        self.forward(cfg, dense, partner.as_deref_mut());
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
        self.backward(cfg, dense, grads, partner);
        Ok(value)
    }

    /// Logits of the prepared batch into `self.logits`.
    pub(super) fn forward(
        &mut self,
        cfg: &StudentConfig,
        dense: &[Vec<f32>],
        mut partner: Option<&mut Partner>,
    ) {
        let (e, h) = (cfg.embedding_dim, cfg.hidden_size);
        let ws = self;
        let pack = &ws.pack;
        let (table, slots) = (&ws.table, &ws.token_slot);
        let n = pack.tokens();
        for l in 0..cfg.num_layers {
            let input = if l == 0 { e } else { 2 * h };
            let [f, r] = &mut ws.layers[l];
            let run = |d: &mut Direction, reverse: bool| {
                let k = direction_index(l, reverse);
                d.prepare_weights(h, input, &dense[k..k + 4]);
                let w = Weights {
                    w_ih: &dense[k],
                    w_ih_t: &d.w_ih_t,
                    w_hh_t: &d.w_hh_t,
                    w_hh: &d.w_hh,
                    bias: &d.bias,
                };
                let x = layer_input(l, reverse, &d.x, table, slots);
                lstm::forward(pack, h, input, x, &w, &mut d.trace);
            };
            let macs = n * 4 * h * (input + h);
            each_direction(partner.as_deref_mut(), macs, [&mut *f, &mut *r], run);
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
    fn backward(
        &mut self,
        cfg: &StudentConfig,
        p: &[Vec<f32>],
        grads: &mut Gradients,
        mut partner: Option<&mut Partner>,
    ) {
        let (e, h, c) = (cfg.embedding_dim, cfg.hidden_size, cfg.num_outputs);
        let ws = self;
        let pack = &ws.pack;
        let (table, slots) = (&ws.table, &ws.token_slot);
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
                // The first layer's input gradient has a row per distinct token.
                let dx_rows = if l == 0 { ws.touched.len() } else { n };
                d.dx.resize(dx_rows * input, 0.0);
            }
            let run = |d: &mut Direction, reverse: bool| {
                let k = direction_index(l, reverse);
                let w = Weights {
                    w_ih: &p[k],
                    w_ih_t: &d.w_ih_t,
                    w_hh_t: &d.w_hh_t,
                    w_hh: &d.w_hh,
                    bias: &d.bias,
                };
                let d_out = (!top).then_some(&d.d_out[..]);
                lstm::backward(
                    pack,
                    h,
                    input,
                    layer_input(l, reverse, &d.x, table, slots),
                    &w,
                    &d.trace,
                    &d.d_final,
                    d_out,
                    &mut d.scratch,
                    &mut d.grads,
                    Some(&mut d.dx),
                );
            };
            let macs = n * 4 * h * (input + h);
            each_direction(partner.as_deref_mut(), macs, [&mut *f, &mut *r], run);
            for (d, reverse) in [(&mut *f, false), (&mut *r, true)] {
                let k = direction_index(l, reverse);
                // Swapped, not copied: the next backward overwrites every element.
                std::mem::swap(&mut grads.dense[k], &mut d.grads.w_ih);
                std::mem::swap(&mut grads.dense[k + 1], &mut d.grads.w_hh);
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

        // Embedding rows: the two directions' input gradients, each already one row per
        // distinct token.
        let [f, r] = &ws.layers[0];
        let d = ws.touched.len() * e;
        grads.rows.clone_from(&ws.touched);
        grads.row_grads.clear();
        grads
            .row_grads
            .extend(f.dx[..d].iter().zip(&r.dx[..d]).map(|(a, b)| a + b));
    }
}

/// Layer `l`'s input in one direction's packed order: the batch's distinct embedding rows
/// for the first layer, the layer below's outputs (`x`) above it.
fn layer_input<'a>(
    l: usize,
    reverse: bool,
    x: &'a [f32],
    table: &'a [f32],
    slots: &'a [Vec<u32>; 2],
) -> Input<'a> {
    if l == 0 {
        Input::Distinct {
            table,
            slot: &slots[usize::from(reverse)],
        }
    } else {
        Input::Rows(x)
    }
}

/// `run` over a layer's forward and reverse direction (`macs` multiply-adds each): the
/// reverse one on the partner, if there is one and the layer is worth a fork.
fn each_direction(
    partner: Option<&mut Partner>,
    macs: usize,
    [f, r]: [&mut Direction; 2],
    run: impl Fn(&mut Direction, bool) + Sync,
) {
    match partner {
        Some(partner) if macs >= PARALLEL_MIN_MACS => {
            partner.join(|| run(f, false), || run(r, true));
        }
        _ => {
            run(f, false);
            run(r, true);
        }
    }
}

fn copy_into(dst: &mut Vec<f32>, src: &[f32]) {
    dst.clear();
    dst.extend_from_slice(src);
}
