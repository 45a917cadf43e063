//! The parameters of a `BertForSequenceClassification`, read from a checkpoint, checked
//! against the config, and written back in the same layout.
//!
//! [`Params`] holds one [`Var`] per tensor under transformers' names
//! (`bert.embeddings.word_embeddings.weight`, …, `bert.pooler.dense.weight`,
//! `classifier.weight`), whatever the checkpoint used: a bare `BertModel` has no `bert.`
//! prefix, old checkpoints name LayerNorm parameters `gamma`/`beta`. Every tensor the
//! encoder needs must be there with the shape the config implies. The pooler and the
//! classifier (the head) must be there too unless [`HeadInit::Random`] is asked for, as
//! fine-tuning does: then a missing head is initialised as transformers does (weights
//! ~ N(0, σ²) with σ = `initializer_range`, biases zero) and the log says so.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::source::WeightsFile;

/// Which part of the model a tensor belongs to: the encoder must be in the checkpoint,
/// the heads may be initialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Encoder,
    Pooler,
    Classifier,
}

/// What to do when the checkpoint has no trained head (pooler and classifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeadInit {
    /// Refuse: logits from a random head are noise ([`Error::NoTrainedHead`]).
    #[default]
    Required,
    /// Start a missing head from scratch: for fine-tuning, or for uses that never read
    /// the head (input embeddings, the encoder's hidden states).
    Random,
}

/// Named trainable tensors, in a stable order.
#[derive(Debug, Clone)]
pub struct Params {
    vars: Vec<(String, Var)>,
    index: HashMap<String, usize>,
}

impl Params {
    /// Reads `weights` and checks every tensor against `cfg`; a missing head is refused
    /// or initialised with `seed`, as `head` says. The classifier gets `num_labels` outputs.
    pub fn load(
        weights: &WeightsFile,
        cfg: &BertConfig,
        num_labels: usize,
        head: HeadInit,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let path = weights.path();
        let read_err = |source| Error::Weights {
            path: path.to_path_buf(),
            source,
        };
        let raw: Vec<(String, Tensor)> = match weights {
            WeightsFile::Safetensors(p) => candle_core::safetensors::load(p, &Device::Cpu)
                .map_err(read_err)?
                .into_iter()
                .collect(),
            WeightsFile::Pickle(p) => candle_core::pickle::read_all(p).map_err(read_err)?,
        };
        Self::from_tensors(raw, path, cfg, num_labels, head, seed, device)
    }

    /// As [`Params::load`], from tensors already in memory; `path` names them in errors.
    pub fn from_tensors(
        raw: Vec<(String, Tensor)>,
        path: &Path,
        cfg: &BertConfig,
        num_labels: usize,
        head: HeadInit,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let mut found: HashMap<String, Tensor> = HashMap::new();
        for (name, tensor) in raw {
            found.insert(canonical_name(&name), tensor);
        }
        check_layer_count(&found, cfg, path)?;
        if head == HeadInit::Required {
            check_head(&found, cfg, num_labels, path)?;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut vars = Vec::new();
        let mut initialised = BTreeMap::<&str, Vec<String>>::new();
        for (name, shape, part) in expected(cfg, num_labels) {
            let tensor = match found.remove(&name) {
                // Fine-tuning a classifier for another label set: its head starts anew, as
                // transformers' `ignore_mismatched_sizes=True` does.
                Some(t)
                    if part == Part::Classifier
                        && head == HeadInit::Random
                        && t.dims() != shape.as_slice() =>
                {
                    tracing::warn!(
                        "{}: {name} has shape {:?}, and {num_labels} labels need {shape:?}; \
                         started anew",
                        path.display(),
                        t.dims()
                    );
                    init_tensor(&name, &shape, cfg.initializer_range, &mut rng, device)?
                }
                Some(t) => {
                    if t.dims() != shape.as_slice() {
                        return Err(Error::ShapeMismatch {
                            path: path.to_path_buf(),
                            name,
                            expected: shape,
                            found: t.dims().to_vec(),
                        });
                    }
                    t.to_dtype(DType::F32)?.to_device(device)?
                }
                None if part == Part::Encoder => {
                    return Err(Error::MissingTensor {
                        path: path.to_path_buf(),
                        name,
                    })
                }
                None => {
                    let what = if part == Part::Pooler {
                        "pooler"
                    } else {
                        "classifier"
                    };
                    initialised.entry(what).or_default().push(name.clone());
                    init_tensor(&name, &shape, cfg.initializer_range, &mut rng, device)?
                }
            };
            vars.push((name, Var::from_tensor(&tensor)?));
        }
        for (what, names) in &initialised {
            tracing::warn!(
                "{}: no {what} weights ({}); initialised as transformers does: N(0, {}^2), zero bias",
                path.display(),
                names.join(", "),
                cfg.initializer_range
            );
        }
        let unused: Vec<&String> = found.keys().filter(|n| !is_known_extra(n)).collect();
        if !unused.is_empty() {
            tracing::debug!(
                ?unused,
                "tensors in the checkpoint that the classifier does not use"
            );
        }
        let index = vars
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), i))
            .collect();
        Ok(Params { vars, index })
    }

    /// The tensor of the parameter `name` (shares storage with its variable).
    pub fn get(&self, name: &str) -> Result<Tensor> {
        self.index
            .get(name)
            .map(|&i| self.vars[i].1.as_tensor().clone())
            .ok_or_else(|| Error::MissingTensor {
                path: "<parameters>".into(),
                name: name.to_string(),
            })
    }

    /// The variable of the parameter `name`.
    pub fn var(&self, name: &str) -> Result<&Var> {
        self.index
            .get(name)
            .map(|&i| &self.vars[i].1)
            .ok_or_else(|| Error::MissingTensor {
                path: "<parameters>".into(),
                name: name.to_string(),
            })
    }

    /// All parameters with their names, in load order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.vars.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Number of scalar parameters.
    pub fn count(&self) -> usize {
        self.vars.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// The parameters as a safetensors file with `{"format": "pt"}` metadata, which
    /// transformers requires.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let cpu: Vec<(String, Tensor)> = self
            .vars
            .iter()
            .map(|(n, v)| Ok((n.clone(), v.as_tensor().to_device(&Device::Cpu)?)))
            .collect::<Result<_>>()?;
        let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
        safetensors::serialize(cpu.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata))
            .map_err(|e| Error::Candle(candle_core::Error::Msg(format!("safetensors: {e}"))))
    }
}

/// The tensor `name` (transformers' name, as in [`Params`]) of `weights`, as f32 on the
/// CPU, whatever its stored dtype (f16, bf16, …); the other tensors are not converted.
pub fn read_tensor(weights: &WeightsFile, name: &str) -> Result<Tensor> {
    let path = weights.path();
    let read_err = |source| Error::Weights {
        path: path.to_path_buf(),
        source,
    };
    let missing = || Error::MissingTensor {
        path: path.to_path_buf(),
        name: name.to_string(),
    };
    let tensor = match weights {
        WeightsFile::Safetensors(p) => {
            let bytes = std::fs::read(p).map_err(|e| Error::io("read", p, e))?;
            let file =
                candle_core::safetensors::BufferedSafetensors::new(bytes).map_err(read_err)?;
            let stored = file
                .tensors()
                .into_iter()
                .map(|(n, _)| n)
                .find(|n| canonical_name(n) == name)
                .ok_or_else(missing)?;
            file.load(&stored, &Device::Cpu).map_err(read_err)?
        }
        WeightsFile::Pickle(p) => {
            let file = candle_core::pickle::PthTensors::new(p, None).map_err(read_err)?;
            let stored = file
                .tensor_infos()
                .keys()
                .find(|n| canonical_name(n) == name)
                .cloned()
                .ok_or_else(missing)?;
            file.get(&stored).map_err(read_err)?.ok_or_else(missing)?
        }
    };
    Ok(tensor.to_dtype(DType::F32)?)
}

/// transformers' name for a checkpoint tensor: `bert.` prefix added to the encoder's,
/// `gamma`/`beta` renamed.
fn canonical_name(name: &str) -> String {
    let name = name
        .strip_suffix(".gamma")
        .map(|s| format!("{s}.weight"))
        .or_else(|| name.strip_suffix(".beta").map(|s| format!("{s}.bias")))
        .unwrap_or_else(|| name.to_string());
    let is_encoder = ["embeddings.", "encoder.", "pooler."]
        .iter()
        .any(|p| name.starts_with(p));
    if is_encoder {
        format!("bert.{name}")
    } else {
        name
    }
}

/// Checkpoint entries that are known not to be parameters of the classifier.
fn is_known_extra(name: &str) -> bool {
    name.ends_with("position_ids") || name.starts_with("cls.")
}

/// Refuses a checkpoint without a trained head, naming the missing tensors and any
/// unused ones (a head under other names).
fn check_head(
    found: &HashMap<String, Tensor>,
    cfg: &BertConfig,
    num_labels: usize,
    path: &Path,
) -> Result<()> {
    let missing: Vec<String> = expected(cfg, num_labels)
        .into_iter()
        .filter(|(name, _, part)| *part != Part::Encoder && !found.contains_key(name))
        .map(|(name, _, _)| name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let known: Vec<String> = expected(cfg, num_labels)
        .into_iter()
        .map(|(n, _, _)| n)
        .collect();
    let mut unused: Vec<String> = found
        .keys()
        .filter(|n| !known.contains(n) && !is_known_extra(n))
        .cloned()
        .collect();
    unused.sort();
    Err(Error::NoTrainedHead {
        path: path.to_path_buf(),
        missing,
        unused,
    })
}

/// The config and the weights must agree on the depth: extra layers mean the config is
/// for another model.
fn check_layer_count(found: &HashMap<String, Tensor>, cfg: &BertConfig, path: &Path) -> Result<()> {
    let layers_in_weights = found
        .keys()
        .filter_map(|n| n.strip_prefix("bert.encoder.layer."))
        .filter_map(|rest| rest.split('.').next()?.parse::<usize>().ok())
        .max()
        .map_or(0, |max| max + 1);
    if layers_in_weights != cfg.num_hidden_layers {
        return Err(Error::ConfigMismatch {
            path: path.to_path_buf(),
            message: format!(
                "the weights have {layers_in_weights} encoder layers, config.json says num_hidden_layers = {}",
                cfg.num_hidden_layers
            ),
        });
    }
    Ok(())
}

/// Every parameter of the classifier with the shape the config implies.
fn expected(cfg: &BertConfig, num_labels: usize) -> Vec<(String, Vec<usize>, Part)> {
    let h = cfg.hidden_size;
    let mut out = Vec::new();
    let mut push = |name: String, shape: Vec<usize>, part| out.push((name, shape, part));
    let e = "bert.embeddings";
    push(
        format!("{e}.word_embeddings.weight"),
        vec![cfg.vocab_size, h],
        Part::Encoder,
    );
    push(
        format!("{e}.position_embeddings.weight"),
        vec![cfg.max_position_embeddings, h],
        Part::Encoder,
    );
    push(
        format!("{e}.token_type_embeddings.weight"),
        vec![cfg.type_vocab_size, h],
        Part::Encoder,
    );
    push(format!("{e}.LayerNorm.weight"), vec![h], Part::Encoder);
    push(format!("{e}.LayerNorm.bias"), vec![h], Part::Encoder);
    for l in 0..cfg.num_hidden_layers {
        let p = format!("bert.encoder.layer.{l}");
        for proj in ["query", "key", "value"] {
            push(
                format!("{p}.attention.self.{proj}.weight"),
                vec![h, h],
                Part::Encoder,
            );
            push(
                format!("{p}.attention.self.{proj}.bias"),
                vec![h],
                Part::Encoder,
            );
        }
        push(
            format!("{p}.attention.output.dense.weight"),
            vec![h, h],
            Part::Encoder,
        );
        push(
            format!("{p}.attention.output.dense.bias"),
            vec![h],
            Part::Encoder,
        );
        push(
            format!("{p}.attention.output.LayerNorm.weight"),
            vec![h],
            Part::Encoder,
        );
        push(
            format!("{p}.attention.output.LayerNorm.bias"),
            vec![h],
            Part::Encoder,
        );
        let i = cfg.intermediate_size;
        push(
            format!("{p}.intermediate.dense.weight"),
            vec![i, h],
            Part::Encoder,
        );
        push(
            format!("{p}.intermediate.dense.bias"),
            vec![i],
            Part::Encoder,
        );
        push(
            format!("{p}.output.dense.weight"),
            vec![h, i],
            Part::Encoder,
        );
        push(format!("{p}.output.dense.bias"), vec![h], Part::Encoder);
        push(
            format!("{p}.output.LayerNorm.weight"),
            vec![h],
            Part::Encoder,
        );
        push(format!("{p}.output.LayerNorm.bias"), vec![h], Part::Encoder);
    }
    push("bert.pooler.dense.weight".into(), vec![h, h], Part::Pooler);
    push("bert.pooler.dense.bias".into(), vec![h], Part::Pooler);
    push(
        "classifier.weight".into(),
        vec![num_labels, h],
        Part::Classifier,
    );
    push("classifier.bias".into(), vec![num_labels], Part::Classifier);
    out
}

/// transformers' `_init_weights` for a linear layer: N(0, σ²) weights, zero bias.
fn init_tensor(
    name: &str,
    shape: &[usize],
    std: f64,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    if name.ends_with(".bias") {
        return Ok(Tensor::zeros(shape, DType::F32, device)?);
    }
    let values: Vec<f32> = (0..n)
        .map(|_| (std * standard_normal(rng)) as f32)
        .collect();
    Ok(Tensor::from_vec(values, shape, device)?)
}

/// A standard normal sample by the Box–Muller transform.
pub(crate) fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_canonicalised() {
        assert_eq!(
            canonical_name("embeddings.LayerNorm.gamma"),
            "bert.embeddings.LayerNorm.weight"
        );
        assert_eq!(
            canonical_name("bert.encoder.layer.0.output.dense.bias"),
            "bert.encoder.layer.0.output.dense.bias"
        );
        assert_eq!(canonical_name("classifier.weight"), "classifier.weight");
    }

    #[test]
    fn normal_samples_have_unit_variance() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let xs: Vec<f64> = (0..20_000).map(|_| standard_normal(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
