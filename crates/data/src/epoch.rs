//! `metrics.jsonl`: one [`EpochRecord`] per line, written by student training (one line
//! per epoch) and teacher fine-tuning (one line per dev evaluation), read back by a resumed
//! run and by the report's training curves.
//!
//! ```text
//! {"epoch":1,"train_loss":0.61,"val_loss":0.52,"val_acc":0.74,"val_ap":0.81,"val_f1":0.75,"lr":0.001,"epoch_seconds":2.3}
//! {"epoch":1,"step":267,"train_loss":1.41,…}          (teacher: the step of the evaluation)
//! ```
//!
//! Files written before a field existed still read: `step` is absent for students, and
//! `val_ap`, `val_f1`, `lr` and `epoch_seconds` read as 0 when missing.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// File name of the per-epoch records inside a run folder.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// One line of `metrics.jsonl`: training and validation numbers after an epoch (or, for
/// the teacher, after an evaluation inside one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Optimiser steps so far (teacher fine-tuning; students leave it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// Mean training loss since the previous record.
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    /// Average precision on validation (macro one-vs-rest beyond two labels).
    #[serde(default)]
    pub val_ap: f64,
    /// F1 on validation (of label 1 for two labels, else macro-F1).
    #[serde(default)]
    pub val_f1: f64,
    /// Learning rate of the last step.
    #[serde(default)]
    pub lr: f64,
    /// Seconds spent in training steps since the previous record, evaluation excluded.
    #[serde(default)]
    pub epoch_seconds: f64,
}

impl EpochRecord {
    /// The records of a `metrics.jsonl` file, in file order (blank lines skipped).
    pub fn read_jsonl(path: &Path) -> Result<Vec<EpochRecord>> {
        let text = std::fs::read_to_string(path).map_err(|error| Error::Io {
            action: "read",
            path: path.to_path_buf(),
            error,
        })?;
        Self::parse_jsonl(path, &text)
    }

    /// The records in `text`, the contents of `path` (named in errors).
    pub fn parse_jsonl(path: &Path, text: &str) -> Result<Vec<EpochRecord>> {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map_err(|e| Error::parse(path, i + 1, format!("not an epoch record: {e}")))
            })
            .collect()
    }

    /// `records` as the text of a `metrics.jsonl` file: one JSON object per line.
    pub fn to_jsonl(records: &[EpochRecord]) -> String {
        records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap_or_default() + "\n")
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, step: Option<usize>) -> EpochRecord {
        EpochRecord {
            epoch,
            step,
            train_loss: 0.5,
            val_loss: 0.25,
            val_acc: 0.75,
            val_ap: 0.8,
            val_f1: 0.7,
            lr: 1e-3,
            epoch_seconds: 1.5,
        }
    }

    #[test]
    fn round_trips_students_and_teachers() {
        let records = vec![record(1, None), record(2, Some(40))];
        let text = EpochRecord::to_jsonl(&records);
        assert!(!text.lines().next().unwrap().contains("step"), "{text}");
        assert!(
            text.lines().nth(1).unwrap().contains("\"step\":40"),
            "{text}"
        );
        let back = EpochRecord::parse_jsonl(Path::new("m.jsonl"), &text).unwrap();
        assert_eq!(back, records);
    }

    #[test]
    fn reads_older_files_and_names_bad_lines() {
        // The shape the report read before the record was shared: four fields.
        let old = "{\"epoch\":1,\"train_loss\":0.5,\"val_loss\":0.4,\"val_acc\":0.8}\n\n";
        let r = EpochRecord::parse_jsonl(Path::new("m.jsonl"), old).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].epoch, r[0].val_acc, r[0].lr, r[0].step),
            (1, 0.8, 0.0, None)
        );
        let bad =
            "{\"epoch\":1,\"train_loss\":0.5,\"val_loss\":0.4,\"val_acc\":0.8}\n{\"epoch\":2}\n";
        let e = EpochRecord::parse_jsonl(Path::new("m.jsonl"), bad).unwrap_err();
        assert!(
            e.to_string().starts_with("m.jsonl:2: not an epoch record"),
            "{e}"
        );
    }
}
