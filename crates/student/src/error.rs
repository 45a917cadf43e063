//! The student crate's error type.

use std::path::PathBuf;

/// Errors from building, running, saving or loading a student.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Data(#[from] distill_data::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: missing tensor `{name}`")]
    MissingTensor { path: PathBuf, name: String },
    #[error("{path}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape {
        path: PathBuf,
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("invalid student config: {0}")]
    Config(String),
    /// An outside program (PyTorch's timing script) that failed.
    #[error("{program}: {reason}")]
    Program { program: PathBuf, reason: String },
}

/// Result with the student [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
