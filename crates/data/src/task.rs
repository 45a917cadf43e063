//! What a task's data files look like: their format and which columns hold
//! the text, the second text of a pair and the label. The same [`TaskSpec`]
//! reads every file of a task (train, dev, test, unlabelled text), so the
//! flags are given once and mean the same everywhere.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A data file's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Tab-separated, read literally as GLUE's loaders do: a `"` is a character.
    Tsv,
    /// Comma-separated with RFC 4180 quoting.
    Csv,
    /// One JSON object per line, as `datasets`' `to_json` writes them.
    Jsonl,
}

impl Format {
    /// The format a file's extension names: `.csv`, `.jsonl`/`.json`, anything else TSV.
    pub fn of_path(path: &Path) -> Format {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => Format::Csv,
            Some("jsonl" | "json" | "ndjson") => Format::Jsonl,
            _ => Format::Tsv,
        }
    }

    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Format::Tsv => "tsv",
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "tsv" => Ok(Format::Tsv),
            "csv" => Ok(Format::Csv),
            "jsonl" | "json" => Ok(Format::Jsonl),
            other => Err(format!("unknown format `{other}` (known: tsv, csv, jsonl)")),
        }
    }
}

/// How to read a task's files. Every field is optional: the format then comes
/// from the extension, and the columns from the names [`TaskSpec::TEXT_COLUMNS`],
/// [`TaskSpec::PAIR_COLUMNS`] and `label`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Overrides the format the extension names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// Column of the text (the first text of a pair).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_column: Option<String>,
    /// Column of the second text of a pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_pair_column: Option<String>,
    /// Column of the label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_column: Option<String>,
}

/// Where a file's columns are, resolved from its header against a [`TaskSpec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Columns {
    /// Number of columns in the header.
    pub count: usize,
    pub text: usize,
    pub text_pair: Option<usize>,
    pub label: Option<usize>,
}

impl TaskSpec {
    /// Single-text columns recognised without `--text-column`, in order of preference.
    pub const TEXT_COLUMNS: [&'static str; 2] = ["sentence", "text"];
    /// Pair columns recognised without `--text-column`/`--text-pair-column`.
    pub const PAIR_COLUMNS: [(&'static str, &'static str); 2] =
        [("sentence1", "sentence2"), ("question", "answer")];
    /// The label column recognised without `--label-column`.
    pub const LABEL_COLUMN: &'static str = "label";

    /// The format of `path` under this spec.
    pub fn format_of(&self, path: &Path) -> Format {
        self.format.unwrap_or_else(|| Format::of_path(path))
    }

    /// Resolves the header `names` of `path` (line `line`) into column positions.
    pub(crate) fn columns(&self, path: &Path, line: usize, names: &[&str]) -> Result<Columns> {
        let find = |n: &str| names.iter().position(|h| h.trim() == n);
        let found = || {
            let list: Vec<String> = names.iter().map(|n| format!("`{}`", n.trim())).collect();
            list.join(", ")
        };
        let need = |name: &str, flag: &str, what: &str| {
            find(name).ok_or_else(|| {
                Error::parse(
                    path,
                    line,
                    format!(
                        "no column `{name}` (given as {flag}, the {what}); the columns are {}",
                        found()
                    ),
                )
            })
        };
        let (text, text_pair) = match (&self.text_column, &self.text_pair_column) {
            (Some(t), pair) => (
                need(t, "--text-column", "text")?,
                pair.as_deref()
                    .map(|p| need(p, "--text-pair-column", "second text of a pair"))
                    .transpose()?,
            ),
            (None, Some(p)) => {
                let pair = need(p, "--text-pair-column", "second text of a pair")?;
                let text = Self::TEXT_COLUMNS
                    .iter()
                    .chain(Self::PAIR_COLUMNS.iter().map(|(a, _)| a))
                    .find_map(|n| find(n))
                    .ok_or_else(|| self.no_text(path, line, &found()))?;
                (text, Some(pair))
            }
            (None, None) => {
                let pair = Self::PAIR_COLUMNS
                    .iter()
                    .find_map(|(a, b)| Some((find(a)?, find(b)?)));
                match pair {
                    Some((a, b)) => (a, Some(b)),
                    None => (
                        Self::TEXT_COLUMNS
                            .iter()
                            .find_map(|n| find(n))
                            .ok_or_else(|| self.no_text(path, line, &found()))?,
                        None,
                    ),
                }
            }
        };
        let label = match &self.label_column {
            Some(l) => Some(need(l, "--label-column", "label")?),
            None => find(Self::LABEL_COLUMN),
        };
        if Some(text) == text_pair || Some(text) == label || (label.is_some() && label == text_pair)
        {
            return Err(Error::parse(
                path,
                line,
                "the text, second text and label must be different columns",
            ));
        }
        Ok(Columns {
            count: names.len(),
            text,
            text_pair,
            label,
        })
    }

    fn no_text(&self, path: &Path, line: usize, found: &str) -> Error {
        Error::parse(
            path,
            line,
            format!(
                "no text column: the columns are {found}; name it with --text-column \
                 (recognised without it: `sentence`, `text`, `sentence1`/`sentence2`, \
                 `question`/`answer`)"
            ),
        )
    }
}

/// The task flags of every command that reads data files, as clap arguments (feature
/// `clap`): `--format`, `--text-column`, `--text-pair-column`, `--label-column`. The
/// `distill` CLI and `cargo xtask pipeline` flatten the same struct, so the flags read the
/// same everywhere.
#[cfg(feature = "clap")]
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskArgs {
    /// Data format: tsv, csv or jsonl [default: from each file's extension].
    #[arg(long, value_parser = |s: &str| s.parse::<Format>())]
    pub format: Option<Format>,
    /// Column of the text [default: `sentence` or `text`, or `sentence1`/`question` for
    /// pairs].
    #[arg(long)]
    pub text_column: Option<String>,
    /// Column of the second text of a sentence pair [default: `sentence2`/`answer` when
    /// present].
    #[arg(long)]
    pub text_pair_column: Option<String>,
    /// Column of the label [default: `label`; a file without it is unlabelled].
    #[arg(long)]
    pub label_column: Option<String>,
}

#[cfg(feature = "clap")]
impl TaskArgs {
    /// The reading settings these flags name.
    pub fn spec(&self) -> TaskSpec {
        TaskSpec {
            format: self.format,
            text_column: self.text_column.clone(),
            text_pair_column: self.text_pair_column.clone(),
            label_column: self.label_column.clone(),
        }
    }

    /// Reads `path` where every row needs a label (`purpose`: "evaluation", …).
    pub fn read_labelled(
        &self,
        path: &Path,
        labels: &crate::LabelSet,
        purpose: &str,
    ) -> Result<crate::Dataset> {
        crate::Dataset::read_labelled(path, &self.spec(), labels, purpose)
    }

    /// Reads only the texts of `path` (its labels, if any, are not looked at).
    pub fn read_texts(&self, path: &Path) -> Result<crate::Dataset> {
        crate::Dataset::read_texts(path, &self.spec())
    }

    /// The label set: `given`, or the labels of the training file `train`.
    pub fn labels(&self, given: Option<&crate::LabelSet>, train: &Path) -> Result<crate::LabelSet> {
        match given {
            Some(l) => Ok(l.clone()),
            None => crate::Dataset::label_set_of(train, &self.spec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(spec: &TaskSpec, names: &[&str]) -> Result<Columns> {
        spec.columns(Path::new("f.tsv"), 1, names)
    }

    #[test]
    fn recognised_names_pick_single_texts_and_pairs() {
        let d = TaskSpec::default();
        let c = cols(&d, &["label", "sentence"]).unwrap();
        assert_eq!((c.text, c.text_pair, c.label), (1, None, Some(0)));
        let c = cols(&d, &["idx", "text"]).unwrap();
        assert_eq!((c.text, c.text_pair, c.label), (1, None, None));
        let c = cols(&d, &["sentence2", "label", "sentence1"]).unwrap();
        assert_eq!((c.text, c.text_pair, c.label), (2, Some(0), Some(1)));
        let c = cols(&d, &["question", "answer"]).unwrap();
        assert_eq!((c.text, c.text_pair), (0, Some(1)));
    }

    #[test]
    fn named_columns_must_exist_and_errors_list_what_was_found() {
        let spec = TaskSpec {
            text_column: Some("#1 String".into()),
            text_pair_column: Some("#2 String".into()),
            label_column: Some("Quality".into()),
            ..Default::default()
        };
        let c = cols(
            &spec,
            &["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
        )
        .unwrap();
        assert_eq!((c.text, c.text_pair, c.label), (3, Some(4), Some(0)));

        let e = cols(&spec, &["Quality", "#1 String"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("f.tsv:1:") && e.contains("`#2 String`") && e.contains("--text-pair-column"),
            "{e}"
        );
        assert!(e.contains("`Quality`, `#1 String`"), "{e}");
        let e = cols(&TaskSpec::default(), &["body", "label"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`body`, `label`") && e.contains("--text-column"),
            "{e}"
        );
        let only_label = TaskSpec {
            label_column: Some("y".into()),
            ..Default::default()
        };
        let e = cols(&only_label, &["text", "label"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`y`") && e.contains("--label-column"), "{e}");
    }

    #[test]
    fn format_comes_from_the_extension_unless_given() {
        assert_eq!(Format::of_path(Path::new("a/b.CSV")), Format::Csv);
        assert_eq!(Format::of_path(Path::new("b.jsonl")), Format::Jsonl);
        assert_eq!(Format::of_path(Path::new("b.tsv")), Format::Tsv);
        assert_eq!(Format::of_path(Path::new("b")), Format::Tsv);
        let spec = TaskSpec {
            format: Some(Format::Jsonl),
            ..Default::default()
        };
        assert_eq!(spec.format_of(Path::new("b.txt")), Format::Jsonl);
        assert_eq!("CSV".parse::<Format>(), Ok(Format::Csv));
        assert!("xml".parse::<Format>().is_err());
    }
}
