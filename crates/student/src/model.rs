//! The student: embedding → bidirectional LSTM → final states → dropout → linear.
//!
//! `forward(ids (B, T) u32, lengths) → logits (B, C)`. The sentence vector is the top layer's
//! final forward state (after the last real token) concatenated with its final backward state
//! (after reading back to the first token), `(B, 2H)`; an empty text reads as the zero initial
//! states. Parameter names follow the PyTorch module of the original tutorial:
//! `embedding.weight`, `rnn.*`, `fc.weight`, `fc.bias`.
//!
//! A pair model (Tang et al. 2019, siamese) reads both texts with the one encoder and
//! classifies `h = [h1; h2; h1⊙h2; |h1−h2|]` `(B, 8H)` → dropout → `fc.0` `(8H → 2H)` → ReLU →
//! `fc.2` `(2H → C)`: [`BiLstmClassifier::forward_pair`]. The names are those of PyTorch's
//! `fc = nn.Sequential(Linear, ReLU, Linear)`. Gradients at kinks follow PyTorch: ReLU and
//! `|·|` have slope 0 at 0 (so identical texts give `|h1−h2|` no gradient).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, D};
use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};

use crate::bilstm::{BiLstm, Recurrence};
use crate::{Error, Result, StudentConfig};

/// The BiLSTM sentence (or sentence-pair) classifier.
#[derive(Clone, Debug)]
pub struct BiLstmClassifier {
    config: StudentConfig,
    embedding: Tensor,
    rnn: BiLstm,
    head: Head,
}

/// What turns the sentence vectors into logits.
#[derive(Clone, Debug)]
enum Head {
    /// `fc`: `(B, 2H) → (B, C)`.
    Single { fc: Linear },
    /// `fc.0`: `(B, 8H) → (B, 2H)`, ReLU, `fc.2`: `(B, 2H) → (B, C)`.
    Pair { fc0: Linear, fc2: Linear },
}

/// `y = x·Wᵀ + b`, with `W` `(out, in)` as PyTorch stores it.
#[derive(Clone, Debug)]
struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)?)
    }
}

/// The classifier's parameter names: `fc.*` of a single-text model, `fc.0.*`, `fc.2.*` of a
/// pair model (the indices of PyTorch's `Sequential`).
fn head_names(pair: bool) -> &'static [&'static str] {
    if pair {
        &["fc.0.weight", "fc.0.bias", "fc.2.weight", "fc.2.bias"]
    } else {
        &["fc.weight", "fc.bias"]
    }
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
        let c = config.num_outputs;
        let shapes = if config.pair {
            vec![vec![2 * h, 8 * h], vec![2 * h], vec![c, 2 * h], vec![c]]
        } else {
            vec![vec![c, 2 * h], vec![c]]
        };
        let fc = head_names(config.pair)
            .iter()
            .zip(shapes)
            .map(|(n, s)| (n.to_string(), s));
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
        // Linear layers: the bound of a layer's bias is that of its weight.
        let fc_bound = |name: &str| {
            let fan_in = if name.starts_with("fc.0.") { 8 } else { 2 } * config.hidden_size;
            1.0 / (fan_in as f32).sqrt()
        };
        let normal = Normal::new(0.0f32, 1.0).map_err(|e| Error::Config(e.to_string()))?;
        let mut out = HashMap::new();
        for (name, shape) in Self::parameter_shapes(config) {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = if name == "embedding.weight" {
                (0..n).map(|_| normal.sample(rng)).collect()
            } else {
                let bound = if name.starts_with("fc.") {
                    fc_bound(&name)
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
        let linear = |prefix: &str| Linear {
            weight: get(&format!("{prefix}weight")),
            bias: get(&format!("{prefix}bias")),
        };
        let head = if config.pair {
            Head::Pair {
                fc0: linear("fc.0."),
                fc2: linear("fc.2."),
            }
        } else {
            Head::Single { fc: linear("fc.") }
        };
        Ok(Self {
            config: config.clone(),
            embedding: get("embedding.weight"),
            rnn: BiLstm::from_tensors(tensors, "rnn.", config.num_layers)?,
            head,
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
        let linears = match &self.head {
            Head::Single { fc } => vec![fc],
            Head::Pair { fc0, fc2 } => vec![fc0, fc2],
        };
        let names = head_names(self.config.pair).chunks(2);
        for (fc, names) in linears.into_iter().zip(names) {
            m.insert(names[0].to_string(), fc.weight.clone());
            m.insert(names[1].to_string(), fc.bias.clone());
        }
        m
    }

    /// Logits `(B, C)` for token ids `(B, T)` (u32) whose row `b` has `lengths[b]` real tokens.
    /// With `dropout_rng`, dropout is applied (training); without, the model is deterministic.
    /// A pair model refuses (see [`Self::forward_pair`]).
    pub fn forward(
        &self,
        ids: &Tensor,
        lengths: &[usize],
        dropout_rng: Option<&mut dyn rand::RngCore>,
    ) -> Result<Tensor> {
        self.forward_embedded(&self.embed(ids)?, lengths, dropout_rng)
    }

    /// Logits `(B, C)` of a pair model for the first texts `ids_a` `(B, Ta)` and the second
    /// texts `ids_b` `(B, Tb)` (u32), row `b` of each having `lengths_a[b]`, `lengths_b[b]`
    /// real tokens. Both go through the encoder as one `(2B, max(Ta, Tb))` batch.
    pub fn forward_pair(
        &self,
        ids_a: &Tensor,
        lengths_a: &[usize],
        ids_b: &Tensor,
        lengths_b: &[usize],
        dropout_rng: Option<&mut dyn rand::RngCore>,
    ) -> Result<Tensor> {
        let (ta, tb) = (ids_a.dim(1)?, ids_b.dim(1)?);
        let t = ta.max(tb);
        // The padding id is never read: the recurrence stops at each row's length.
        let ids = Tensor::cat(
            &[
                ids_a.pad_with_zeros(1, 0, t - ta)?,
                ids_b.pad_with_zeros(1, 0, t - tb)?,
            ],
            0,
        )?;
        let lengths: Vec<usize> = lengths_a.iter().chain(lengths_b).copied().collect();
        self.forward_embedded_pair(&self.embed(&ids)?, &lengths, dropout_rng)
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
        let Head::Single { fc } = &self.head else {
            return Err(Error::Config(
                "a pair model reads two texts: use forward_pair".into(),
            ));
        };
        let mut features = self.rnn.final_states(x, lengths)?;
        if let Some(rng) = dropout_rng {
            features = dropout(&features, self.config.dropout, rng)?;
        }
        fc.forward(&features)
    }

    /// A pair model after the embedding: `x` `(2B, T, E)` holds the B first texts, then the
    /// B second texts (row `b + B` is the partner of row `b`), `lengths` their `2B` lengths
    /// → logits `(B, C)`.
    pub fn forward_embedded_pair(
        &self,
        x: &Tensor,
        lengths: &[usize],
        dropout_rng: Option<&mut dyn rand::RngCore>,
    ) -> Result<Tensor> {
        let Head::Pair { fc0, fc2 } = &self.head else {
            return Err(Error::Config(
                "a single-text model reads one text: use forward".into(),
            ));
        };
        let rows = x.dim(0)?;
        if rows % 2 != 0 || lengths.len() != rows {
            return Err(Error::Config(format!(
                "a pair batch stacks 2B rows with 2B lengths, got {rows} rows and {} lengths",
                lengths.len()
            )));
        }
        let states = self.rnn.final_states(x, lengths)?;
        let (h1, h2) = (
            states.narrow(0, 0, rows / 2)?,
            states.narrow(0, rows / 2, rows / 2)?,
        );
        let diff = (&h1 - &h2)?;
        // |d| as d·sign(d) with the sign held constant: slope 0 at 0, as PyTorch.
        let abs = (&diff * diff.detach().sign()?)?;
        let mut features = Tensor::cat(&[&h1, &h2, &(&h1 * &h2)?, &abs], D::Minus1)?;
        if let Some(rng) = dropout_rng {
            features = dropout(&features, self.config.dropout, rng)?;
        }
        let hidden = fc0.forward(&features)?;
        // ReLU as x·[x > 0] with the mask held constant: slope 0 at 0, as PyTorch.
        let hidden = (&hidden * hidden.gt(0.0)?.to_dtype(hidden.dtype())?)?;
        fc2.forward(&hidden)
    }
}

/// Inverted dropout with a mask drawn from `rng` (candle's own dropout is not seedable).
fn dropout(x: &Tensor, p: f32, rng: &mut dyn rand::RngCore) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    let mask = distill_ops::dropout::keep_mask(x.elem_count(), p, rng);
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
