//! The model folder: `config.json`, `vocab.json` (with `tokenizer.json` for a WordPiece
//! student), `model.safetensors` (PyTorch names).
//!
//! Saving writes a sibling `<dir>.partial/` and swaps it into place with
//! [`distill_data::io::replace_dir`], so an interrupted save leaves either the old folder or
//! the new one, never a mix ([`distill_data::io::recover_dir`] finishes a swap a kill cut short).

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use candle_core::{Device, Tensor};
use distill_data::io::{partial_dir, replace_dir};
use distill_data::TextEncoder;

use crate::{BiLstmClassifier, Error, Result, StudentConfig};

/// File names inside a model folder.
pub const CONFIG_FILE: &str = "config.json";
pub use distill_data::text::VOCAB_FILE;
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// A trained student with what it needs to read text.
#[derive(Clone, Debug)]
pub struct StudentModel {
    pub config: StudentConfig,
    /// Text to token ids, as in training.
    pub encoder: TextEncoder,
    pub classifier: BiLstmClassifier,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl StudentModel {
    /// Loads a model folder onto `device`, checking names and shapes against `config.json`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let config_path = dir.join(CONFIG_FILE);
        let text = fs::read_to_string(&config_path).map_err(io_err(&config_path))?;
        let config: StudentConfig = serde_json::from_str(&text).map_err(|e| Error::Format {
            path: config_path.clone(),
            reason: e.to_string(),
        })?;
        config.validate().map_err(|e| Error::Format {
            path: config_path.clone(),
            reason: e.to_string(),
        })?;
        let encoder = TextEncoder::load(dir, &config.tokenizer, config.normalize)?;
        let vocab = &encoder.vocab;
        if vocab.len() != config.vocab_size {
            return Err(Error::Format {
                path: dir.join(VOCAB_FILE),
                reason: format!(
                    "{} tokens, but config.json says vocab_size {}",
                    vocab.len(),
                    config.vocab_size
                ),
            });
        }
        let weights_path = dir.join(WEIGHTS_FILE);
        if !weights_path.exists() {
            return Err(Error::Io {
                path: weights_path,
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
        let tensors =
            candle_core::safetensors::load(&weights_path, device).map_err(|e| Error::Format {
                path: weights_path.clone(),
                reason: e.to_string(),
            })?;
        let classifier =
            BiLstmClassifier::from_tensors(&config, &tensors).map_err(|e| match e {
                Error::MissingTensor { name, .. } => Error::MissingTensor {
                    path: weights_path.clone(),
                    name,
                },
                Error::Shape {
                    name,
                    found,
                    expected,
                    ..
                } => Error::Shape {
                    path: weights_path.clone(),
                    name,
                    found,
                    expected,
                },
                other => other,
            })?;
        Ok(Self {
            config,
            encoder,
            classifier,
        })
    }

    /// Writes a model folder atomically (see the module docs).
    pub fn save(
        dir: &Path,
        config: &StudentConfig,
        encoder: &TextEncoder,
        tensors: &HashMap<String, Tensor>,
    ) -> Result<()> {
        let partial = partial_dir(dir);
        if partial.exists() {
            fs::remove_dir_all(&partial).map_err(io_err(&partial))?;
        }
        fs::create_dir_all(&partial).map_err(io_err(&partial))?;
        let json =
            serde_json::to_string_pretty(config).map_err(|e| Error::Config(e.to_string()))?;
        let cfg = partial.join(CONFIG_FILE);
        fs::write(&cfg, json).map_err(io_err(&cfg))?;
        encoder.save(&partial)?;
        let weights = partial.join(WEIGHTS_FILE);
        candle_core::safetensors::save(tensors, &weights).map_err(|e| Error::Format {
            path: weights.clone(),
            reason: e.to_string(),
        })?;
        Ok(replace_dir(&partial, dir)?)
    }

    /// Writes this model to `dir`.
    pub fn save_to(&self, dir: &Path) -> Result<()> {
        Self::save(dir, &self.config, &self.encoder, &self.classifier.tensors())
    }
}
