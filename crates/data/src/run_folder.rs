//! Where a pipeline run keeps its files: the one layout `cargo xtask pipeline` writes and
//! `distill report` reads. Paths only; nothing here touches the disk.
//!
//! ```text
//! <run>/
//!   data/{train,dev,test,unlabelled,augment,transfer}.tsv   the task's files, as TSV
//!   teacher/                       config.json, model.safetensors, tokenizer.json
//!   logits/<set>.safetensors       teacher logits (train, augment or transfer)
//!   students/<student>/            config.json (how it was trained), metrics.jsonl,
//!                                  best/{config.json, vocab.json, model.safetensors}
//!   eval/<model>.json              `distill teacher eval --json` / `distill eval --json` on dev
//!   eval/<model>.scores            their `--scores`: class probabilities per dev row
//!   eval/test/<model>.json         the same on a test file (optional)
//!   bench/<student>.json           `distill bench --json` (optional)
//!   pipeline.json                  the pipeline's record: name, devices, settings, stage
//!                                  times and commands, and a description
//! ```

use std::path::{Path, PathBuf};

/// The files of a run folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFolder {
    pub dir: PathBuf,
}

impl RunFolder {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    /// The task's training file, rewritten as TSV.
    pub fn train(&self) -> PathBuf {
        self.dir.join("data/train.tsv")
    }
    /// The dev file the models are scored on.
    pub fn dev(&self) -> PathBuf {
        self.dir.join("data/dev.tsv")
    }
    pub fn test(&self) -> PathBuf {
        self.dir.join("data/test.tsv")
    }
    pub fn unlabelled(&self) -> PathBuf {
        self.dir.join("data/unlabelled.tsv")
    }
    pub fn augmented(&self) -> PathBuf {
        self.dir.join("data/augment.tsv")
    }
    /// Augmented samples and unlabelled text together (only when there is unlabelled text).
    pub fn transfer(&self) -> PathBuf {
        self.dir.join("data/transfer.tsv")
    }
    pub fn teacher(&self) -> PathBuf {
        self.dir.join("teacher")
    }
    /// The teacher's logits of the set `name` (`train`, `augment` or `transfer`).
    pub fn logits(&self, name: &str) -> PathBuf {
        self.dir.join("logits").join(format!("{name}.safetensors"))
    }
    pub fn student(&self, name: &str) -> PathBuf {
        self.dir.join("students").join(name)
    }
    /// Dev metrics of `model` (`teacher` or a student's name).
    pub fn eval(&self, model: &str) -> PathBuf {
        self.dir.join("eval").join(format!("{model}.json"))
    }
    /// Test metrics of `model`.
    pub fn eval_test(&self, model: &str) -> PathBuf {
        self.dir.join("eval/test").join(format!("{model}.json"))
    }
    /// Class probabilities of `model` per dev row.
    pub fn scores(&self, model: &str) -> PathBuf {
        self.dir.join("eval").join(format!("{model}.scores"))
    }
    pub fn bench(&self, model: &str) -> PathBuf {
        self.dir.join("bench").join(format!("{model}.json"))
    }
    pub fn pipeline_json(&self) -> PathBuf {
        self.dir.join("pipeline.json")
    }
    /// The files of a model folder that define it (teacher: Hugging Face layout; student:
    /// ours); their sizes add up to the model's size on disk.
    pub fn model_files(dir: &Path, teacher: bool) -> Vec<PathBuf> {
        let names: &[&str] = if teacher {
            &["config.json", "model.safetensors", "tokenizer.json"]
        } else {
            &["config.json", "vocab.json", "model.safetensors"]
        };
        names.iter().map(|n| dir.join(n)).collect()
    }
}
