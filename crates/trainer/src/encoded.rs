//! Sentences as a student reads them: token ids with their supervision.

use distill_data::{TeacherLogits, TextEncoder};
use rayon::prelude::*;

/// Token ids of each sentence with its gold label (if any) and teacher logits (if any).
#[derive(Clone, Debug, Default)]
pub struct EncodedSet {
    pub ids: Vec<Vec<u32>>,
    pub labels: Vec<Option<u32>>,
    /// Row-major `[len, num_labels]` when present.
    pub teacher: Option<Vec<f32>>,
    pub num_labels: usize,
}

impl EncodedSet {
    /// Encodes `texts` with `encoder`.
    pub fn encode(texts: &[&str], labels: Vec<Option<u32>>, encoder: &TextEncoder) -> Self {
        let ids = texts.par_iter().map(|t| encoder.encode(t)).collect();
        Self {
            ids,
            labels,
            teacher: None,
            num_labels: 2,
        }
    }

    /// Attaches teacher logits; `rows[i]` is the cache row of sentence `i`.
    pub fn with_teacher(mut self, logits: &TeacherLogits, rows: &[usize]) -> Self {
        let c = logits.num_labels;
        let mut t = Vec::with_capacity(rows.len() * c);
        for &r in rows {
            t.extend_from_slice(logits.row(r));
        }
        self.teacher = Some(t);
        self.num_labels = c;
        self
    }

    /// Number of sentences.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no sentences.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// This set followed by `other` (e.g. training sentences plus augmented ones).
    pub fn concat(mut self, other: EncodedSet) -> Self {
        self.ids.extend(other.ids);
        self.labels.extend(other.labels);
        self.teacher = match (self.teacher, other.teacher) {
            (Some(mut a), Some(b)) => {
                a.extend(b);
                Some(a)
            }
            _ => None,
        };
        self
    }

    /// Gold labels, where every sentence has one.
    pub fn gold(&self) -> Option<Vec<u32>> {
        self.labels.iter().copied().collect()
    }
}
