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
