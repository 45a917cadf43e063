//! The trainer crate's error type.

use std::path::PathBuf;

/// Errors from training and evaluation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Data(#[from] distill_data::Error),
    #[error(transparent)]
    Student(#[from] distill_student::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{0}")]
    Config(String),
    /// The initial embedding table could not be computed.
    #[error("initial embeddings from {source_name}: {reason}")]
    InitialEmbeddings { source_name: String, reason: String },
}

/// Result with the trainer [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
