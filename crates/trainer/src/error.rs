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
    /// A shared numerics kernel refused its input (sizes, rows out of range).
    #[error(transparent)]
    Ops(#[from] distill_ops::Error),
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
    /// A setting out of its range (NaN, ±inf, or a value the loss cannot use).
    #[error("{name} = {value}: {reason}")]
    InvalidSetting {
        name: &'static str,
        value: f64,
        reason: &'static str,
    },
    /// A batch's training loss is NaN or ±inf; nothing of this epoch was saved.
    #[error(
        "training loss is {loss} at epoch {epoch}, step {step} of {steps}; stopped, {} \
         (lower --lr, check --alpha/--temperature and the logit caches)",
        kept_note(out, *kept)
    )]
    NonFiniteLoss {
        out: PathBuf,
        epoch: usize,
        step: usize,
        steps: usize,
        loss: f64,
        kept: usize,
    },
    /// The validation loss after an epoch is NaN or ±inf; nothing of this epoch was saved.
    #[error(
        "validation loss is {loss} after epoch {epoch}; stopped, {}",
        kept_note(out, *kept)
    )]
    NonFiniteValLoss {
        out: PathBuf,
        epoch: usize,
        loss: f64,
        kept: usize,
    },
    /// Resuming a run folder with other data than it was trained on.
    #[error(
        "{} was trained on other data: {}; to start fresh, delete {} or pick another --out",
        out.display(),
        changes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        out.display()
    )]
    DataChanged {
        out: PathBuf,
        changes: Vec<crate::DataChange>,
    },
}

/// Where the last good checkpoint is, for the non-finite loss errors.
fn kept_note(out: &std::path::Path, epochs: usize) -> String {
    match epochs {
        0 => "no epoch was saved".into(),
        n => format!("{} keeps epoch {n}", out.join("last").display()),
    }
}

/// Result with the trainer [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
