//! A multi-layer bidirectional LSTM over right-padded batches with known lengths.
//!
//! Input `(batch, time, features)`, output `(batch, time, 2H)` (forward ‖ backward states at
//! each position, zero on padding) plus `h_n`, `c_n` `(2·layers, batch, H)` in PyTorch's order
//! (layer 0 forward, layer 0 backward, layer 1 forward, …). Parameters carry PyTorch's
//! state-dict names (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, `…_reverse`)
//! and gate order (i, f, g, o), so a `nn.LSTM(bidirectional=True, batch_first=True)` checkpoint
//! loads as is.

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::{Result, Tensor, D};

use crate::kernel::LstmSeqOp;
use crate::reference;

/// Which implementation of the recurrence to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recurrence {
    /// The fused kernel on CPU, the reference elsewhere.
    Auto,
    /// Always the plain candle-op reference.
    Reference,
}

/// The weights of one direction of one layer.
#[derive(Clone, Debug)]
pub struct LstmDirection {
    pub weight_ih: Tensor,
    pub weight_hh: Tensor,
    pub bias_ih: Tensor,
    pub bias_hh: Tensor,
}

impl LstmDirection {
    /// Runs this direction: `x` `(B, T, in)` → `(B, T + 2, H)` (outputs, final h, final c).
    fn forward(
        &self,
        x: &Tensor,
        lengths: &Arc<[usize]>,
        reverse: bool,
        rec: Recurrence,
    ) -> Result<Tensor> {
        let (b, t, input) = x.dims3()?;
        // One (B·T, in)·(in, 4H) product for every step at once; only W_hh·h is sequential.
        let bias = (&self.bias_ih + &self.bias_hh)?;
        let xg = x
            .reshape((b * t, input))?
            .matmul(&self.weight_ih.t()?)?
            .broadcast_add(&bias)?
            .reshape((b, t, ()))?;
        let use_kernel = rec == Recurrence::Auto && x.device().is_cpu();
        if use_kernel {
            LstmSeqOp::new(lengths.clone(), reverse).apply(&xg, &self.weight_hh)
        } else {
            reference::lstm_direction(&xg, &self.weight_hh, lengths, reverse)
        }
    }
}

/// What a [`BiLstm`] returns.
pub struct BiLstmOutput {
    /// `(B, T, 2H)`.
    pub outputs: Tensor,
    /// `(2·layers, B, H)`.
    pub h_n: Tensor,
    /// `(2·layers, B, H)`.
    pub c_n: Tensor,
}

/// A stack of bidirectional LSTM layers.
#[derive(Clone, Debug)]
pub struct BiLstm {
    layers: Vec<[LstmDirection; 2]>,
    hidden: usize,
    recurrence: Recurrence,
}

impl BiLstm {
    /// Builds from tensors named `{prefix}weight_ih_l{k}[_reverse]` etc.
    pub fn from_tensors(
        ts: &HashMap<String, Tensor>,
        prefix: &str,
        num_layers: usize,
    ) -> Result<Self> {
        let get = |name: String| {
            ts.get(&name)
                .cloned()
                .ok_or_else(|| candle_core::Error::Msg(format!("missing tensor `{name}`")))
        };
        // Not `with_capacity(num_layers)`: the count may come from a file.
        let mut layers = Vec::new();
        for l in 0..num_layers {
            let dir = |sfx: &str| -> Result<LstmDirection> {
                Ok(LstmDirection {
                    weight_ih: get(format!("{prefix}weight_ih_l{l}{sfx}"))?,
                    weight_hh: get(format!("{prefix}weight_hh_l{l}{sfx}"))?,
                    bias_ih: get(format!("{prefix}bias_ih_l{l}{sfx}"))?,
                    bias_hh: get(format!("{prefix}bias_hh_l{l}{sfx}"))?,
                })
            };
            layers.push([dir("")?, dir("_reverse")?]);
        }
        let hidden = layers
            .first()
            .map(|l| l[0].weight_hh.dim(1))
            .transpose()?
            .ok_or_else(|| candle_core::Error::Msg("BiLstm needs at least one layer".into()))?;
        Ok(Self {
            layers,
            hidden,
            recurrence: Recurrence::Auto,
        })
    }

    /// Chooses the recurrence implementation (the reference exists for tests and GPUs).
    pub fn with_recurrence(mut self, recurrence: Recurrence) -> Self {
        self.recurrence = recurrence;
        self
    }

    /// Hidden size per direction.
    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// The layers, each `[forward, backward]`.
    pub fn layers(&self) -> &[[LstmDirection; 2]] {
        &self.layers
    }

    /// Runs the stack over `x` `(B, T, in)` whose row `b` has `lengths[b]` real steps.
    pub fn forward(&self, x: &Tensor, lengths: &[usize]) -> Result<BiLstmOutput> {
        let (outputs, finals) = self.run(x, lengths, true)?;
        let t = x.dim(1)?;
        let state = |row: usize| -> Result<Tensor> {
            let rows = finals
                .iter()
                .map(|d| d.narrow(1, t + row, 1)?.squeeze(1))
                .collect::<Result<Vec<_>>>()?;
            Tensor::stack(&rows, 0)
        };
        Ok(BiLstmOutput {
            outputs,
            h_n: state(0)?,
            c_n: state(1)?,
        })
    }

    /// The classifier's sentence vector: the top layer's final forward and backward states,
    /// concatenated `(B, 2H)`, without assembling the top layer's output sequence.
    pub fn final_states(&self, x: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let t = x.dim(1)?;
        let (_, finals) = self.run(x, lengths, false)?;
        let n = finals.len();
        let h = |d: &Tensor| d.narrow(1, t, 1)?.squeeze(1);
        Tensor::cat(&[h(&finals[n - 2])?, h(&finals[n - 1])?], D::Minus1)
    }

    /// Returns the top layer's output sequence (if `sequence`, else `x`) and each direction's
    /// raw kernel output `(B, T + 2, H)` in PyTorch's `h_n` order.
    fn run(&self, x: &Tensor, lengths: &[usize], sequence: bool) -> Result<(Tensor, Vec<Tensor>)> {
        let t = x.dim(1)?;
        let lengths: Arc<[usize]> = lengths.iter().map(|&l| l.min(t)).collect();
        let mut input = x.clone();
        let mut finals = Vec::with_capacity(2 * self.layers.len());
        for (k, layer) in self.layers.iter().enumerate() {
            let fwd = layer[0].forward(&input, &lengths, false, self.recurrence)?;
            let bwd = layer[1].forward(&input, &lengths, true, self.recurrence)?;
            if sequence || k + 1 < self.layers.len() {
                input = Tensor::cat(&[fwd.narrow(1, 0, t)?, bwd.narrow(1, 0, t)?], D::Minus1)?;
            }
            finals.push(fwd);
            finals.push(bwd);
        }
        Ok((input, finals))
    }
}
