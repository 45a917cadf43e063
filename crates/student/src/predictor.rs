//! Serving without candle: a student as lookup tables and a fused recurrence on slices.
//!
//! The first layer's input projection `W_ih·e_w + b` depends only on the word, so it is
//! precomputed for every vocabulary entry (`[V, 4H]` per direction): reading a sentence is a
//! table lookup per token plus the `W_hh·h` recurrence of [`crate::cell`]. No tensors, no
//! allocation beyond a few small buffers, so one sentence costs microseconds.

use candle_core::Tensor;
use distill_data::TextEncoder;
use rayon::prelude::*;
use serde::Serialize;

use crate::cell::{forward_seq, Recurrent};
use crate::{Result, StudentModel};

/// One direction of one layer, as plain vectors.
struct Direction {
    /// `[4H, in]`, absent for layer 0 (its projections are tabulated).
    weight_ih: Vec<f32>,
    bias: Vec<f32>,
    rec: Recurrent,
    /// Layer 0 only: `[V, 4H]` projections of every word.
    table: Vec<f32>,
}

/// A prediction for one sentence.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Prediction {
    pub label: u32,
    /// Probability of `label`.
    pub probability: f32,
    /// Probability of label 1.
    pub p_positive: f32,
    pub logits: Vec<f32>,
}

/// A student ready to serve: text in, label and probability out.
pub struct Predictor {
    encoder: TextEncoder,
    max_len: usize,
    hidden: usize,
    layers: Vec<[Direction; 2]>,
    fc_weight: Vec<f32>,
    fc_bias: Vec<f32>,
}

fn vec_of(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

impl Predictor {
    /// Copies the model's weights out of candle and tabulates the first layer.
    pub fn new(model: &StudentModel) -> Result<Self> {
        let cfg = &model.config;
        let (h, e) = (cfg.hidden_size, cfg.embedding_dim);
        let tensors = model.classifier.tensors();
        let embedding = vec_of(&tensors["embedding.weight"])?;
        let mut layers = Vec::new();
        for (l, layer) in model.classifier.rnn().layers().iter().enumerate() {
            let mk = |d: &crate::bilstm::LstmDirection| -> Result<Direction> {
                let weight_ih = vec_of(&d.weight_ih)?;
                let bias: Vec<f32> = vec_of(&d.bias_ih)?
                    .iter()
                    .zip(vec_of(&d.bias_hh)?)
                    .map(|(a, b)| a + b)
                    .collect();
                let table = if l == 0 {
                    let mut table = vec![0.0; cfg.vocab_size * 4 * h];
                    for (w, row) in table.chunks_mut(4 * h).enumerate() {
                        project(&weight_ih, &bias, &embedding[w * e..(w + 1) * e], row);
                    }
                    table
                } else {
                    Vec::new()
                };
                Ok(Direction {
                    weight_ih,
                    bias,
                    rec: Recurrent::new(vec_of(&d.weight_hh)?, h),
                    table,
                })
            };
            layers.push([mk(&layer[0])?, mk(&layer[1])?]);
        }
        Ok(Self {
            encoder: model.encoder.clone(),
            max_len: cfg.max_len,
            hidden: h,
            layers,
            fc_weight: vec_of(&tensors["fc.weight"])?,
            fc_bias: vec_of(&tensors["fc.bias"])?,
        })
    }

    /// Token ids of `text` (tokenised as in training, truncated to `max_len`).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = self.encoder.encode(text);
        ids.truncate(self.max_len);
        ids
    }

    /// Raw logits for token ids. An empty sequence reads as the initial (zero) states.
    pub fn logits(&self, ids: &[u32]) -> Vec<f32> {
        let h = self.hidden;
        let len = ids.len().min(self.max_len);
        let mut input: Vec<f32> = Vec::new();
        let mut features = vec![0.0f32; 2 * h];
        let mut xg = vec![0.0f32; len * 4 * h];
        for (l, layer) in self.layers.iter().enumerate() {
            let top = l + 1 == self.layers.len();
            let mut outputs = if top {
                Vec::new()
            } else {
                vec![0.0f32; len * 2 * h]
            };
            for (d, dir) in layer.iter().enumerate() {
                if l == 0 {
                    for (row, &id) in xg.chunks_mut(4 * h).zip(ids) {
                        let id = (id as usize).min(self.encoder.vocab.len() - 1);
                        row.copy_from_slice(&dir.table[id * 4 * h..(id + 1) * 4 * h]);
                    }
                } else {
                    for (row, x) in xg.chunks_mut(4 * h).zip(input.chunks(2 * h)) {
                        project(&dir.weight_ih, &dir.bias, x, row);
                    }
                }
                let (mut hs, mut cs) = (vec![0.0f32; h], vec![0.0f32; h]);
                let mut seq = vec![0.0f32; if top { 0 } else { len * h }];
                let out = if top { None } else { Some(&mut seq[..]) };
                forward_seq(&dir.rec, &xg, len, d == 1, &mut hs, &mut cs, out, None);
                if top {
                    features[d * h..(d + 1) * h].copy_from_slice(&hs);
                } else {
                    for (o, s) in outputs.chunks_mut(2 * h).zip(seq.chunks(h)) {
                        o[d * h..(d + 1) * h].copy_from_slice(s);
                    }
                }
            }
            input = outputs;
        }
        let mut logits = self.fc_bias.clone();
        for (c, logit) in logits.iter_mut().enumerate() {
            let w = &self.fc_weight[c * 2 * h..(c + 1) * 2 * h];
            *logit += w.iter().zip(&features).map(|(a, b)| a * b).sum::<f32>();
        }
        logits
    }

    /// Logits for many sequences, in parallel, in input order.
    pub fn logits_batch(&self, seqs: &[Vec<u32>]) -> Vec<Vec<f32>> {
        seqs.par_iter()
            .with_min_len(64)
            .map(|s| self.logits(s))
            .collect()
    }

    /// Label and probability of one sentence.
    pub fn predict(&self, text: &str) -> Prediction {
        prediction(self.logits(&self.encode(text)))
    }
}

/// `out = W·x + b` with `W` `[out, in]`.
fn project(w: &[f32], b: &[f32], x: &[f32], out: &mut [f32]) {
    let n = x.len();
    for (j, o) in out.iter_mut().enumerate() {
        *o = b[j]
            + w[j * n..(j + 1) * n]
                .iter()
                .zip(x)
                .map(|(a, b)| a * b)
                .sum::<f32>();
    }
}

/// Probability of label 1 from logits: softmax over two, sigmoid of one.
pub fn p_positive(logits: &[f32]) -> f32 {
    match logits {
        [z] => crate::cell::sigmoid(*z),
        [a, b] => crate::cell::sigmoid(b - a),
        _ => f32::NAN,
    }
}

/// Turns logits into a [`Prediction`].
pub fn prediction(logits: Vec<f32>) -> Prediction {
    let p = p_positive(&logits);
    let label = u32::from(p > 0.5);
    let probability = if label == 1 { p } else { 1.0 - p };
    Prediction {
        label,
        probability,
        p_positive: p,
        logits,
    }
}
