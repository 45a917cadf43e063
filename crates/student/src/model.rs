//! The student: embedding → bidirectional LSTM → final states → dropout → linear.
//!
//! `forward(ids (B, T) u32, lengths) → logits (B, C)`. The sentence vector is the top layer's
//! final forward state (after the last real token) concatenated with its final backward state
//! (after reading back to the first token), `(B, 2H)`. Parameter names follow the PyTorch
//! module of the original tutorial: `embedding.weight`, `rnn.*`, `fc.weight`, `fc.bias`.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};

use crate::bilstm::{BiLstm, Recurrence};
use crate::{Error, Result, StudentConfig};

/// The BiLSTM sentence classifier.
#[derive(Clone, Debug)]
pub struct BiLstmClassifier {
    config: StudentConfig,
    embedding: Tensor,
    rnn: BiLstm,
    fc_weight: Tensor,
    fc_bias: Tensor,
}

impl BiLstmClassifier {
    /// Parameter names and shapes, in a fixed order (PyTorch state-dict names).
    pub fn parameter_shapes(config: &StudentConfig) -> Vec<(String, Vec<usize>)> {
        Self::parameter_shapes_iter(config).collect()
    }

    /// [`Self::parameter_shapes`], one at a time: a config read from a file may claim
    /// more layers than could ever be listed.
    fn parameter_shapes_iter(
        config: &StudentConfig,
    ) -> impl Iterator<Item = (String, Vec<usize>)> + '_ {
        let (e, h) = (config.embedding_dim, config.hidden_size);
        let embedding = ("embedding.weight".to_string(), vec![config.vocab_size, e]);
        let rnn = (0..config.num_layers).flat_map(move |l| {
            let input = if l == 0 { e } else { 2 * h };
            ["", "_reverse"].into_iter().flat_map(move |sfx| {
                [
                    (format!("rnn.weight_ih_l{l}{sfx}"), vec![4 * h, input]),
                    (format!("rnn.weight_hh_l{l}{sfx}"), vec![4 * h, h]),
                    (format!("rnn.bias_ih_l{l}{sfx}"), vec![4 * h]),
                    (format!("rnn.bias_hh_l{l}{sfx}"), vec![4 * h]),
                ]
            })
        });
        let fc = [
            ("fc.weight".to_string(), vec![config.num_outputs, 2 * h]),
            ("fc.bias".to_string(), vec![config.num_outputs]),
        ];
        std::iter::once(embedding).chain(rnn).chain(fc)
    }

    /// Fresh parameters initialised as PyTorch does: embedding N(0, 1), LSTM U(±1/√H),
    /// linear U(±1/√fan_in). Drawn from `rng`, so a seed fixes the model.
    pub fn init_tensors(
        config: &StudentConfig,
        rng: &mut impl Rng,
        device: &Device,
    ) -> Result<HashMap<String, Tensor>> {
        config.validate()?;
        let lstm_bound = 1.0 / (config.hidden_size as f32).sqrt();
        let fc_bound = 1.0 / ((2 * config.hidden_size) as f32).sqrt();
        let normal = Normal::new(0.0f32, 1.0).map_err(|e| Error::Config(e.to_string()))?;
        let mut out = HashMap::new();
        for (name, shape) in Self::parameter_shapes(config) {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = if name == "embedding.weight" {
                (0..n).map(|_| normal.sample(rng)).collect()
            } else {
                let bound = if name.starts_with("fc.") {
                    fc_bound
                } else {
                    lstm_bound
                };
                let u = Uniform::new_inclusive(-bound, bound);
                (0..n).map(|_| u.sample(rng)).collect()
            };
            out.insert(name, Tensor::from_vec(values, shape, device)?);
        }
        Ok(out)
    }

    /// Builds the model over `tensors` (checked against the config's names and shapes).
    /// Training passes the tensors of its `Var`s, so gradients reach them.
    pub fn from_tensors(config: &StudentConfig, tensors: &HashMap<String, Tensor>) -> Result<Self> {
        config.validate()?;
        // Checked one by one, so a config with more layers than the weights stops at the
        // first missing one.
        for (name, shape) in Self::parameter_shapes_iter(config) {
            let t = tensors.get(&name).ok_or_else(|| Error::MissingTensor {
                path: "<model>".into(),
                name: name.clone(),
            })?;
            if t.dims() != shape.as_slice() {
                return Err(Error::Shape {
                    path: "<model>".into(),
                    name,
                    found: t.dims().to_vec(),
                    expected: shape,
                });
            }
        }
        let get = |n: &str| tensors[n].clone();
        Ok(Self {
            config: config.clone(),
            embedding: get("embedding.weight"),
            rnn: BiLstm::from_tensors(tensors, "rnn.", config.num_layers)?,
            fc_weight: get("fc.weight"),
            fc_bias: get("fc.bias"),
        })
    }

    /// Forces the plain candle-op recurrence (for parity tests and devices without the kernel).
    pub fn with_recurrence(mut self, recurrence: Recurrence) -> Self {
        self.rnn = self.rnn.with_recurrence(recurrence);
        self
    }

    /// The architecture.
    pub fn config(&self) -> &StudentConfig {
        &self.config
    }

    /// The recurrent part.
    pub fn rnn(&self) -> &BiLstm {
        &self.rnn
    }

    /// All parameters by name.
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        let mut m = HashMap::new();
        m.insert("embedding.weight".to_string(), self.embedding.clone());
        for (l, layer) in self.rnn.layers().iter().enumerate() {
            for (dir, sfx) in layer.iter().zip(["", "_reverse"]) {
                m.insert(format!("rnn.weight_ih_l{l}{sfx}"), dir.weight_ih.clone());
                m.insert(format!("rnn.weight_hh_l{l}{sfx}"), dir.weight_hh.clone());
                m.insert(format!("rnn.bias_ih_l{l}{sfx}"), dir.bias_ih.clone());
                m.insert(format!("rnn.bias_hh_l{l}{sfx}"), dir.bias_hh.clone());
            }
        }
        m.insert("fc.weight".into(), self.fc_weight.clone());
        m.insert("fc.bias".into(), self.fc_bias.clone());
        m
    }

    /// Logits `(B, C)` for token ids `(B, T)` (u32) whose row `b` has `lengths[b]` real tokens.
    /// With `dropout_rng`, dropout is applied (training); without, the model is deterministic.
    pub fn forward(
        &self,
        ids: &Tensor,
        lengths: &[usize],
        dropout_rng: Option<&mut dyn rand::RngCore>,
    ) -> Result<Tensor> {
        self.forward_embedded(&self.embed(ids)?, lengths, dropout_rng)
    }

    /// Embedding rows of `ids` `(B, T)` → `(B, T, E)`.
    pub fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        Ok(self
            .embedding
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, t, self.config.embedding_dim))?)
    }

    /// The model after the embedding: `x` `(B, T, E)` → logits `(B, C)`. Training uses this
    /// to take the embedding's gradient per row instead of as a dense `(V, E)` tensor.
    pub fn forward_embedded(
        &self,
        x: &Tensor,
        lengths: &[usize],
        dropout_rng: Option<&mut dyn rand::RngCore>,
    ) -> Result<Tensor> {
        let mut features = self.rnn.final_states(x, lengths)?;
        if let Some(rng) = dropout_rng {
            features = dropout(&features, self.config.dropout, rng)?;
        }
        Ok(features
            .matmul(&self.fc_weight.t()?)?
            .broadcast_add(&self.fc_bias)?)
    }
}

/// Inverted dropout with a mask drawn from `rng` (candle's own dropout is not seedable).
fn dropout(x: &Tensor, p: f32, rng: &mut dyn rand::RngCore) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    let scale = 1.0 / (1.0 - p);
    let mask: Vec<f32> = (0..x.elem_count())
        .map(|_| if rng.gen::<f32>() < p { 0.0 } else { scale })
        .collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(DType::F32)?;
    Ok((x * mask)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StudentPreset;
    use rand::SeedableRng;

    #[test]
    fn from_tensors_stops_at_the_first_layer_the_weights_lack() {
        let config = StudentConfig::new(&StudentPreset::original(), 10, 2);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let tensors = BiLstmClassifier::init_tensors(&config, &mut rng, &Device::Cpu).unwrap();
        // A config from a file claiming 2^40 layers over one layer's weights: listing every
        // expected tensor first would never finish.
        let claimed = StudentConfig {
            num_layers: 1 << 40,
            ..config
        };
        match BiLstmClassifier::from_tensors(&claimed, &tensors) {
            Err(Error::MissingTensor { name, .. }) => assert_eq!(name, "rnn.weight_ih_l1"),
            other => panic!("expected a missing layer-1 tensor, got {other:?}"),
        }
    }
}
