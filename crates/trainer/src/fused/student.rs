//! The student over one batch, without tensors: parameters, the batch as the fused step
//! reads it, and the first part of a step.
//!
//! ```text
//! ids (rows, T) ─pack─▶ distinct embedding rows (D, E), a row index per token (prepare)
//!   └─ per layer: forward ‖ backward direction ─▶ h (N, H) each                (pass)
//!        next layer's input (N, 2H) = [h_fwd ; h_bwd] of the same token
//!   └─ top layer's final states (rows, 2H) ─▶ head ─▶ logits (B, C) ─▶ loss
//! and back: d logits → head → d final states → layers top-down → dx (D, E) → embedding rows
//! ```
//! `rows` is the batch size, or twice it for pairs (first texts, then second texts). The
//! gradient of the embedding comes as one summed row per distinct token id, for the lazy
//! row optimiser. [`FusedStudent::prepare`] is the only part that reads the embedding table
//! and the dropout generator, so the optimiser may bring the batch's rows up to date while
//! the rest of the step runs.

use rand::RngCore;

use distill_student::StudentConfig;

use super::head;
use super::params::Params;
use super::pass::Workspace;
use crate::{Error, Loss, Result};

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
            .gradients(&self.config, &self.params.dense, loss, batch, grads, None)
    }

    /// Logits `(B, C)` of `batch` (training mode when `dropout_rng` is given).
    pub fn logits(
        &mut self,
        batch: &StepBatch,
        dropout_rng: Option<&mut dyn RngCore>,
    ) -> Result<&[f32]> {
        self.prepare(batch, dropout_rng)?;
        self.ws.forward(&self.config, &self.params.dense, None);
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
        if batch.pair != cfg.pair || (batch.pair && !rows.is_multiple_of(2)) {
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
        ws.pack.fill(batch.lengths, batch.time);
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
        let [forward_slot, backward_slot] = &mut ws.token_slot;
        forward_slot.clear();
        for &t in &ws.tokens {
            let slot = &mut ws.slot[t as usize];
            if *slot == u32::MAX {
                *slot = ws.touched.len() as u32;
                ws.touched.push(t);
            }
            forward_slot.push(*slot);
        }
        for &t in &ws.touched {
            ws.slot[t as usize] = u32::MAX;
        }
        backward_slot.clear();
        backward_slot.extend(pack.rev.iter().map(|&i| forward_slot[i]));
        ws.layers.resize_with(cfg.num_layers, Default::default);
        // Layer 0 reads the distinct embedding rows.
        gather_rows(
            &self.params.embedding,
            e,
            ws.touched.iter().map(|&t| t as usize),
            &mut ws.table,
        );
        let width = if cfg.pair { 8 } else { 2 } * cfg.hidden_size;
        head::draw_dropout(&mut ws.head, examples, width, cfg.dropout, rng);
        Ok(())
    }

    /// Distinct token ids of the prepared batch: the embedding rows its gradient touches.
    pub(super) fn touched(&self) -> &[u32] {
        &self.ws.touched
    }
}

/// `out[j] = x[rev[j]]`, rows of `width`.
pub(super) fn reorder(x: &[f32], width: usize, rev: &[usize], out: &mut Vec<f32>) {
    gather_rows(x, width, rev.iter().copied(), out);
}

/// `out` = the rows `rows` of `x` (rows of `width`), in that order. The presets' widths are
/// copied as fixed-size arrays: a `memcpy` call per 64-byte row was 3% of a step.
fn gather_rows(
    x: &[f32],
    width: usize,
    rows: impl ExactSizeIterator<Item = usize>,
    out: &mut Vec<f32>,
) {
    fn fixed<const W: usize>(x: &[f32], rows: impl Iterator<Item = usize>, out: &mut [f32]) {
        for (dst, i) in out.chunks_exact_mut(W).zip(rows) {
            let src: &[f32; W] = x[i * W..(i + 1) * W].try_into().expect("W wide");
            let dst: &mut [f32; W] = dst.try_into().expect("W wide");
            *dst = *src;
        }
    }
    out.clear();
    out.resize(rows.len() * width, 0.0);
    match width {
        16 => fixed::<16>(x, rows, out),
        64 => fixed::<64>(x, rows, out),
        _ => {
            for (dst, i) in out.chunks_exact_mut(width.max(1)).zip(rows) {
                dst.copy_from_slice(&x[i * width..(i + 1) * width]);
            }
        }
    }
}
