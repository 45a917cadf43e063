//! The task flags every command that reads data files shares: format and column names.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;
use distill_data::{Dataset, Format, LabelSet, TaskSpec};

/// How to read the data files: `--format`, `--text-column`, `--text-pair-column`, `--label-column`.
#[derive(Args, Clone, Debug, Default)]
pub struct TaskArgs {
    /// Data format: tsv, csv or jsonl [default: from the file extension].
    #[arg(long, value_parser = parse_format)]
    pub format: Option<Format>,
    /// Column of the text [default: `sentence` or `text`, or `sentence1`/`question` for pairs].
    #[arg(long)]
    pub text_column: Option<String>,
    /// Column of the second text of a sentence pair [default: `sentence2`/`answer` when present].
    #[arg(long)]
    pub text_pair_column: Option<String>,
    /// Column of the label [default: `label`; a file without it is unlabelled].
    #[arg(long)]
    pub label_column: Option<String>,
}

fn parse_format(s: &str) -> std::result::Result<Format, String> {
    s.parse()
}

/// `--labels a,b,c`: label names in id order.
pub fn parse_labels(s: &str) -> std::result::Result<LabelSet, String> {
    LabelSet::parse_list(s)
}

impl TaskArgs {
    /// The data crate's reading settings.
    pub fn spec(&self) -> TaskSpec {
        TaskSpec {
            format: self.format,
            text_column: self.text_column.clone(),
            text_pair_column: self.text_pair_column.clone(),
            label_column: self.label_column.clone(),
        }
    }

    /// Reads `path` where every row needs a label (`purpose`: "evaluation", …).
    pub fn read_labelled(&self, path: &Path, labels: &LabelSet, purpose: &str) -> Result<Dataset> {
        Dataset::read_labelled(path, &self.spec(), labels, purpose)
            .with_context(|| format!("reading {}", path.display()))
    }

    /// Reads only the texts of `path` (its labels, if any, are not looked at).
    pub fn read_texts(&self, path: &Path) -> Result<Dataset> {
        Dataset::read_texts(path, &self.spec())
            .with_context(|| format!("reading {}", path.display()))
    }

    /// The label set: `given`, or the labels of the training file `train`.
    pub fn labels(&self, given: Option<&LabelSet>, train: &Path) -> Result<LabelSet> {
        match given {
            Some(l) => Ok(l.clone()),
            None => Dataset::label_set_of(train, &self.spec())
                .with_context(|| format!("reading the labels of {}", train.display())),
        }
    }
}
