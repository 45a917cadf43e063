//! The crate's one error type. Every variant names the file it concerns (when
//! there is one) and says in plain words what is wrong, so a message printed
//! by the CLI is enough to fix the input without reading code.

use std::path::PathBuf;

/// Everything that can go wrong while reading, checking or writing data files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused a read or a write.
    #[error("cannot {action} {}: {error}", path.display())]
    Io {
        /// What we were doing: "read", "write", …
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },

    /// A line of a data file is malformed (bad column count, unknown label,
    /// invalid UTF-8, missing header …).
    #[error("{}:{line}: {reason}", path.display())]
    Parse {
        /// The data file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with that line.
        reason: String,
    },

    /// A whole file is unusable (not valid JSON, tensor missing, wrong shape,
    /// cannot be written in the requested format …).
    #[error("{}: {reason}", path.display())]
    Format {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A teacher-logit cache was made for different data than it is used with.
    #[error(
        "{}: the teacher logits were computed for {found_count} sentences with data sha256 \
         {found_sha256}, but the data set has {expected_count} sentences with data sha256 \
         {expected_sha256}; relabel the data with `distill teacher label`",
        path.display()
    )]
    LogitsMismatch {
        /// The logit cache (or `<in memory>` when it was never saved or loaded).
        path: PathBuf,
        /// Number of sentences in the data set.
        expected_count: usize,
        /// Number of rows in the cache.
        found_count: usize,
        /// Fingerprint of the data set ([`crate::Dataset::fingerprint`]).
        expected_sha256: String,
        /// Fingerprint recorded in the cache.
        found_sha256: String,
    },

    /// A logit cache holds NaN or ±inf, which would poison every loss computed from it.
    #[error(
        "{}: the teacher logit at row {row}, column {column} (0-based) is {value}; a logit \
         cache must hold finite numbers; relabel the data with `distill teacher label`",
        path.display()
    )]
    NonFiniteLogit {
        /// The logit cache.
        path: PathBuf,
        /// Row (sentence) index, 0-based.
        row: usize,
        /// Column (label) index, 0-based.
        column: usize,
        /// The offending value.
        value: f32,
    },

    /// A logit cache's columns are named differently from the labels they are used with.
    #[error(
        "{}: the teacher logits' columns are the labels [{}], but the data's labels are [{}]; \
         label the data with a teacher whose labels (id2label) are these, in this order",
        path.display(), found.join(", "), expected.join(", ")
    )]
    LabelsMismatch {
        /// The logit cache.
        path: PathBuf,
        /// The data's label names, in id order.
        expected: Vec<String>,
        /// The label names recorded in the cache.
        found: Vec<String>,
    },

    /// Two logit caches used in one run do not come from the same teacher.
    #[error(
        "{} and {} were not written by the same teacher: {reason}; label both data sets \
         with one teacher (`distill teacher label`)",
        path.display(), other.display()
    )]
    TeacherMismatch {
        /// The first cache (e.g. the training set's).
        path: PathBuf,
        /// The second cache (e.g. the transfer set's).
        other: PathBuf,
        /// What differs.
        reason: String,
    },

    /// An argument or in-memory value is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An [`Error::Io`] for `action` on `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            error,
        }
    }

    /// An [`Error::Format`] for `path`.
    pub fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// An [`Error::Parse`] for 1-based `line` of `path`.
    pub fn parse(path: impl Into<PathBuf>, line: usize, reason: impl Into<String>) -> Self {
        Error::Parse {
            path: path.into(),
            line,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_line_and_reason() {
        let e = Error::parse("data/train.tsv", 7, "label `2` is not one of 0, 1");
        assert_eq!(
            e.to_string(),
            "data/train.tsv:7: label `2` is not one of 0, 1"
        );
        let e = Error::io(
            "read",
            "x.json",
            std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        );
        assert_eq!(e.to_string(), "cannot read x.json: gone");
    }

    #[test]
    fn mismatch_message_says_how_to_fix() {
        let e = Error::LogitsMismatch {
            path: "l.safetensors".into(),
            expected_count: 3,
            found_count: 4,
            expected_sha256: "aa".into(),
            found_sha256: "bb".into(),
        };
        let m = e.to_string();
        for part in [
            "l.safetensors",
            "4 sentences",
            "3 sentences",
            "aa",
            "bb",
            "distill teacher label",
        ] {
            assert!(m.contains(part), "{m} lacks {part}");
        }
    }
}
