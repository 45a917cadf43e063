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
        // Sizes read from a file can be anything; shapes are computed from them later.
        if self.checked_num_parameters().is_none() {
            return bad("the sizes give more parameters than a usize can count");
        }
        Ok(())
    }

    /// Number of trainable parameters (`usize::MAX` if it overflows; [`Self::validate`]
    /// refuses such configs).
    pub fn num_parameters(&self) -> usize {
        self.checked_num_parameters().unwrap_or(usize::MAX)
    }

    /// The parameter count, `None` on overflow. Closed form, so a huge `num_layers` costs
    /// nothing.
    fn checked_num_parameters(&self) -> Option<usize> {
        let (e, h, c) = (self.embedding_dim, self.hidden_size, self.num_outputs);
        // One direction of a layer with `input` features: 4H·input + 4H·H + 8H.
        let direction = |input: usize| {
            let h4 = h.checked_mul(4)?;
            h4.checked_mul(input)?
                .checked_add(h4.checked_mul(h)?)?
                .checked_add(h.checked_mul(8)?)
        };
        let first = match self.num_layers {
            0 => 0,
            _ => direction(e)?.checked_mul(2)?,
        };
        let others = match self.num_layers.saturating_sub(1) {
            0 => 0,
            n => direction(h.checked_mul(2)?)?
                .checked_mul(2)?
                .checked_mul(n)?,
        };
        let fc = c.checked_mul(h.checked_mul(2)?)?.checked_add(c)?;
        self.vocab_size
            .checked_mul(e)?
            .checked_add(first)?
            .checked_add(others)?
            .checked_add(fc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BiLstmClassifier;

    #[test]
    fn num_parameters_counts_every_tensor_element() {
        let mut config = StudentConfig::new(&StudentPreset::large(), 1000, 1);
        config.num_layers = 3;
        let counted: usize = BiLstmClassifier::parameter_shapes(&config)
            .iter()
            .map(|(_, shape)| shape.iter().product::<usize>())
            .sum();
        assert_eq!(config.num_parameters(), counted);
    }

    #[test]
    fn validate_refuses_sizes_whose_parameter_count_overflows() {
        let ok = StudentConfig::new(&StudentPreset::original(), 22, 2);
        ok.validate().unwrap();
        let huge_hidden = StudentConfig {
            hidden_size: 1 << 62,
            ..ok.clone()
        };
        let many_layers = StudentConfig {
            num_layers: usize::MAX,
            ..ok.clone()
        };
        let huge_vocab = StudentConfig {
            vocab_size: usize::MAX / 2,
            ..ok
        };
        for config in [huge_hidden, many_layers, huge_vocab] {
            let e = config.validate().unwrap_err().to_string();
            assert!(e.contains("more parameters than a usize"), "{e}");
        }
    }
}
