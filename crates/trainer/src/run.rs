//! A whole student training run from files: read, split, build the vocabulary, encode,
//! attach teacher logits, train. The CLI's `distill student train` is this struct.

use std::fs;
use std::path::{Path, PathBuf};

use candle_core::Device;
use distill_data::{
    io::write_atomic, Dataset, LabelSet, Normalizer, TaskSpec, TeacherLogits, TextEncoder,
    Tokenization, ValSplit, VocabBuilder,
};
use distill_student::{StudentConfig, StudentPreset};
use serde::Serialize;

use crate::error::io_err;
use crate::fingerprint::{file_sha256, split_sha256, vocab_sha256};
use crate::train::check_resume;
use crate::{
    train, DataFingerprint, EncodedSet, Error, InitEmbeddings, Result, TrainConfig, TrainOutcome,
};

/// The token that masked words become in augmented sentences.
pub use distill_data::MASK_TOKEN;

/// Teacher-labelled transfer text: augmented sentences (`distill augment`) or the
/// user's unlabelled in-domain text, read with the run's task columns. Rows without a
/// label train on the teacher term alone; a labelled row also gets the label term.
#[derive(Clone, Debug, Serialize)]
pub struct Augmentation {
    /// The texts (pairs for a pair task), one per row.
    pub data: PathBuf,
    /// The teacher's logits over `data`.
    pub logits: PathBuf,
}

/// Everything a `distill student train` run needs.
#[derive(Clone, Debug, Serialize)]
pub struct StudentRun {
    pub train_path: PathBuf,
    pub out: PathBuf,
    /// Format and columns of the data files.
    pub task: TaskSpec,
    /// Label names in id order; `None`: the teacher logits' labels, or else the
    /// training file's (see [`LabelSet::from_occurring`]).
    pub labels: Option<LabelSet>,
    pub preset: StudentPreset,
    /// Share of the training file held out for validation (stratified).
    pub val_share: f64,
    /// Rows one by one, or whole sentences with their phrases.
    pub val_split: ValSplit,
    /// Seed of the validation split (the training seed is in `train`).
    pub split_seed: u64,
    pub normalize: bool,
    pub max_vocab: usize,
    pub min_freq: usize,
    pub max_len: usize,
    /// Teacher logits over `train_path`, in its order (distillation).
    pub logits: Option<PathBuf>,
    pub augment: Option<Augmentation>,
    /// Read WordPieces with this `tokenizer.json` (the teacher's) instead of words.
    pub wordpiece: Option<PathBuf>,
    /// Initialise the embedding table from these values (e.g. a teacher's, by PCA).
    pub init_embeddings: Option<InitEmbeddings>,
    pub train: TrainConfig,
}

impl StudentRun {
    /// Defaults of the original tutorial for `train_path` → `out`.
    pub fn new(train_path: PathBuf, out: PathBuf) -> Self {
        Self {
            train_path,
            out,
            task: TaskSpec::default(),
            labels: None,
            preset: StudentPreset::original(),
            val_share: 0.2,
            val_split: ValSplit::Rows,
            split_seed: 0,
            normalize: true,
            max_vocab: 10_000,
            min_freq: 1,
            max_len: 128,
            logits: None,
            augment: None,
            wordpiece: None,
            init_embeddings: None,
            train: TrainConfig::default(),
        }
    }

    /// Refuses settings out of range (NaN/±inf included) before anything is read.
    pub fn validate(&self) -> Result<()> {
        if !(self.val_share > 0.0 && self.val_share < 1.0) {
            return Err(Error::InvalidSetting {
                name: "val_share",
                value: self.val_share,
                reason: "must be in (0, 1)",
            });
        }
        self.preset.validate()?;
        self.train.validate()
    }

    /// A logit cache for `data`, checked against the data, its label names and, when the
    /// loss reads teacher logits, the loss's outputs (before any loss can index past a row).
    fn read_logits(&self, path: &Path, data: &Dataset, labels: &LabelSet) -> Result<TeacherLogits> {
        self.check_logits(TeacherLogits::load(path)?, data, labels)
    }

    /// The checks of [`Self::read_logits`] on a cache already loaded.
    fn check_logits(
        &self,
        logits: TeacherLogits,
        data: &Dataset,
        labels: &LabelSet,
    ) -> Result<TeacherLogits> {
        if self.train.loss.needs_teacher() {
            logits.check_columns(self.train.loss.num_outputs(labels.len()))?;
        }
        logits.check_matches(data, labels)?;
        Ok(logits)
    }

    /// The label set: given; or the teacher's (the cache's columns, in its order) when they
    /// cover the training file's labels; or else the training file's. A cache that does not
    /// cover them is refused later, by name, when it is checked against the data.
    fn label_set(&self, train_logits: Option<&TeacherLogits>) -> Result<LabelSet> {
        if let Some(labels) = &self.labels {
            return Ok(labels.clone());
        }
        let from_file = Dataset::label_set_of(&self.train_path, &self.task);
        let cache = train_logits.filter(|_| self.train.loss.needs_teacher());
        let Some(cache) = cache else {
            return Ok(from_file?);
        };
        // A file without (enough) labels distils from the teacher alone.
        let teacher = LabelSet::new(cache.meta.labels.clone());
        Ok(LabelSet::for_distillation(from_file.ok(), teacher))
    }

    /// The training file: every row labelled unless the loss has a teacher term.
    fn read_train(&self, labels: &LabelSet) -> Result<Dataset> {
        Ok(if self.train.loss.needs_teacher() {
            Dataset::read_with(&self.train_path, &self.task, labels)?
        } else {
            Dataset::read_labelled(&self.train_path, &self.task, labels, "baseline training")?
        })
    }

    /// Runs it; the trained model is in `out/best`.
    pub fn run(&self, device: &Device) -> Result<TrainOutcome> {
        self.validate()?;
        // The training cache is read once: its label names may set the label set.
        let train_cache = self
            .logits
            .as_deref()
            .map(TeacherLogits::load)
            .transpose()?;
        let labels = self.label_set(train_cache.as_ref())?;
        self.train.loss.check_labels(&labels)?;
        let data = self.read_train(&labels)?;
        let pairs = data.is_pairs();
        let (train_rows, val_rows) = self
            .val_split
            .indices(&data, self.val_share, self.split_seed);
        if train_rows.is_empty() || val_rows.is_empty() {
            return Err(Error::Config(format!(
                "{}: {} sentences leave an empty training or validation part at --val-share {}",
                self.train_path.display(),
                data.len(),
                self.val_share
            )));
        }
        let tokenization = match &self.wordpiece {
            Some(path) => Tokenization::wordpiece(path)?,
            None => Tokenization::Words(Normalizer::new(self.normalize)),
        };
        // A pair student reads both texts with one vocabulary.
        let tokens: Vec<Vec<String>> = train_rows
            .iter()
            .flat_map(|&i| {
                let e = &data.examples[i];
                std::iter::once(&e.text).chain(&e.text_pair)
            })
            .map(|t| tokenization.tokens(t))
            .collect();
        let mut builder = VocabBuilder {
            max_size: self.max_vocab,
            min_freq: self.min_freq,
            ..VocabBuilder::default()
        };
        if self.augment.is_some() {
            builder.specials.push(tokenization.mask_token().to_string());
        }
        let encoder = TextEncoder::new(
            tokenization,
            builder.build(tokens.iter().map(Vec::as_slice)),
        );
        let vocab = &encoder.vocab;
        tracing::info!(
            "{} training / {} validation sentences, vocabulary of {} tokens",
            train_rows.len(),
            val_rows.len(),
            vocab.len()
        );

        let encode = |rows: &[usize]| encode_rows(&data.subset(rows), &encoder, labels.len());
        let (mut train_set, mut val_set) = (encode(&train_rows), encode(&val_rows));
        let train_logits = train_cache
            .map(|l| self.check_logits(l, &data, &labels))
            .transpose()?;
        if let Some(logits) = &train_logits {
            train_set = train_set.with_teacher(logits, &train_rows);
            val_set = val_set.with_teacher(logits, &val_rows);
        }
        if let Some(aug) = &self.augment {
            let extra = Dataset::read_with(&aug.data, &self.task, &labels)?;
            if extra.is_pairs() != pairs {
                return Err(Error::Config(format!(
                    "{}: the transfer text is {} but the training file is {}",
                    aug.data.display(),
                    if extra.is_pairs() {
                        "sentence pairs"
                    } else {
                        "single texts"
                    },
                    if pairs {
                        "sentence pairs"
                    } else {
                        "single texts"
                    },
                )));
            }
            let logits = self.read_logits(&aug.logits, &extra, &labels)?;
            if let Some(train_logits) = &train_logits {
                train_logits.check_compatible(&logits)?;
            }
            let rows: Vec<usize> = (0..extra.len()).collect();
            let set = encode_rows(&extra, &encoder, labels.len()).with_teacher(&logits, &rows);
            tracing::info!(
                "{} transfer examples ({} labelled) from {}",
                set.len(),
                extra.examples.iter().filter(|e| e.label.is_some()).count(),
                aug.data.display()
            );
            train_set = train_set.concat(set);
        }

        let mut student = StudentConfig::new(
            &self.preset,
            vocab.len(),
            self.train.loss.num_outputs(labels.len()),
        )
        .with_labels(&labels)
        .with_pair(pairs);
        student.normalize = self.normalize;
        student.max_len = self.max_len;
        student.tokenizer = encoder.tokenization.name().into();
        let mut train_cfg = self.train.clone();
        train_cfg.data = Some(DataFingerprint {
            train: file_sha256(&self.train_path)?,
            val_share: self.val_share,
            split_seed: self.split_seed,
            split: split_sha256(&train_rows, &val_rows),
            vocab: vocab_sha256(vocab),
            logits: self.logits.as_deref().map(file_sha256).transpose()?,
            augment: self
                .augment
                .as_ref()
                .map(|a| file_sha256(&a.data))
                .transpose()?,
            augment_logits: self
                .augment
                .as_ref()
                .map(|a| file_sha256(&a.logits))
                .transpose()?,
        });
        // Before anything in `out` is rewritten: a refused resume leaves the run as it was.
        check_resume(&train_cfg, &student, &self.out)?;
        if let Some(init) = &self.init_embeddings {
            train_cfg.initial_embedding = Some(init.table(vocab, student.embedding_dim)?);
        }
        fs::create_dir_all(&self.out).map_err(io_err(&self.out))?;
        let cfg_path = self.out.join("config.json");
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::Config(e.to_string()))?;
        write_atomic(&cfg_path, &json).map_err(io_err(&cfg_path))?;
        train(
            &train_cfg, &student, &encoder, &train_set, &val_set, &self.out, device,
        )
    }
}

/// `data`'s texts (or pairs) as ids, with their labels.
fn encode_rows(data: &Dataset, encoder: &TextEncoder, num_labels: usize) -> EncodedSet {
    let gold = data.examples.iter().map(|e| e.label).collect();
    match data.text_pairs().filter(|_| data.is_pairs()) {
        Some(b) => EncodedSet::encode_pairs(&data.texts(), &b, gold, encoder, num_labels),
        None => EncodedSet::encode(&data.texts(), gold, encoder, num_labels),
    }
}
