//! Student architecture and tokenisation settings, and the named presets.
//!
//! `config.json` in a model folder is this struct as JSON; every field a reader needs to rebuild
//! the model and its input pipeline is here. The label names are written the Hugging Face way,
//! `"id2label": {"0": "neg", …}` with the matching `label2id`; a folder written before labels
//! were recorded reads as the binary labels `"0"`, `"1"`.

use std::collections::BTreeMap;

use distill_data::LabelSet;
use serde::{Deserialize, Serialize, Serializer};

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

    /// Rejects sizes a model cannot be built with (checked before a run writes anything).
    pub fn validate(&self) -> Result<()> {
        check_sizes(
            self.embedding_dim,
            self.hidden_size,
            self.num_layers,
            self.dropout,
        )
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

/// The sizes and dropout a model can be built with: one rule for presets and configs.
fn check_sizes(
    embedding_dim: usize,
    hidden_size: usize,
    layers: usize,
    dropout: f32,
) -> Result<()> {
    if embedding_dim == 0 || hidden_size == 0 || layers == 0 {
        return Err(Error::Config(
            "embedding_dim, hidden_size and num_layers must be positive".into(),
        ));
    }
    if !(0.0..1.0).contains(&dropout) {
        return Err(Error::Config("dropout must be in [0, 1)".into()));
    }
    Ok(())
}

/// Everything needed to rebuild a student and feed it text.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "ConfigFile")]
pub struct StudentConfig {
    pub preset: String,
    pub vocab_size: usize,
    pub embedding_dim: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub dropout: f32,
    /// One logit per label (cross-entropy, distillation), or 1 logit (BCE-with-logits, two
    /// labels only).
    pub num_outputs: usize,
    /// Label names in id order (`config.json`: `id2label` and `label2id`).
    pub labels: Vec<String>,
    /// A sentence-pair model: one encoder reads both texts (see [`crate::BiLstmClassifier`]).
    pub pair: bool,
    /// `words` (the word normaliser) or `wordpiece` (the teacher's `tokenizer.json`);
    /// either way `vocab.json` maps the tokens to embedding rows.
    pub tokenizer: String,
    /// Whether the original word normalisation (punctuation, numbers, stemming) is applied.
    pub normalize: bool,
    /// Sentences are truncated to this many tokens.
    pub max_len: usize,
}

impl StudentConfig {
    /// A single-text config for `preset` over a vocabulary of `vocab_size` words, with labels
    /// named by their ids (`"0"`, `"1"`, …; two for a 1-output model). See
    /// [`Self::with_labels`] and [`Self::with_pair`].
    pub fn new(preset: &StudentPreset, vocab_size: usize, num_outputs: usize) -> Self {
        Self {
            preset: preset.name.clone(),
            vocab_size,
            embedding_dim: preset.embedding_dim,
            hidden_size: preset.hidden_size,
            num_layers: preset.num_layers,
            dropout: preset.dropout,
            num_outputs,
            labels: (0..num_outputs.max(2)).map(|i| i.to_string()).collect(),
            pair: false,
            tokenizer: "words".into(),
            normalize: true,
            max_len: 128,
        }
    }

    /// These label names; one output per label unless the model has a single (BCE) output.
    pub fn with_labels(mut self, labels: &LabelSet) -> Self {
        self.labels = labels.names().to_vec();
        if self.num_outputs != 1 {
            self.num_outputs = self.labels.len();
        }
        self
    }

    /// A sentence-pair model (`true`) or a single-text one.
    pub fn with_pair(mut self, pair: bool) -> Self {
        self.pair = pair;
        self
    }

    /// The label names as a [`LabelSet`] (id = position).
    pub fn label_set(&self) -> LabelSet {
        LabelSet::new(self.labels.clone())
    }

    /// Rejects sizes the model cannot be built with.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.into()));
        if self.vocab_size < 2 {
            return bad("vocab_size must be at least 2 (<unk>, <pad>)");
        }
        check_sizes(
            self.embedding_dim,
            self.hidden_size,
            self.num_layers,
            self.dropout,
        )?;
        if self.labels.len() < 2 {
            return bad("a classifier needs at least 2 labels");
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(name) = self.labels.iter().find(|n| !seen.insert(n.as_str())) {
            return Err(Error::Config(format!("label `{name}` appears twice")));
        }
        match self.num_outputs {
            1 if self.labels.len() != 2 => {
                return Err(Error::Config(format!(
                    "a 1-output (BCE) model has exactly 2 labels, not {}",
                    self.labels.len()
                )))
            }
            1 => {}
            n if n != self.labels.len() => {
                return Err(Error::Config(format!(
                    "num_outputs {n} does not match the {} labels \
                     (one output per label, or 1 for BCE)",
                    self.labels.len()
                )))
            }
            _ => {}
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

    /// Width of the classifier's input: the sentence vector `2H`, or `8H` for a pair
    /// (`[h1; h2; h1⊙h2; |h1−h2|]`).
    pub fn feature_size(&self) -> usize {
        self.hidden_size
            .saturating_mul(if self.pair { 8 } else { 2 })
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
        let linear = |input: usize, output: usize| output.checked_mul(input)?.checked_add(output);
        let h2 = h.checked_mul(2)?;
        let fc = if self.pair {
            linear(h.checked_mul(8)?, h2)?.checked_add(linear(h2, c)?)?
        } else {
            linear(h2, c)?
        };
        self.vocab_size
            .checked_mul(e)?
            .checked_add(first)?
            .checked_add(others)?
            .checked_add(fc)
    }
}

/// `config.json` as read: [`StudentConfig`] with its labels as `id2label` / `label2id`.
#[derive(Deserialize)]
struct ConfigFile {
    preset: String,
    vocab_size: usize,
    embedding_dim: usize,
    hidden_size: usize,
    num_layers: usize,
    dropout: f32,
    num_outputs: usize,
    #[serde(default)]
    id2label: Option<BTreeMap<String, String>>,
    #[serde(default)]
    label2id: Option<BTreeMap<String, u32>>,
    #[serde(default)]
    pair: bool,
    tokenizer: String,
    normalize: bool,
    max_len: usize,
}

impl TryFrom<ConfigFile> for StudentConfig {
    type Error = String;

    fn try_from(f: ConfigFile) -> std::result::Result<Self, String> {
        let labels = match &f.id2label {
            None => vec!["0".to_string(), "1".to_string()],
            Some(map) => {
                let mut labels = vec![None; map.len()];
                for (id, name) in map {
                    let slot = id
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| labels.get_mut(i))
                        .filter(|slot| slot.is_none())
                        .ok_or_else(|| {
                            format!(
                                "id2label: ids must be 0..{} once each, found `{id}`",
                                map.len()
                            )
                        })?;
                    *slot = Some(name.clone());
                }
                // `map.len()` ids, each in range and none twice, fill every slot.
                labels.into_iter().flatten().collect()
            }
        };
        if let Some(label2id) = &f.label2id {
            let expected: BTreeMap<String, u32> = labels
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i as u32))
                .collect();
            if label2id != &expected {
                return Err("label2id does not agree with id2label".into());
            }
        }
        Ok(Self {
            preset: f.preset,
            vocab_size: f.vocab_size,
            embedding_dim: f.embedding_dim,
            hidden_size: f.hidden_size,
            num_layers: f.num_layers,
            dropout: f.dropout,
            num_outputs: f.num_outputs,
            labels,
            pair: f.pair,
            tokenizer: f.tokenizer,
            normalize: f.normalize,
            max_len: f.max_len,
        })
    }
}

impl Serialize for StudentConfig {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        /// `{"0": name, …}` in id order.
        struct IdToLabel<'a>(&'a [String]);
        impl Serialize for IdToLabel<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_map(self.0.iter().enumerate().map(|(i, n)| (i.to_string(), n)))
            }
        }
        /// `{name: id, …}` in id order.
        struct LabelToId<'a>(&'a [String]);
        impl Serialize for LabelToId<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_map(self.0.iter().enumerate().map(|(i, n)| (n, i)))
            }
        }
        let mut st = s.serialize_struct("StudentConfig", 13)?;
        st.serialize_field("preset", &self.preset)?;
        st.serialize_field("vocab_size", &self.vocab_size)?;
        st.serialize_field("embedding_dim", &self.embedding_dim)?;
        st.serialize_field("hidden_size", &self.hidden_size)?;
        st.serialize_field("num_layers", &self.num_layers)?;
        st.serialize_field("dropout", &self.dropout)?;
        st.serialize_field("num_outputs", &self.num_outputs)?;
        st.serialize_field("id2label", &IdToLabel(&self.labels))?;
        st.serialize_field("label2id", &LabelToId(&self.labels))?;
        st.serialize_field("pair", &self.pair)?;
        st.serialize_field("tokenizer", &self.tokenizer)?;
        st.serialize_field("normalize", &self.normalize)?;
        st.serialize_field("max_len", &self.max_len)?;
        st.end()
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
        let five = LabelSet::new((0..5).map(|i| format!("c{i}")).collect());
        let pair = StudentConfig::new(&StudentPreset::original(), 50, 2)
            .with_labels(&five)
            .with_pair(true);
        for config in [config, pair] {
            let counted: usize = BiLstmClassifier::parameter_shapes(&config)
                .iter()
                .map(|(_, shape)| shape.iter().product::<usize>())
                .sum();
            assert_eq!(config.num_parameters(), counted);
        }
    }

    #[test]
    fn labels_are_written_as_id2label_and_label2id_in_id_order() {
        let names: Vec<String> = (0..11).map(|i| format!("l{i}")).collect();
        let config = StudentConfig::new(&StudentPreset::original(), 20, 2)
            .with_labels(&LabelSet::new(names.clone()))
            .with_pair(true);
        assert_eq!(config.num_outputs, 11);
        config.validate().unwrap();
        let json = serde_json::to_string(&config).unwrap();
        // Id order, as Hugging Face writes it: "10" after "9", not after "1".
        assert!(
            json.contains(r#""id2label":{"0":"l0","1":"l1","2":"l2""#),
            "{json}"
        );
        assert!(json.contains(r#""9":"l9","10":"l10"}"#), "{json}");
        assert!(json.contains(r#""label2id":{"l0":0,"#), "{json}");
        let back: StudentConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
        assert_eq!(back.label_set().names(), names.as_slice());
    }

    #[test]
    fn a_config_from_before_labels_reads_as_binary_single_text() {
        let old = r#"{"preset":"original","vocab_size":20,"embedding_dim":16,"hidden_size":8,
            "num_layers":1,"dropout":0.5,"num_outputs":1,"tokenizer":"words","normalize":true,
            "max_len":128}"#;
        let config: StudentConfig = serde_json::from_str(old).unwrap();
        assert_eq!(config.label_set(), LabelSet::binary());
        assert!(!config.pair);
        config.validate().unwrap();
    }

    #[test]
    fn inconsistent_labels_are_refused() {
        let base = StudentConfig::new(&StudentPreset::original(), 20, 3);
        let json = serde_json::to_string(&base).unwrap();
        let edit = |from: &str, to: &str| {
            assert!(json.contains(from), "{json}");
            serde_json::from_str::<StudentConfig>(&json.replace(from, to))
                .unwrap_err()
                .to_string()
        };
        assert!(edit(r#""2":"2""#, r#""7":"2""#).contains("ids must be 0..3"));
        assert!(edit(r#""2":2"#, r#""2":0"#).contains("label2id does not agree"));

        let three = LabelSet::new(vec!["a".into(), "b".into(), "c".into()]);
        let bce = StudentConfig::new(&StudentPreset::original(), 20, 1).with_labels(&three);
        let e = bce.validate().unwrap_err().to_string();
        assert!(
            e.contains("1-output (BCE) model has exactly 2 labels"),
            "{e}"
        );
        let mismatch = StudentConfig {
            num_outputs: 2,
            ..base.clone()
        };
        let e = mismatch.validate().unwrap_err().to_string();
        assert!(
            e.contains("num_outputs 2 does not match the 3 labels"),
            "{e}"
        );
        let twice = StudentConfig {
            labels: vec!["a".into(), "b".into(), "a".into()],
            ..base
        };
        assert!(twice.validate().unwrap_err().to_string().contains("twice"));
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
