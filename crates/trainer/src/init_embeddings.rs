//! A student's initial embedding table computed by the caller once the run has built its
//! vocabulary: the CLI computes it from a teacher's word embeddings (`distill_teacher::
//! student_embeddings`), which keeps this crate free of the teacher.

use std::sync::Arc;

use distill_data::Vocab;
use serde::{Serialize, Serializer};

use crate::{EmbeddingTable, Error, Result};

/// What the function of an [`InitEmbeddings`] may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type TableFn = dyn Fn(&Vocab, usize) -> std::result::Result<Vec<f32>, BoxError> + Send + Sync;

/// Where a run's initial embeddings come from (`source`, recorded in the run's
/// `config.json`) and how to compute them: `[vocab.len(), dim]` row-major values.
#[derive(Clone)]
pub struct InitEmbeddings {
    pub source: String,
    table: Arc<TableFn>,
}

impl InitEmbeddings {
    pub fn new(
        source: impl Into<String>,
        table: impl Fn(&Vocab, usize) -> std::result::Result<Vec<f32>, BoxError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            source: source.into(),
            table: Arc::new(table),
        }
    }

    /// The table for `vocab` at width `dim`, checked for size and finiteness.
    pub fn table(&self, vocab: &Vocab, dim: usize) -> Result<EmbeddingTable> {
        let fail = |reason: String| Error::InitialEmbeddings {
            source_name: self.source.clone(),
            reason,
        };
        let values = (self.table)(vocab, dim).map_err(|e| fail(e.to_string()))?;
        if values.len() != vocab.len() * dim {
            return Err(fail(format!(
                "{} values for a {} × {dim} table",
                values.len(),
                vocab.len()
            )));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(fail(format!(
                "non-finite value at token {}",
                vocab.itos()[i / dim.max(1)]
            )));
        }
        Ok(EmbeddingTable(values))
    }
}

impl std::fmt::Debug for InitEmbeddings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InitEmbeddings({})", self.source)
    }
}

impl Serialize for InitEmbeddings {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.source.serialize(s)
    }
}
