//! The crate's one error type: every variant names the file it concerns, so a message is
//! enough to find what to fix in the run folder.

use std::path::PathBuf;

/// What can go wrong while reading a run folder or writing its report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused a read or a write.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// A file of the run folder is unreadable or disagrees with the rest of the run.
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },

    /// A picture could not be drawn.
    #[error("drawing {}: {reason}", path.display())]
    Plot { path: PathBuf, reason: String },

    /// Reading the dev file, the scores or the training curves failed.
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

    pub(crate) fn file(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::File {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
