//! The one error type of the crate: slices that do not fit together.

/// Sizes or row indices that do not fit the tensor they address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{what} has {got} values, expected {expected}")]
    Size {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("row {row} is outside a table of {rows} rows")]
    RowOutOfRange { row: u32, rows: usize },
    #[error("sparse rows must be sorted and distinct: row {row} follows row {previous}")]
    RowsUnsorted { previous: u32, row: u32 },
    #[error("row {row} is given twice in one step")]
    RowRepeated { row: u32 },
    #[error("a row is at step {row_step}, after the {steps} steps taken")]
    StateAhead { row_step: u64, steps: u64 },
}

pub type Result<T> = std::result::Result<T, Error>;

/// `Err(Size)` unless `got == expected`.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::Size {
            what,
            expected,
            got,
        })
    }
}
