//! `config.json` of a Hugging Face BERT: the sizes that shape the model, the activation,
//! the dropout rates and the label names.
//!
//! The file is read once into [`BertConfig`]; keys this crate does not use are kept
//! verbatim so that a fine-tuned checkpoint writes them back unchanged, with only the
//! classifier keys (`architectures`, `id2label`, `label2id`) replaced. Shapes implied by
//! the config (used to check the weights):
//! word embeddings `(vocab_size, hidden)`, position `(max_position_embeddings, hidden)`,
//! token type `(type_vocab_size, hidden)`, attention projections `(hidden, hidden)`,
//! intermediate `(intermediate_size, hidden)`, output `(hidden, intermediate_size)`,
//! pooler `(hidden, hidden)`, classifier `(num_labels, hidden)`.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The most labels a classifier may have (`num_labels` or `id2label`).
pub const MAX_LABELS: usize = 1 << 16;

/// The activation between the two feed-forward matrices of a BERT layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x * Φ(x)` with the exact normal CDF (transformers' `"gelu"`).
    Gelu,
    /// The tanh approximation (`"gelu_new"`, `"gelu_pytorch_tanh"`, `"gelu_fast"`).
    GeluTanh,
    /// `max(x, 0)`.
    Relu,
}

impl Activation {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "gelu" => Some(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Self::GeluTanh),
            "relu" => Some(Self::Relu),
            _ => None,
        }
    }
}

/// A parsed and validated BERT `config.json`.
#[derive(Debug, Clone)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: Activation,
    pub hidden_dropout_prob: f64,
    pub attention_probs_dropout_prob: f64,
    /// Dropout before the classifier; `None` means `hidden_dropout_prob`.
    pub classifier_dropout: Option<f64>,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub initializer_range: f64,
    pub layer_norm_eps: f64,
    pub pad_token_id: u32,
    /// Label names in id order, when the config has `id2label`.
    pub id2label: Option<Vec<String>>,
    /// `architectures`, e.g. `["BertModel"]` or `["BertForSequenceClassification"]`.
    pub architectures: Vec<String>,
    /// The file as read, for writing back the keys this crate does not interpret.
    raw: Map<String, Value>,
}

impl BertConfig {
    /// Reads and validates `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        Self::from_json_str(&text, path)
    }

    /// Parses and validates the text of a `config.json`; `path` is only used in errors.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let raw: Map<String, Value> = serde_json::from_str(text).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })?;
        Parser { raw: &raw, path }.parse()
    }

    /// The classifier width: `id2label`'s length, else `num_labels`, else 2 (transformers' default).
    pub fn num_labels(&self) -> usize {
        match &self.id2label {
            Some(labels) => labels.len(),
            None => self
                .raw
                .get("num_labels")
                .and_then(Value::as_u64)
                .map_or(2, |n| n as usize),
        }
    }

    /// Size of one attention head.
    pub fn head_size(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Dropout before the classifier.
    pub fn classifier_dropout_prob(&self) -> f64 {
        self.classifier_dropout.unwrap_or(self.hidden_dropout_prob)
    }

    /// Whether the config says this is a sequence classifier (so its weights must have one).
    pub fn is_classifier(&self) -> bool {
        self.architectures
            .iter()
            .any(|a| a == "BertForSequenceClassification")
    }

    /// The config as a `BertForSequenceClassification` with the given label names, as JSON
    /// that transformers loads: every key read is kept, the classifier keys are replaced.
    pub fn to_classifier_json(&self, labels: &[String]) -> Value {
        let mut raw = self.raw.clone();
        raw.insert(
            "architectures".into(),
            Value::from(vec!["BertForSequenceClassification"]),
        );
        let id2label: Map<String, Value> = labels
            .iter()
            .enumerate()
            .map(|(i, name)| (i.to_string(), Value::from(name.as_str())))
            .collect();
        let label2id: Map<String, Value> = labels
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), Value::from(i)))
            .collect();
        raw.insert("id2label".into(), Value::Object(id2label));
        raw.insert("label2id".into(), Value::Object(label2id));
        raw.remove("num_labels");
        raw.entry("model_type").or_insert_with(|| "bert".into());
        Value::Object(raw)
    }

    /// The config with `id2label` set to `labels` (used when a base model gets a classifier).
    pub fn with_labels(mut self, labels: &[String]) -> Self {
        self.id2label = Some(labels.to_vec());
        self
    }
}

struct Parser<'a> {
    raw: &'a Map<String, Value>,
    path: &'a Path,
}

impl Parser<'_> {
    fn invalid(&self, message: String) -> Error {
        Error::InvalidConfig {
            path: self.path.to_path_buf(),
            message,
        }
    }

    fn usize(&self, key: &str, default: Option<usize>) -> Result<usize> {
        match self.raw.get(key) {
            Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| {
                self.invalid(format!("{key} must be a non-negative integer, got {v}"))
            }),
            None => default.ok_or_else(|| self.invalid(format!("missing key {key:?}"))),
        }
    }

    fn f64(&self, key: &str, default: f64) -> Result<f64> {
        match self.raw.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.invalid(format!("{key} must be a number, got {v}"))),
        }
    }

    fn parse(self) -> Result<BertConfig> {
        let path: PathBuf = self.path.to_path_buf();
        let architectures: Vec<String> = match self.raw.get("architectures") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect(),
            _ => Vec::new(),
        };
        if let Some(model_type) = self.raw.get("model_type").and_then(Value::as_str) {
            if model_type != "bert" {
                return Err(Error::UnknownArchitecture {
                    path,
                    found: format!("model_type {model_type}"),
                });
            }
        }
        if let Some(other) = architectures.iter().find(|a| !a.starts_with("Bert")) {
            return Err(Error::UnknownArchitecture {
                path,
                found: other.clone(),
            });
        }
        if let Some(kind) = self
            .raw
            .get("position_embedding_type")
            .and_then(Value::as_str)
        {
            if kind != "absolute" {
                return Err(self.invalid(format!(
                    "position_embedding_type {kind:?} is not supported (only \"absolute\")"
                )));
            }
        }
        let act_name = match self.raw.get("hidden_act") {
            None => "gelu",
            Some(v) => v
                .as_str()
                .ok_or_else(|| self.invalid(format!("hidden_act must be a string, got {v}")))?,
        };
        let hidden_act = Activation::parse(act_name)
            .ok_or_else(|| self.invalid(format!("hidden_act {act_name:?} is not supported")))?;
        let classifier_dropout = match self.raw.get("classifier_dropout") {
            None | Some(Value::Null) => None,
            Some(_) => Some(self.f64("classifier_dropout", 0.0)?),
        };
        let id2label = self.id2label()?;
        let cfg = BertConfig {
            vocab_size: self.usize("vocab_size", None)?,
            hidden_size: self.usize("hidden_size", None)?,
            num_hidden_layers: self.usize("num_hidden_layers", None)?,
            num_attention_heads: self.usize("num_attention_heads", None)?,
            intermediate_size: self.usize("intermediate_size", None)?,
            hidden_act,
            hidden_dropout_prob: self.f64("hidden_dropout_prob", 0.1)?,
            attention_probs_dropout_prob: self.f64("attention_probs_dropout_prob", 0.1)?,
            classifier_dropout,
            max_position_embeddings: self.usize("max_position_embeddings", Some(512))?,
            type_vocab_size: self.usize("type_vocab_size", Some(2))?,
            initializer_range: self.f64("initializer_range", 0.02)?,
            layer_norm_eps: self.f64("layer_norm_eps", 1e-12)?,
            pad_token_id: self.usize("pad_token_id", Some(0))? as u32,
            id2label,
            architectures,
            raw: self.raw.clone(),
        };
        self.check(&cfg)?;
        Ok(cfg)
    }

    fn id2label(&self) -> Result<Option<Vec<String>>> {
        let Some(map) = self.raw.get("id2label") else {
            return Ok(None);
        };
        let map = map
            .as_object()
            .ok_or_else(|| self.invalid("id2label must be an object".into()))?;
        let mut labels = vec![None; map.len()];
        for (key, name) in map {
            let index: usize = key
                .parse()
                .ok()
                .filter(|&i| i < labels.len())
                .ok_or_else(|| {
                    self.invalid(format!(
                        "id2label key {key:?} is not an id in 0..{}",
                        labels.len()
                    ))
                })?;
            labels[index] = Some(name.as_str().unwrap_or_default().to_string());
        }
        let labels: Option<Vec<String>> = labels.into_iter().collect();
        labels
            .map(Some)
            .ok_or_else(|| self.invalid("id2label has repeated ids".into()))
    }

    fn check(&self, cfg: &BertConfig) -> Result<()> {
        let positive = [
            ("vocab_size", cfg.vocab_size),
            ("hidden_size", cfg.hidden_size),
            ("num_hidden_layers", cfg.num_hidden_layers),
            ("num_attention_heads", cfg.num_attention_heads),
            ("intermediate_size", cfg.intermediate_size),
            ("max_position_embeddings", cfg.max_position_embeddings),
            ("type_vocab_size", cfg.type_vocab_size),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(self.invalid(format!("{key} must be positive")));
        }
        if !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            return Err(self.invalid(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                cfg.hidden_size, cfg.num_attention_heads
            )));
        }
        let probs = [
            ("hidden_dropout_prob", cfg.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                cfg.attention_probs_dropout_prob,
            ),
            ("classifier_dropout", cfg.classifier_dropout_prob()),
        ];
        if let Some((key, p)) = probs.iter().find(|(_, p)| !(0.0..1.0).contains(p)) {
            return Err(self.invalid(format!("{key} = {p} is not in [0, 1)")));
        }
        // `num_labels()` falls back to 2 on a value it cannot read; refuse one instead.
        self.usize("num_labels", Some(2))?;
        if cfg.num_labels() == 0 {
            return Err(self.invalid("the classifier has no labels".into()));
        }
        // Label names and a fresh head are built from this count before any weights are
        // read, so a typo such as `"num_labels": 1e12` must stop here.
        if cfg.num_labels() > MAX_LABELS {
            return Err(self.invalid(format!(
                "the classifier has {} labels, more than the {MAX_LABELS} supported",
                cfg.num_labels()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = r#"{"architectures":["BertForSequenceClassification"],"model_type":"bert",
        "vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,
        "intermediate_size":16,"hidden_act":"gelu","id2label":{"0":"neg","1":"pos"},
        "some_unknown_key":42}"#;

    #[test]
    fn parses_and_keeps_unknown_keys() {
        let cfg = BertConfig::from_json_str(TINY, Path::new("config.json")).unwrap();
        assert_eq!(cfg.num_labels(), 2);
        assert_eq!(cfg.head_size(), 4);
        assert!(cfg.is_classifier());
        let json = cfg.to_classifier_json(&["a".into(), "b".into(), "c".into()]);
        assert_eq!(json["some_unknown_key"], 42);
        assert_eq!(json["id2label"]["2"], "c");
        assert_eq!(json["label2id"]["b"], 1);
    }

    #[test]
    fn rejects_other_architectures_and_bad_sizes() {
        let roberta = TINY.replace("\"bert\"", "\"roberta\"");
        let err = BertConfig::from_json_str(&roberta, Path::new("x/config.json")).unwrap_err();
        assert!(matches!(err, Error::UnknownArchitecture { .. }), "{err}");
        assert!(err.to_string().contains("x/config.json"));

        let bad_heads = TINY.replace("\"num_attention_heads\":2", "\"num_attention_heads\":3");
        let err = BertConfig::from_json_str(&bad_heads, Path::new("config.json")).unwrap_err();
        assert!(err.to_string().contains("multiple"), "{err}");

        let bad_act = TINY.replace("\"gelu\"", "\"swiglu\"");
        assert!(BertConfig::from_json_str(&bad_act, Path::new("c")).is_err());
    }

    #[test]
    fn refuses_a_label_count_too_large_or_unreadable() {
        let base = TINY.replace(r#""id2label":{"0":"neg","1":"pos"},"#, "");
        let with = |n: &str| base.replacen('{', &format!("{{\"num_labels\":{n},"), 1);
        let cfg = BertConfig::from_json_str(&with("3"), Path::new("c")).unwrap();
        assert_eq!(cfg.num_labels(), 3);
        for (n, reason) in [
            ("1000000000000", "more than the 65536 supported"),
            ("\"two\"", "num_labels must be a non-negative integer"),
            ("-1", "num_labels must be a non-negative integer"),
        ] {
            let err = BertConfig::from_json_str(&with(n), Path::new("x/config.json")).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("x/config.json") && msg.contains(reason),
                "{msg}"
            );
        }
    }
}
