//! A loaded teacher: where it came from, its config, tokenizer and model on a device;
//! and writing it back as a Hugging Face folder.
//!
//! The folder written by [`Teacher::save`] is what transformers'
//! `BertForSequenceClassification.from_pretrained` loads as is: `config.json`
//! (`architectures: ["BertForSequenceClassification"]`, `id2label`, `label2id`),
//! `model.safetensors` (`bert.*`, `classifier.*`, metadata `format: pt`),
//! `tokenizer.json`, and the tokenizer's side files when the source had them. The whole
//! folder is written as `<dir>.partial` and swapped in by [`distill_data::io::replace_dir`],
//! so a kill leaves the old checkpoint or the new one, never a mix.

use std::io::Read;
use std::path::Path;

use candle_core::Device;
use sha2::{Digest, Sha256};

use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::model::BertClassifier;
use crate::source::{TeacherFiles, TeacherSource};
use crate::tokenize::TeacherTokenizer;
use crate::weights::{HeadInit, Params};
use distill_data::io::{partial_dir, replace_dir};
use distill_data::LabelSet;

/// Tokenizer files copied next to a saved checkpoint when the source has them.
const SIDE_FILES: [&str; 3] = [
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
];

/// What a checkpoint folder may hold: what [`Teacher::save`] writes, fine-tuning's
/// `metrics.jsonl` and `training.json`, and the weights of another format. A save replaces the whole folder,
/// so a folder with anything else is not overwritten.
const CHECKPOINT_FILES: [&str; 6] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "metrics.jsonl",
    "training.json",
    "pytorch_model.bin",
];

/// How to load a teacher.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Label names the classifier must produce (for fine-tuning a base model); `None`
    /// keeps the config's (`id2label`, or `num_labels` generic ones).
    pub labels: Option<Vec<String>>,
    /// Whether a checkpoint without a trained head is refused (the default) or gets a
    /// fresh one (fine-tuning).
    pub head: HeadInit,
    /// Seed for initialising a missing pooler or classifier.
    pub seed: u64,
    /// Longest token sequence, specials included (clamped to the model's positions).
    pub max_len: usize,
    /// Arithmetic of the encoder's matrix products (inference).
    pub precision: Precision,
}

/// The arithmetic of a teacher's encoder in inference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Precision {
    /// f32 throughout: logits match transformers to ~1e-5.
    #[default]
    F32,
    /// Matrix products on bf16-rounded inputs summed in f32, on Intel AMX tiles or
    /// AVX512-BF16: faster, logits within about 1e-2 of f32 ([`crate::layers::bf16`]).
    Bf16,
}

impl Precision {
    /// Whether this machine runs it (bf16 needs AVX512-BF16, or Intel AMX tiles and an OS
    /// that grants them).
    pub fn is_supported(self) -> bool {
        match self {
            Precision::F32 => true,
            Precision::Bf16 => crate::layers::bf16::available(),
        }
    }

    /// `"f32"` or `"bf16"`, as the logit cache records it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(Error::Setting(format!(
                "precision `{other}`: expected f32 or bf16"
            ))),
        }
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            labels: None,
            head: HeadInit::Required,
            seed: 42,
            max_len: 128,
            precision: Precision::F32,
        }
    }
}

/// A BERT classifier with its tokenizer, ready to run on a device.
pub struct Teacher {
    pub source: TeacherSource,
    pub files: TeacherFiles,
    pub tokenizer: TeacherTokenizer,
    pub model: BertClassifier,
    labels: Vec<String>,
}

impl std::fmt::Debug for Teacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Teacher")
            .field("source", &self.source)
            .field("labels", &self.labels)
            .finish()
    }
}

impl Teacher {
    /// Resolves `id_or_dir` (folder or hub id) and loads it onto `device`.
    pub fn load(id_or_dir: &str, opts: &LoadOptions, device: &Device) -> Result<Self> {
        Self::from_source(TeacherSource::resolve(id_or_dir)?, opts, device)
    }

    /// Loads a resolved teacher onto `device`.
    pub fn from_source(source: TeacherSource, opts: &LoadOptions, device: &Device) -> Result<Self> {
        let files = source.files()?;
        let mut config = BertConfig::from_file(&files.config)?;
        let labels = match &opts.labels {
            None => config.id2label.clone().unwrap_or_else(|| {
                (0..config.num_labels())
                    .map(|i| format!("LABEL_{i}"))
                    .collect()
            }),
            Some(wanted) => {
                // Fine-tuning may give a classifier another label set: its head starts anew.
                if config.is_classifier()
                    && config.num_labels() != wanted.len()
                    && opts.head == HeadInit::Required
                {
                    return Err(Error::Labels(format!(
                        "teacher {} classifies into {} labels, the data has {} ({})",
                        source.name(),
                        config.num_labels(),
                        wanted.len(),
                        wanted.join(", ")
                    )));
                }
                config = config.with_labels(wanted);
                wanted.clone()
            }
        };
        if labels.is_empty() {
            return Err(Error::Labels(
                "a classifier needs at least one label".into(),
            ));
        }
        let max_len = opts.max_len.min(config.max_position_embeddings);
        let tokenizer =
            TeacherTokenizer::load(&files.tokenizer, files.tokenizer_config.as_deref(), max_len)?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(Error::ConfigMismatch {
                path: files.config.clone(),
                message: format!(
                    "the tokenizer has {} tokens, the embeddings only {} (vocab_size)",
                    tokenizer.vocab_size(),
                    config.vocab_size
                ),
            });
        }
        let params = Params::load(
            &files.weights,
            &config,
            labels.len(),
            opts.head,
            opts.seed,
            device,
        )?;
        tracing::info!(
            teacher = %source.name(),
            layers = config.num_hidden_layers,
            hidden = config.hidden_size,
            params = params.count(),
            labels = labels.len(),
            "teacher loaded"
        );
        let mut model = BertClassifier::new(config, params)?;
        if opts.precision == Precision::Bf16 {
            model.pack_bf16()?;
        }
        Ok(Self {
            source,
            files,
            tokenizer,
            model,
            labels,
        })
    }

    /// The arithmetic of the encoder's matrix products.
    pub fn precision(&self) -> Precision {
        if self.model.is_bf16() {
            Precision::Bf16
        } else {
            Precision::F32
        }
    }

    /// Label names in output order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Checks that the classifier's labels are `data`'s, by name and order. Labels a
    /// config does not name (transformers' `LABEL_0`, `LABEL_1`, …) are matched on their
    /// count alone.
    pub fn check_labels(&self, data: &LabelSet) -> Result<()> {
        let unnamed = self
            .labels
            .iter()
            .enumerate()
            .all(|(i, name)| *name == format!("LABEL_{i}"));
        let same = match unnamed {
            true => self.labels.len() == data.len(),
            false => self.labels == data.names(),
        };
        if same {
            return Ok(());
        }
        Err(Error::LabelMismatch {
            teacher: self.source.name(),
            model: self.labels.clone(),
            data: data.names().to_vec(),
        })
    }

    /// The device the model is on.
    pub fn device(&self) -> &Device {
        self.model.device()
    }

    /// SHA-256 (hex) over the bytes of `config.json` followed by the weights file: the
    /// identity a logit cache records.
    pub fn sha256(&self) -> Result<String> {
        let mut hasher = Sha256::new();
        for path in [&self.files.config, &self.files.weights.path().to_path_buf()] {
            let mut file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file
                    .read(&mut buf)
                    .map_err(|e| Error::io("read", path, e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
        }
        Ok(hex::encode(hasher.finalize()))
    }

    /// Writes the current weights as a Hugging Face `BertForSequenceClassification`
    /// folder (see the module doc), replacing `dir` as a whole.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.save_with(dir, &[])
    }

    /// As [`Teacher::save`], with `extra` files (name, bytes) in the same folder, swapped
    /// in with it (fine-tuning's `metrics.jsonl`).
    pub fn save_with(&self, dir: &Path, extra: &[(&str, &[u8])]) -> Result<()> {
        check_replaceable(dir)?;
        let partial = partial_dir(dir);
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(|e| Error::io("remove", &partial, e))?;
        }
        std::fs::create_dir_all(&partial).map_err(|e| Error::io("create", &partial, e))?;
        let write = |name: &str, bytes: &[u8]| {
            let path = partial.join(name);
            std::fs::write(&path, bytes).map_err(|e| Error::io("write", path, e))
        };
        write("model.safetensors", &self.model.params().to_safetensors()?)?;
        write("tokenizer.json", self.tokenizer.to_json()?.as_bytes())?;
        for name in SIDE_FILES {
            let from = self.files.dir.join(name);
            if from.is_file() {
                let bytes = std::fs::read(&from).map_err(|e| Error::io("read", &from, e))?;
                write(name, &bytes)?;
            }
        }
        let config = self.model.config().to_classifier_json(&self.labels);
        let text = serde_json::to_string_pretty(&config).map_err(|source| Error::Json {
            path: dir.join("config.json"),
            source,
        })?;
        write("config.json", text.as_bytes())?;
        for (name, bytes) in extra {
            write(name, bytes)?;
        }
        Ok(replace_dir(&partial, dir)?)
    }
}

/// Refuses to replace a folder that holds more than a teacher checkpoint (e.g. `--out .`).
pub fn check_replaceable(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut foreign: Vec<String> = entries
        .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
        .filter(|name| {
            let temporary = name.starts_with('.') && name.contains(".tmp.");
            !temporary
                && !CHECKPOINT_FILES.contains(&name.as_str())
                && !SIDE_FILES.contains(&name.as_str())
        })
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    foreign.sort();
    Err(Error::NotACheckpoint {
        path: dir.to_path_buf(),
        foreign,
    })
}
