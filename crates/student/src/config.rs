//! Student architecture and tokenisation settings, and the named presets.
//!
//! `config.json` in a model folder is this struct as JSON; every field a reader needs to rebuild
//! the model and its input pipeline is here.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A named architecture: sizes of the embedding and LSTM, depth and dropout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudentPreset {
    pub name: String,
    pub embedding_dim: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub dropout: f32,
}

impl StudentPreset {
    /// The student of Tang et al. (2019) as in the original tutorial: embedding 16,
    /// hidden 8, one bidirectional layer, dropout 0.5.
    pub fn original() -> Self {
        Self {
            name: "original".into(),
            embedding_dim: 16,
            hidden_size: 8,
            num_layers: 1,
            dropout: 0.5,
        }
    }

    /// A larger student for distillation with augmented data: embedding 64, hidden 64.
    pub fn large() -> Self {
        Self {
            name: "large".into(),
            embedding_dim: 64,
            hidden_size: 64,
            num_layers: 1,
            dropout: 0.3,
        }
    }

    /// Looks a preset up by name.
    pub fn by_name(name: &str) -> Result<Self> {
        match name {
            "original" => Ok(Self::original()),
            "large" => Ok(Self::large()),
            other => Err(Error::Config(format!(
                "unknown preset `{other}` (known: original, large)"
            ))),
        }
    }
}

/// Everything needed to rebuild a student and feed it text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudentConfig {
    pub preset: String,
    pub vocab_size: usize,
    pub embedding_dim: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub dropout: f32,
    /// 2 logits (cross-entropy, distillation) or 1 logit (BCE-with-logits).
    pub num_outputs: usize,
    /// `words` (the word normaliser) or `wordpiece` (the teacher's `tokenizer.json`);
    /// either way `vocab.json` maps the tokens to embedding rows.
    pub tokenizer: String,
    /// Whether the original word normalisation (punctuation, numbers, stemming) is applied.
    pub normalize: bool,
    /// Sentences are truncated to this many tokens.
    pub max_len: usize,
}

impl StudentConfig {
    /// A config for `preset` over a vocabulary of `vocab_size` words.
    pub fn new(preset: &StudentPreset, vocab_size: usize, num_outputs: usize) -> Self {
        Self {
            preset: preset.name.clone(),
            vocab_size,
            embedding_dim: preset.embedding_dim,
            hidden_size: preset.hidden_size,
            num_layers: preset.num_layers,
            dropout: preset.dropout,
            num_outputs,
            tokenizer: "words".into(),
            normalize: true,
            max_len: 128,
        }
    }

    /// Rejects sizes the model cannot be built with.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.into()));
        if self.vocab_size < 2 {
            return bad("vocab_size must be at least 2 (<unk>, <pad>)");
        }
        if self.embedding_dim == 0 || self.hidden_size == 0 || self.num_layers == 0 {
            return bad("embedding_dim, hidden_size and num_layers must be positive");
        }
        if !(1..=2).contains(&self.num_outputs) {
            return bad("num_outputs must be 1 or 2");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout must be in [0, 1)");
        }
        if !["words", "wordpiece"].contains(&self.tokenizer.as_str()) {
            return bad("tokenizer must be `words` or `wordpiece`");
        }
        Ok(())
    }

    /// Number of trainable parameters.
    pub fn num_parameters(&self) -> usize {
        let (e, h) = (self.embedding_dim, self.hidden_size);
        let mut n = self.vocab_size * e;
        for layer in 0..self.num_layers {
            let input = if layer == 0 { e } else { 2 * h };
            n += 2 * (4 * h * input + 4 * h * h + 8 * h);
        }
        n + self.num_outputs * 2 * h + self.num_outputs
    }
}
