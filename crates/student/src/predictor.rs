//! Serving without candle: a student as lookup tables and a fused recurrence on slices.
//!
//! The first layer's input projection `W_ih·e_w + b` depends only on the word, so it is
//! precomputed for every vocabulary entry (`[V, 4H]` per direction): reading a sentence is a
//! table lookup per token plus the `W_hh·h` recurrence of [`crate::cell`]. No tensors, no
//! allocation beyond a few small buffers, so one sentence costs microseconds. A pair model
//! reads each text of a pair the same way and applies its head to both sentence vectors.

use candle_core::Tensor;
use distill_data::{Dataset, LabelSet, Metrics, TextEncoder};
use rayon::prelude::*;
use serde::Serialize;

use crate::cell::{forward_seq, Recurrent};
use crate::{Error, Result, StudentModel};

/// One direction of one layer, as plain vectors.
struct Direction {
    /// `[4H, in]`, absent for layer 0 (its projections are tabulated).
    weight_ih: Vec<f32>,
    bias: Vec<f32>,
    rec: Recurrent,
    /// Layer 0 only: `[V, 4H]` projections of every word.
    table: Vec<f32>,
}

/// A prediction for one sentence or pair.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Prediction {
    /// Id of the most probable label (the lowest id on a tie).
    pub label: u32,
    /// Name of `label`.
    pub label_name: String,
    /// Probability of `label`.
    pub probability: f32,
    /// Probability of every label, in id order ([`probabilities`]).
    pub probabilities: Vec<f32>,
    pub logits: Vec<f32>,
}

/// A linear layer as plain vectors: `weight` `[out, in]`, `bias` `[out]`.
struct Dense {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Dense {
    fn new(tensors: &std::collections::HashMap<String, Tensor>, prefix: &str) -> Result<Self> {
        Ok(Self {
            weight: vec_of(&tensors[&format!("{prefix}weight")])?,
            bias: vec_of(&tensors[&format!("{prefix}bias")])?,
        })
    }

    fn forward(&self, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; self.bias.len()];
        project(&self.weight, &self.bias, x, &mut out);
        out
    }
}

/// The classifier on the sentence vectors (see [`crate::BiLstmClassifier`]).
enum Head {
    Single(Dense),
    Pair(Dense, Dense),
}

/// A student ready to serve: text (or a pair of texts) in, label and probabilities out.
pub struct Predictor {
    encoder: TextEncoder,
    max_len: usize,
    hidden: usize,
    layers: Vec<[Direction; 2]>,
    head: Head,
    labels: LabelSet,
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
        let head = if cfg.pair {
            Head::Pair(
                Dense::new(&tensors, "fc.0.")?,
                Dense::new(&tensors, "fc.2.")?,
            )
        } else {
            Head::Single(Dense::new(&tensors, "fc.")?)
        };
        Ok(Self {
            encoder: model.encoder.clone(),
            max_len: cfg.max_len,
            hidden: h,
            layers,
            head,
            labels: cfg.label_set(),
        })
    }

    /// The label names, ids in order.
    pub fn labels(&self) -> &LabelSet {
        &self.labels
    }

    /// Whether this is a pair model ([`Self::predict_pair`]).
    pub fn is_pair(&self) -> bool {
        matches!(self.head, Head::Pair(..))
    }

    /// Token ids of `text` (tokenised as in training, truncated to `max_len`).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = self.encoder.encode(text);
        ids.truncate(self.max_len);
        ids
    }

    /// Raw logits for token ids. An empty sequence reads as the initial (zero) states. A pair
    /// model reads `ids` as a pair whose second text is empty.
    pub fn logits(&self, ids: &[u32]) -> Vec<f32> {
        match &self.head {
            Head::Single(fc) => fc.forward(&self.sentence_vector(ids)),
            Head::Pair(..) => self.pair_head(ids, &[]),
        }
    }

    /// Raw logits of a pair model for the token ids of its two texts.
    pub fn logits_pair(&self, a: &[u32], b: &[u32]) -> Result<Vec<f32>> {
        if !self.is_pair() {
            return Err(not_pair());
        }
        Ok(self.pair_head(a, b))
    }

    /// `fc.2(ReLU(fc.0([h1; h2; h1⊙h2; |h1−h2|])))`; a pair model only.
    fn pair_head(&self, a: &[u32], b: &[u32]) -> Vec<f32> {
        let Head::Pair(fc0, fc2) = &self.head else {
            unreachable!("pair_head on a single-text model")
        };
        let (h1, h2) = (self.sentence_vector(a), self.sentence_vector(b));
        let mut features = Vec::with_capacity(4 * h1.len());
        features.extend_from_slice(&h1);
        features.extend_from_slice(&h2);
        features.extend(h1.iter().zip(&h2).map(|(x, y)| x * y));
        features.extend(h1.iter().zip(&h2).map(|(x, y)| (x - y).abs()));
        let hidden: Vec<f32> = fc0.forward(&features).iter().map(|v| v.max(0.0)).collect();
        fc2.forward(&hidden)
    }

    /// The top layer's final forward ‖ backward states `[2H]` for token ids.
    fn sentence_vector(&self, ids: &[u32]) -> Vec<f32> {
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
        features
    }

    /// Logits for many sequences, in parallel, in input order.
    pub fn logits_batch(&self, seqs: &[Vec<u32>]) -> Vec<Vec<f32>> {
        seqs.par_iter()
            .with_min_len(64)
            .map(|s| self.logits(s))
            .collect()
    }

    /// Logits for many pairs (`a[i]` with `b[i]`), in parallel, in input order.
    pub fn logits_pair_batch(&self, a: &[Vec<u32>], b: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        if !self.is_pair() {
            return Err(not_pair());
        }
        if a.len() != b.len() {
            return Err(Error::Config(format!(
                "{} first texts but {} second texts",
                a.len(),
                b.len()
            )));
        }
        Ok(a.par_iter()
            .zip(b)
            .with_min_len(64)
            .map(|(a, b)| self.pair_head(a, b))
            .collect())
    }

    /// Label and probabilities of one sentence.
    pub fn predict(&self, text: &str) -> Prediction {
        self.prediction(self.logits(&self.encode(text)))
    }

    /// Label and probabilities of a pair of texts (a pair model only).
    pub fn predict_pair(&self, a: &str, b: &str) -> Result<Prediction> {
        let logits = self.logits_pair(&self.encode(a), &self.encode(b))?;
        Ok(self.prediction(logits))
    }

    /// Turns this model's logits into a [`Prediction`] with its label names.
    pub fn prediction(&self, logits: Vec<f32>) -> Prediction {
        prediction(logits, &self.labels)
    }

    /// Scores this student on labelled `data` (single texts or pairs, as the model reads):
    /// the [`Metrics`] and the class probabilities `[N][C]` of every row in input order.
    pub fn evaluate(&self, data: &Dataset) -> Result<(Metrics, Vec<Vec<f32>>)> {
        let gold = data
            .labels()
            .ok_or_else(|| Error::Config("evaluation needs a label on every row".into()))?;
        if data.is_pairs() != self.is_pair() {
            let kind = |pairs: bool| {
                if pairs {
                    "sentence pairs"
                } else {
                    "single texts"
                }
            };
            return Err(Error::Config(format!(
                "the model reads {} but the data has {}",
                kind(self.is_pair()),
                kind(data.is_pairs())
            )));
        }
        let encode =
            |texts: Vec<&str>| -> Vec<Vec<u32>> { texts.iter().map(|t| self.encode(t)).collect() };
        let ids = encode(data.texts());
        let logits = match data.text_pairs().filter(|_| self.is_pair()) {
            Some(b) => self.logits_pair_batch(&ids, &encode(b))?,
            None => self.logits_batch(&ids),
        };
        let probs: Vec<Vec<f32>> = logits
            .into_iter()
            .map(|l| self.prediction(l).probabilities)
            .collect();
        let classes = probs.first().map_or(self.labels.len(), Vec::len);
        if let Some(bad) = gold.iter().find(|&&g| g as usize >= classes) {
            return Err(Error::Config(format!(
                "label id {bad} is out of range for a model with {classes} classes"
            )));
        }
        Ok((Metrics::compute(&probs.concat(), classes, &gold), probs))
    }
}

fn not_pair() -> Error {
    Error::Config("this student reads single texts, not pairs".into())
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

/// Probability of each label from logits: softmax over `C ≥ 2` logits; for one (BCE) logit
/// `z`, `[1 − σ(z), σ(z)]`.
pub fn probabilities(logits: &[f32]) -> Vec<f32> {
    if let [z] = logits {
        let p = distill_ops::math::sigmoid(*z);
        return vec![1.0 - p, p];
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|z| (z - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Turns logits into a [`Prediction`]: the most probable label (the lowest id on a tie) and
/// its name in `labels` (`"?"` if `labels` has none for it).
pub fn prediction(logits: Vec<f32>, labels: &LabelSet) -> Prediction {
    let probabilities = probabilities(&logits);
    let first = probabilities.first().copied().unwrap_or(f32::NAN);
    let (label, probability) =
        probabilities
            .iter()
            .copied()
            .enumerate()
            .skip(1)
            .fold(
                (0, first),
                |best, (i, p)| {
                    if p > best.1 {
                        (i, p)
                    } else {
                        best
                    }
                },
            );
    let label = label as u32;
    Prediction {
        label,
        label_name: labels.name(label).unwrap_or("?").to_string(),
        probability,
        probabilities,
        logits,
    }
}
