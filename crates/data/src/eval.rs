//! What an evaluation writes, for the student (`distill eval`) and the teacher
//! (`distill teacher eval`) alike, and what the report reads back:
//!
//! - [`EvalRecord`]: the `--json` object, label names in id order then the [`Metrics`]
//!   (`n`, `acc`, `ap`, `f1`, `macro_f1`, `classes`, `class_ap`, `confusion`, whose
//!   per-class entries and confusion rows and columns follow those names), and for the
//!   teacher the loss and the timing of its pass;
//! - the scores file ([`write_scores`], [`read_scores`]): each row's class probabilities,
//!   one tab-separated line per row in input order and label order;
//! - [`metrics_text`]: the same numbers as a table for people.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::dataset::LabelSet;
use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// The `--json` output of an evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Label names in id order (a class past the label set's end is called `?`).
    pub labels: Vec<String>,
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Mean cross-entropy (teacher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Wall time of the batched pass (teacher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Rows per second of that pass, raw text in (teacher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentences_per_second: Option<f64>,
    /// Median microseconds of a single-row pass (teacher, when timed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us_median: Option<f64>,
}

impl EvalRecord {
    /// `metrics` with their classes named from `labels`, nothing timed.
    pub fn new(labels: &LabelSet, metrics: Metrics) -> Self {
        let labels = (0..metrics.num_classes())
            .map(|k| labels.name(k as u32).unwrap_or("?").to_string())
            .collect();
        Self {
            labels,
            metrics,
            loss: None,
            seconds: None,
            sentences_per_second: None,
            latency_us_median: None,
        }
    }
}

/// Writes each row's class probabilities as one tab-separated line, in input order,
/// atomically.
pub fn write_scores(path: &Path, probs: &[Vec<f32>]) -> Result<()> {
    let text: String = probs
        .iter()
        .map(|row| {
            let cells: Vec<String> = row.iter().map(f32::to_string).collect();
            cells.join("\t") + "\n"
        })
        .collect();
    crate::io::write_atomic(path, text.as_bytes()).map_err(|error| Error::Io {
        action: "write",
        path: path.to_path_buf(),
        error,
    })
}

/// `n` rows of `c` class probabilities, row-major `[n, c]`, tab- or space-separated. A
/// file of one number per line (P(label 1), written before N-class support) reads as
/// `[1 − p, p]`.
pub fn read_scores(path: &Path, n: usize, c: usize) -> Result<Vec<f32>> {
    let text = std::fs::read_to_string(path).map_err(|error| Error::Io {
        action: "read",
        path: path.to_path_buf(),
        error,
    })?;
    let mut scores = Vec::with_capacity(n * c);
    let mut rows = 0;
    for (i, line) in text.lines().enumerate() {
        let row = line
            .split_whitespace()
            .map(str::parse::<f32>)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::parse(path, i + 1, format!("not numbers: {e}")))?;
        match row.len() {
            1 if c == 2 => scores.extend([1.0 - row[0], row[0]]),
            k if k == c => scores.extend(row),
            k => {
                return Err(Error::parse(
                    path,
                    i + 1,
                    format!("{k} scores for {c} labels"),
                ))
            }
        }
        rows += 1;
    }
    if rows != n {
        return Err(Error::format(
            path,
            format!("scores for {rows} rows, the data has {n}"),
        ));
    }
    Ok(scores)
}

/// A short table of metrics for people, classes named from `labels`.
pub fn metrics_text(m: &Metrics, labels: &LabelSet) -> String {
    let record = EvalRecord::new(labels, m.clone());
    let names = &record.labels;
    let ap = if m.num_classes() == 2 {
        format!("AP of {}", names[1])
    } else {
        "macro one-vs-rest AP".into()
    };
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = format!(
        "n         {}\naccuracy  {:.4}\nmacro-F1  {:.4}\nAP        {:.4} ({ap})\n",
        m.n, m.acc, m.macro_f1, m.ap
    );
    if m.num_classes() == 2 {
        out += &format!("F1        {:.4} (of {})\n", m.f1, names[1]);
    }
    out += &format!(
        "\n{:<width$}  precision  recall      F1  support      AP\n",
        "label"
    );
    for (k, c) in m.classes.iter().enumerate() {
        let ap = m.class_ap[k].map_or("–".into(), |v| format!("{v:.4}"));
        out += &format!(
            "{:<width$}  {:>9.4}  {:>6.4}  {:>6.4}  {:>7}  {:>6}\n",
            names[k], c.precision, c.recall, c.f1, c.support, ap
        );
    }
    out += "\nconfusion (rows gold, columns predicted):\n";
    // Column heads are the names cut to 10 characters.
    let heads: Vec<String> = names.iter().map(|n| abbreviate(n, 10)).collect();
    let cell = m
        .confusion
        .iter()
        .flatten()
        .map(|c| c.to_string().len())
        .chain(heads.iter().map(|h| h.chars().count()))
        .max()
        .unwrap_or(1);
    let head: Vec<String> = heads.iter().map(|h| format!("{h:>cell$}")).collect();
    out += &format!("{:<width$}  {}\n", "", head.join(" "));
    for (name, row) in names.iter().zip(&m.confusion) {
        let cells: Vec<String> = row.iter().map(|c| format!("{c:>cell$}")).collect();
        out += &format!("{name:<width$}  {}\n", cells.join(" "));
    }
    out
}

/// `name` cut to `max` characters, the last one an ellipsis when cut.
fn abbreviate(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        name.to_string()
    } else {
        name.chars().take(max - 1).chain(['…']).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_and_text_name_the_labels() {
        let labels = LabelSet::new(vec![
            "very negative".into(),
            "neutral".into(),
            "positive".into(),
        ]);
        // Predictions 0, 1, 2, 0 against gold 0, 1, 2, 2.
        let probs = [0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.2, 0.3, 0.5, 0.6, 0.3, 0.1];
        let m = Metrics::compute(&probs, 3, &[0, 1, 2, 2]);
        let v = serde_json::to_value(EvalRecord::new(&labels, m.clone())).unwrap();
        assert_eq!(
            v["labels"],
            serde_json::json!(["very negative", "neutral", "positive"])
        );
        assert_eq!(
            v["confusion"],
            serde_json::json!([[1, 0, 0], [0, 1, 0], [1, 0, 1]])
        );
        for k in ["n", "acc", "ap", "f1", "macro_f1", "classes", "class_ap"] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert!(v.get("loss").is_none(), "a student has no loss: {v}");
        let text = metrics_text(&m, &labels);
        assert!(text.contains("macro one-vs-rest AP"), "{text}");
        let last: Vec<&str> = text.lines().last().unwrap().split_whitespace().collect();
        assert_eq!(last, ["positive", "1", "0", "1"], "{text}");
        // Very negative: 1 of 2 predictions right, its one example found.
        let row = text
            .lines()
            .find(|l| l.starts_with("very negative") && l.contains('.'))
            .unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(&cells[2..6], ["0.5000", "1.0000", "0.6667", "1"], "{text}");
    }

    #[test]
    fn scores_round_trip_and_old_files_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.scores");
        write_scores(&path, &[vec![0.25, 0.75], vec![1.0, 0.0]]).unwrap();
        assert_eq!(read_scores(&path, 2, 2).unwrap(), [0.25, 0.75, 1.0, 0.0]);
        let e = read_scores(&path, 3, 2).unwrap_err().to_string();
        assert!(e.contains("scores for 2 rows, the data has 3"), "{e}");
        let e = read_scores(&path, 2, 3).unwrap_err().to_string();
        assert!(e.ends_with(":1: 2 scores for 3 labels"), "{e}");
        // One P(label 1) per line, as written before N-class support.
        std::fs::write(&path, "0.25\n1\n").unwrap();
        assert_eq!(read_scores(&path, 2, 2).unwrap(), [0.75, 0.25, 0.0, 1.0]);
    }
}
