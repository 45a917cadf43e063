//! The student's parameters as flat `f32` vectors under their PyTorch names.
//!
//! `embedding.weight` `(V, E)` apart (its gradient comes as rows), then every other tensor in
//! [`BiLstmClassifier::parameter_shapes`] order: per layer `l` and direction (forward, then
//! `_reverse`) `weight_ih` `(4H, in)`, `weight_hh` `(4H, H)`, `bias_ih`, `bias_hh` `(4H)`; then
//! the head, `fc.weight` `(C, 2H)`, `fc.bias` — or for a pair model `fc.0.weight` `(2H, 8H)`,
//! `fc.0.bias`, `fc.2.weight` `(C, 2H)`, `fc.2.bias`. Row-major, as the tensors are.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use distill_student::{BiLstmClassifier, StudentConfig};

use crate::{Error, Result};

/// The embedding table's name.
pub const EMBEDDING: &str = "embedding.weight";

/// Parameters of one student; see the module docs.
#[derive(Clone, Debug)]
pub struct Params {
    /// Names of [`Params::dense`], in order.
    pub names: Vec<String>,
    shapes: Vec<Vec<usize>>,
    /// `(V, E)`, row-major.
    pub embedding: Vec<f32>,
    /// Every other parameter, in [`Params::names`] order.
    pub dense: Vec<Vec<f32>>,
}

/// Index of a direction's `weight_ih` in [`Params::dense`]; `weight_hh`, `bias_ih`, `bias_hh`
/// follow it.
pub fn direction_index(layer: usize, reverse: bool) -> usize {
    4 * (2 * layer + reverse as usize)
}

impl Params {
    /// Copies the values of `tensors` (checked against `config`'s names and shapes).
    pub fn from_tensors(config: &StudentConfig, tensors: &HashMap<String, Tensor>) -> Result<Self> {
        // The candle model's own checks: every name present with its shape.
        BiLstmClassifier::from_tensors(config, tensors)?;
        let mut names = Vec::new();
        let mut shapes = Vec::new();
        let mut dense = Vec::new();
        let mut embedding = Vec::new();
        for (name, shape) in BiLstmClassifier::parameter_shapes(config) {
            let values = tensors[&name].flatten_all()?.to_vec1::<f32>()?;
            if name == EMBEDDING {
                embedding = values;
            } else {
                names.push(name);
                shapes.push(shape);
                dense.push(values);
            }
        }
        if embedding.is_empty() && config.vocab_size * config.embedding_dim > 0 {
            return Err(Error::Config(format!("missing parameter {EMBEDDING}")));
        }
        Ok(Self {
            names,
            shapes,
            embedding,
            dense,
        })
    }

    /// Every parameter as a tensor on `device`.
    pub fn to_tensors(
        &self,
        config: &StudentConfig,
        device: &Device,
    ) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        out.insert(
            EMBEDDING.to_string(),
            Tensor::from_slice(
                &self.embedding,
                (config.vocab_size, config.embedding_dim),
                device,
            )?,
        );
        for ((name, shape), values) in self.names.iter().zip(&self.shapes).zip(&self.dense) {
            out.insert(
                name.clone(),
                Tensor::from_slice(values, shape.as_slice(), device)?,
            );
        }
        Ok(out)
    }

    /// Sizes of the dense parameters, for the optimiser.
    pub fn dense_sizes(&self) -> impl Iterator<Item = (String, usize)> + '_ {
        self.names
            .iter()
            .zip(&self.dense)
            .map(|(n, v)| (n.clone(), v.len()))
    }
}
