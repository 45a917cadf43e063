//! The teacher crate's one error type.
//!
//! Every failure that a user can cause (a missing file, a tensor of the wrong shape, a
//! config that does not describe the weights, a model that is not a BERT) names the file
//! and, where there is one, the tensor, so that the message alone says what to fix.

use std::path::PathBuf;

/// What can go wrong while loading, training or running a teacher.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file the teacher needs is not there.
    #[error("{what} not found: {path} ({hint})")]
    MissingFile {
        what: &'static str,
        path: PathBuf,
        hint: String,
    },

    /// Reading or writing a file failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A JSON file could not be parsed or does not have the expected fields.
    #[error("invalid JSON in {path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// The config names a model this crate does not implement.
    #[error("{path}: unsupported architecture {found:?} (expected a BERT: model_type \"bert\", architectures Bert*)")]
    UnknownArchitecture { path: PathBuf, found: String },

    /// The config is internally inconsistent or has a value out of range.
    #[error("{path}: invalid config: {message}")]
    InvalidConfig { path: PathBuf, message: String },

    /// A tensor the model needs is not in the weights file.
    #[error("{path}: tensor {name:?} is missing from the weights")]
    MissingTensor { path: PathBuf, name: String },

    /// Labelling or evaluating needs a trained classification head; the weights have none.
    #[error(
        "{path}: no trained classification head: {} missing from the weights{}; fine-tune the model first (`distill teacher finetune`), only fine-tuning starts a head from scratch",
        missing.join(", "),
        unused_note(unused)
    )]
    NoTrainedHead {
        path: PathBuf,
        missing: Vec<String>,
        /// Checkpoint tensors the model does not use (a head under other names?).
        unused: Vec<String>,
    },

    /// A checkpoint would replace a folder that holds other files.
    #[error("{path} holds {} besides a teacher checkpoint; a save replaces the whole folder: choose a new or empty output folder", foreign.join(", "))]
    NotACheckpoint { path: PathBuf, foreign: Vec<String> },

    /// The teacher's label names are not the data's.
    #[error("teacher {teacher} classifies into [{}], the data's labels are [{}]; pass the teacher's label names, in its order, as the data's labels (--labels {})", model.join(", "), data.join(", "), model.join(","))]
    LabelMismatch {
        teacher: String,
        model: Vec<String>,
        data: Vec<String>,
    },

    /// A tensor has a different shape than the config implies.
    #[error("{path}: tensor {name:?} has shape {found:?}, but config.json implies {expected:?}")]
    ShapeMismatch {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    /// The weights describe a different model than the config (e.g. more layers).
    #[error("{path}: weights do not match config.json: {message}")]
    ConfigMismatch { path: PathBuf, message: String },

    /// The weights file itself could not be read.
    #[error("cannot read weights {path}: {source}")]
    Weights {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },

    /// A hub id could not be resolved (not cached, and the hub was not reachable).
    #[error("cannot resolve hub model {id:?}: {message}")]
    Hub { id: String, message: String },

    /// The tokenizer could not be loaded, built or run.
    #[error("tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },

    /// The labels of the data do not fit the teacher's classifier.
    #[error("labels: {0}")]
    Labels(String),

    /// A training or inference setting is out of range.
    #[error("invalid setting: {0}")]
    Setting(String),

    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// Reading data or writing the logit cache failed.
    #[error(transparent)]
    Data(#[from] distill_data::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn unused_note(unused: &[String]) -> String {
    const SHOWN: usize = 6;
    match unused.len() {
        0 => String::new(),
        n if n <= SHOWN => format!(" (unused tensors: {})", unused.join(", ")),
        n => format!(
            " (unused tensors: {}, … {} more)",
            unused[..SHOWN].join(", "),
            n - SHOWN
        ),
    }
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
