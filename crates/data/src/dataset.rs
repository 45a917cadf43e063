//! A text-classification data set: texts (or pairs of texts) with optional
//! labels, read from TSV, CSV or JSON lines in the columns a [`TaskSpec`]
//! names, and written back as TSV. A file either loads completely or not at
//! all; every error names the file, the 1-based line and the reason.

use crate::error::{Error, Result};
use crate::io::{sha256_hex, write_atomic};
use crate::table::{self, RawTable};
use crate::task::TaskSpec;
use std::path::{Path, PathBuf};

/// One text (or pair of texts) and, for labelled data, its label id (an index into a [`LabelSet`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Example {
    /// The sentence exactly as it stands in the file.
    pub text: String,
    /// The second text of a sentence-pair task (premise/hypothesis, question/answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_pair: Option<String>,
    /// Label id, `None` for unlabelled data.
    pub label: Option<u32>,
}

/// The label names a data file may use; a label's id is its position here.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LabelSet {
    names: Vec<String>,
}

impl LabelSet {
    /// The SST-2 labels: `"0"` (negative) → 0 and `"1"` (positive) → 1.
    pub fn binary() -> Self {
        Self::new(vec!["0".into(), "1".into()])
    }

    /// Labels with the given names, ids in order. A repeated name keeps its first id.
    pub fn new(names: Vec<String>) -> Self {
        LabelSet { names }
    }

    /// The labels that occur in `names`, in the order a training file's labels
    /// get their ids: numbers in numeric order, then other names sorted (the
    /// order of `sorted(set(labels))` with numeric strings compared as numbers).
    pub fn from_occurring<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut set: Vec<&str> = names.into_iter().collect();
        set.sort_unstable();
        set.dedup();
        set.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y).then_with(|| a.cmp(b)),
            (Ok(_), Err(_)) => std::cmp::Ordering::Less,
            (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
            (Err(_), Err(_)) => a.cmp(b),
        });
        Self::new(set.into_iter().map(str::to_string).collect())
    }

    /// The labels a student distilled from a teacher reads its training file with, given
    /// the file's own (`None`: the file has too few to form a set): the teacher's, in its
    /// output order, when they name every label of the file (ids then index the logits'
    /// columns); the file's otherwise. `distill augment` reads with the same set, so its
    /// split of the file is the student's.
    pub fn for_distillation(file: Option<LabelSet>, teacher: LabelSet) -> LabelSet {
        match file {
            Some(file) if file.names.iter().any(|n| teacher.index(n).is_none()) => file,
            _ => teacher,
        }
    }

    /// Labels from a comma-separated list (`--labels neg,pos`): names trimmed,
    /// none empty, none repeated.
    pub fn parse_list(list: &str) -> std::result::Result<Self, String> {
        let names: Vec<String> = list.split(',').map(|n| n.trim().to_string()).collect();
        if names.iter().any(String::is_empty) {
            return Err(format!("`{list}`: a label name is empty"));
        }
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(format!("`{list}`: label `{n}` is named twice"));
            }
        }
        if names.len() < 2 {
            return Err(format!("`{list}`: a classifier needs at least two labels"));
        }
        Ok(Self::new(names))
    }

    /// Id of the label called `name`.
    pub fn index(&self, name: &str) -> Option<u32> {
        self.names.iter().position(|n| n == name).map(|i| i as u32)
    }

    /// Name of label `id`.
    pub fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(String::as_str)
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// All label names, in id order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub(crate) fn allowed(&self) -> String {
        self.names.join(", ")
    }
}

/// A list of examples and the file they came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dataset {
    /// The examples, in file order.
    pub examples: Vec<Example>,
    /// The file the examples were read from, if any.
    pub source: Option<PathBuf>,
}

impl Dataset {
    /// Reads a data file with the default [`TaskSpec`] (format from the
    /// extension, recognised column names): see [`Dataset::read_with`].
    pub fn read(path: &Path, labels: &LabelSet) -> Result<Dataset> {
        Self::read_with(path, &TaskSpec::default(), labels)
    }

    /// Reads a data file in `spec`'s format and columns. A label must be a name
    /// in `labels`; an empty label cell, or a file without a label column,
    /// gives unlabelled examples (transfer text for distillation). An empty
    /// text is allowed; a file without a single row is an error (every use of a
    /// data file needs rows). Lines may end in `\n`, `\r\n` or a lone `\r`; a
    /// UTF-8 byte-order mark and trailing blank lines are ignored.
    pub fn read_with(path: &Path, spec: &TaskSpec, labels: &LabelSet) -> Result<Dataset> {
        let table = Self::read_table(path, spec)?;
        Self::from_table(path, table, labels)
    }

    /// Like [`Dataset::read_with`], for uses that need a label on every row
    /// (baseline training, evaluation, fine-tuning): a row without one is an
    /// error naming its line, a file without a label column an error naming
    /// the column. `purpose` completes "… is needed for {purpose}".
    pub fn read_labelled(
        path: &Path,
        spec: &TaskSpec,
        labels: &LabelSet,
        purpose: &str,
    ) -> Result<Dataset> {
        let table = Self::read_table(path, spec)?;
        if !table.has_label_column {
            return Err(Error::format(
                path,
                format!(
                    "no label column (`{}`), and a label is needed for {purpose}; name it \
                     with --label-column",
                    spec.label_column
                        .as_deref()
                        .unwrap_or(TaskSpec::LABEL_COLUMN)
                ),
            ));
        }
        if let Some(row) = table.rows.iter().find(|r| r.label.is_none()) {
            return Err(Error::parse(
                path,
                row.line,
                format!("the label is empty, and a label is needed for {purpose}"),
            ));
        }
        Self::from_table(path, table, labels)
    }

    /// Only the texts of a data file, unlabelled whatever its label cells hold
    /// (for uses that read texts alone: labelling, augmentation).
    pub fn read_texts(path: &Path, spec: &TaskSpec) -> Result<Dataset> {
        let mut table = Self::read_table(path, spec)?;
        table.rows.iter_mut().for_each(|r| r.label = None);
        Self::from_table(path, table, &LabelSet::new(Vec::new()))
    }

    /// The labels of a training file, in the order [`LabelSet::from_occurring`] gives them.
    pub fn label_set_of(path: &Path, spec: &TaskSpec) -> Result<LabelSet> {
        let table = Self::read_table(path, spec)?;
        let set = LabelSet::from_occurring(table.rows.iter().filter_map(|r| r.label.as_deref()));
        if set.len() < 2 {
            return Err(Error::format(
                path,
                format!(
                    "the label set comes from the training file, and it has {} distinct \
                     label(s); a classifier needs two or more (or name them with --labels)",
                    set.len()
                ),
            ));
        }
        Ok(set)
    }

    fn read_table(path: &Path, spec: &TaskSpec) -> Result<RawTable> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        let table = table::read(path, &bytes, spec)?;
        if table.rows.is_empty() {
            return Err(Error::format(
                path,
                "no rows after the header line; expected one example per line after it",
            ));
        }
        Ok(table)
    }

    fn from_table(path: &Path, table: RawTable, labels: &LabelSet) -> Result<Dataset> {
        let examples = table
            .rows
            .into_iter()
            .map(|row| {
                let label = match &row.label {
                    None => None,
                    Some(name) => Some(labels.index(name).ok_or_else(|| {
                        Error::parse(
                            path,
                            row.line,
                            format!(
                                "label `{name}` is not one of the allowed labels: {}",
                                labels.allowed()
                            ),
                        )
                    })?),
                };
                Ok(Example {
                    text: row.text,
                    text_pair: row.text_pair,
                    label,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Dataset {
            examples,
            source: Some(path.to_path_buf()),
        })
    }

    /// Unlabelled examples from sentences.
    pub fn from_texts(texts: Vec<String>) -> Dataset {
        Dataset {
            examples: texts
                .into_iter()
                .map(|text| Example {
                    text,
                    text_pair: None,
                    label: None,
                })
                .collect(),
            source: None,
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// The sentences, in order.
    pub fn texts(&self) -> Vec<&str> {
        self.examples.iter().map(|e| e.text.as_str()).collect()
    }

    /// The second texts, in order, when every example is a pair.
    pub fn text_pairs(&self) -> Option<Vec<&str>> {
        self.examples
            .iter()
            .map(|e| e.text_pair.as_deref())
            .collect()
    }

    /// Whether the examples are sentence pairs (decided by the first; a reader
    /// gives every example of a file the same shape).
    pub fn is_pairs(&self) -> bool {
        self.examples.first().is_some_and(|e| e.text_pair.is_some())
    }

    /// All labels in order, or `None` if any example is unlabelled.
    pub fn labels(&self) -> Option<Vec<u32>> {
        self.examples.iter().map(|e| e.label).collect()
    }

    /// SHA-256 (hex) of the sentences joined with `'\n'`, in order; a pair
    /// counts as its two texts joined by a tab. Labels do not count. Logit
    /// caches record it as `data_sha256`.
    pub fn fingerprint(&self) -> String {
        let rows: Vec<String> = self
            .examples
            .iter()
            .map(|e| match &e.text_pair {
                None => e.text.clone(),
                Some(b) => format!("{}\t{b}", e.text),
            })
            .collect();
        sha256_hex(rows.join("\n").as_bytes())
    }

    /// The examples at `indices`, in that order (same `source`).
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        Dataset {
            examples: indices.iter().map(|&i| self.examples[i].clone()).collect(),
            source: self.source.clone(),
        }
    }

    /// Writes the data as TSV (header `sentence\tlabel`, labels as ids;
    /// `sentence1\tsentence2\tlabel` for pairs), without the label column when
    /// no example is labelled. Fails without writing when a text holds a tab or
    /// line break, when only some are pairs, or when unlabelled single texts end with an
    /// empty one. An unlabelled example among labelled ones gets an empty label cell.
    pub fn write_tsv(&self, path: &Path) -> Result<()> {
        self.write_tsv_impl(path, |id| Some(id.to_string()))
    }

    /// Like [`Dataset::write_tsv`] but writes label names from `labels`, so the
    /// file reads back with [`Dataset::read`] and the same label set.
    pub fn write_tsv_named(&self, path: &Path, labels: &LabelSet) -> Result<()> {
        self.write_tsv_impl(path, |id| labels.name(id).map(str::to_string))
    }

    fn write_tsv_impl(&self, path: &Path, name: impl Fn(u32) -> Option<String>) -> Result<()> {
        // A row without a label gets an empty cell, which reads back as unlabelled.
        let labelled = self.examples.iter().filter(|e| e.label.is_some()).count();
        let pairs = self.is_pairs();
        // One column: a blank line at the end would read back as no row at all.
        if labelled == 0 && !pairs && self.examples.last().is_some_and(|e| e.text.is_empty()) {
            return Err(Error::format(
                path,
                "the last example is an empty text, which a one-column TSV cannot hold \
                 (trailing blank lines are not rows)",
            ));
        }
        let mut out = String::from(if pairs {
            "sentence1\tsentence2"
        } else {
            "sentence"
        });
        out.push_str(if labelled > 0 { "\tlabel\n" } else { "\n" });
        for (i, e) in self.examples.iter().enumerate() {
            let texts = [Some(&e.text), e.text_pair.as_ref()];
            if texts
                .iter()
                .flatten()
                .any(|t| t.contains(['\t', '\n', '\r']))
            {
                return Err(Error::format(
                    path,
                    format!("example {i} contains a tab or line break, which TSV cannot hold"),
                ));
            }
            if e.text_pair.is_some() != pairs {
                return Err(Error::format(
                    path,
                    format!("example {i} is not a pair like the first, or the other way round"),
                ));
            }
            out.push_str(&e.text);
            if let Some(b) = &e.text_pair {
                out.push('\t');
                out.push_str(b);
            }
            if labelled > 0 {
                out.push('\t');
            }
            if let Some(id) = e.label {
                let n = name(id).ok_or_else(|| {
                    Error::format(
                        path,
                        format!("example {i} has label id {id}, which has no name"),
                    )
                })?;
                out.push_str(&n);
            }
            out.push('\n');
        }
        write_atomic(path, out.as_bytes()).map_err(|e| Error::io("write", path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::TaskSpec;

    fn write(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    #[test]
    fn a_distilled_student_takes_the_teachers_label_order_only_when_it_covers_the_file() {
        let set = |names: &[&str]| LabelSet::new(names.iter().map(|n| n.to_string()).collect());
        let teacher = set(&["pos", "neg", "neutral"]);
        // The file's own order (sorted) gives way to the teacher's, whose ids are columns.
        let chosen = LabelSet::for_distillation(Some(set(&["neg", "pos"])), teacher.clone());
        assert_eq!(chosen, teacher);
        // A label the teacher does not know keeps the file's set.
        let file = set(&["neg", "other", "pos"]);
        let chosen = LabelSet::for_distillation(Some(file.clone()), teacher.clone());
        assert_eq!(chosen, file);
        assert_eq!(LabelSet::for_distillation(None, teacher.clone()), teacher);
    }

    #[test]
    fn reads_glue_tsv_with_columns_in_header_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "a.tsv", b"label\tsentence\r\n1\tgood film \r\n0\t\n");
        let d = Dataset::read(&p, &LabelSet::binary()).unwrap();
        assert_eq!(d.texts(), vec!["good film ", ""]);
        assert_eq!(d.labels(), Some(vec![1, 0]));
        assert_eq!(d.source.as_deref(), Some(p.as_path()));
    }

    #[test]
    fn header_without_label_means_unlabelled() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "t.tsv", b"index\tsentence\n0\tfirst\n1\tsecond");
        let d = Dataset::read(&p, &LabelSet::binary()).unwrap();
        assert_eq!(d.texts(), vec!["first", "second"]);
        assert_eq!(d.labels(), None);
        assert!(d.examples.iter().all(|e| e.label.is_none()));
    }

    #[test]
    fn reads_csv_with_quotes_and_custom_labels() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "a.CSV",
            b"sentence,label\n\"a, quoted \"\"one\"\"\",pos\nplain,neg\n",
        );
        let labels = LabelSet::new(vec!["neg".into(), "pos".into()]);
        let d = Dataset::read(&p, &labels).unwrap();
        assert_eq!(d.texts(), vec!["a, quoted \"one\"", "plain"]);
        assert_eq!(d.labels(), Some(vec![1, 0]));
    }

    #[test]
    fn fingerprint_depends_on_texts_and_order_only() {
        let a = Dataset::from_texts(vec!["a".into(), "b".into()]);
        let mut labelled = a.clone();
        labelled.examples[0].label = Some(1);
        assert_eq!(a.fingerprint(), labelled.fingerprint());
        assert_eq!(a.fingerprint(), sha256_hex(b"a\nb"));
        let swapped = a.subset(&[1, 0]);
        assert_ne!(a.fingerprint(), swapped.fingerprint());
        assert_eq!(swapped.texts(), vec!["b", "a"]);
    }

    #[test]
    fn write_tsv_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let src = write(&dir, "in.tsv", b"sentence\tlabel\nx y \t1\n\t0\nz\t0\n");
        let d = Dataset::read(&src, &LabelSet::binary()).unwrap();
        let out = dir.path().join("sub/out.tsv");
        d.write_tsv(&out).unwrap();
        let back = Dataset::read(&out, &LabelSet::binary()).unwrap();
        assert_eq!(back.examples, d.examples);

        let named = LabelSet::new(vec!["neg".into(), "pos".into()]);
        d.write_tsv_named(&out, &named).unwrap();
        assert_eq!(Dataset::read(&out, &named).unwrap().examples, d.examples);

        let u = Dataset::from_texts(vec!["p".into(), "q".into()]);
        u.write_tsv(&out).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "sentence\np\nq\n");
    }

    #[test]
    fn write_tsv_refuses_what_it_cannot_represent() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("o.tsv");
        let tabbed = Dataset::from_texts(vec!["a\tb".into()]);
        assert!(tabbed.write_tsv(&out).is_err());
        let mut mixed = Dataset::from_texts(vec!["a".into(), "b".into()]);
        mixed.examples[0].text_pair = Some("c".into());
        assert!(mixed.write_tsv(&out).is_err());
        assert!(!out.exists());
        // Some labelled, some not: an empty cell, read back as unlabelled.
        let mut partly = Dataset::from_texts(vec!["a".into(), "b".into()]);
        partly.examples[0].label = Some(1);
        partly.write_tsv(&out).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "sentence\tlabel\na\t1\nb\t\n"
        );
        assert_eq!(
            Dataset::read(&out, &LabelSet::binary()).unwrap().examples,
            partly.examples
        );
    }

    #[test]
    fn header_only_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in [
            ("h.tsv", &b"sentence\tlabel\n"[..]),
            ("h.tsv", b"sentence\tlabel"),
            ("h.csv", b"sentence,label\r\n"),
        ] {
            let p = write(&dir, name, content);
            let e = Dataset::read(&p, &LabelSet::binary()).unwrap_err();
            assert!(matches!(e, Error::Format { .. }), "{e:?}");
            let m = e.to_string();
            assert!(m.contains(name) && m.contains("no rows"), "{m}");
        }
    }

    #[test]
    fn cr_only_line_ends_read_as_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mac = write(&dir, "mac.tsv", b"sentence\tlabel\rgood film\t1\rbad\t0\r");
        let unix = write(&dir, "unix.tsv", b"sentence\tlabel\ngood film\t1\nbad\t0\n");
        let d = Dataset::read(&mac, &LabelSet::binary()).unwrap();
        assert_eq!(d.texts(), vec!["good film", "bad"]);
        assert_eq!(d.labels(), Some(vec![1, 0]));
        assert_eq!(
            d.examples,
            Dataset::read(&unix, &LabelSet::binary()).unwrap().examples
        );
        let csv = write(&dir, "mac.csv", b"sentence,label\rgood film,1\rbad,0\r");
        assert_eq!(
            Dataset::read(&csv, &LabelSet::binary()).unwrap().examples,
            d.examples
        );
        // Line numbers count lone CRs as line ends.
        let bad = write(&dir, "bad.tsv", b"sentence\tlabel\rok\t1\rworse\t7\r");
        let e = Dataset::read(&bad, &LabelSet::binary())
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.tsv:3:") && e.contains("`7`"), "{e}");
        let bad = write(&dir, "bad8.tsv", b"sentence\tlabel\rok\t1\r\xff\t0\r");
        let e = Dataset::read(&bad, &LabelSet::binary())
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad8.tsv:3:") && e.contains("UTF-8"), "{e}");
    }

    #[test]
    fn training_labels_order_numbers_numerically_then_names_sorted() {
        let set = LabelSet::from_occurring(["10", "2", "neutral", "-1", "2", "very negative", "b"]);
        assert_eq!(
            set.names(),
            ["-1", "2", "10", "b", "neutral", "very negative"]
        );
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "sst5.csv",
            b"text,label\na,very positive\nb,negative\nc,\nd,neutral\ne,negative\n",
        );
        let set = Dataset::label_set_of(&p, &TaskSpec::default()).unwrap();
        assert_eq!(set.names(), ["negative", "neutral", "very positive"]);
        let one = write(&dir, "one.tsv", b"sentence\tlabel\na\tx\nb\tx\n");
        let e = Dataset::label_set_of(&one, &TaskSpec::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("one.tsv") && e.contains("1 distinct") && e.contains("--labels"),
            "{e}"
        );
    }

    #[test]
    fn label_lists_are_checked() {
        assert_eq!(
            LabelSet::parse_list("neg, pos ,mixed").unwrap().names(),
            ["neg", "pos", "mixed"]
        );
        assert!(LabelSet::parse_list("a,,b").unwrap_err().contains("empty"));
        assert!(LabelSet::parse_list("a,b,a")
            .unwrap_err()
            .contains("`a` is named twice"));
        assert!(LabelSet::parse_list("a")
            .unwrap_err()
            .contains("two labels"));
    }

    #[test]
    fn a_dev_label_outside_the_set_names_file_line_and_label() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "dev.csv",
            b"text,label\nfine,negative\nodd,sarcastic\n",
        );
        let labels = LabelSet::new(vec!["negative".into(), "positive".into()]);
        let e = Dataset::read_labelled(&p, &TaskSpec::default(), &labels, "evaluation")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dev.csv:3:")
                && e.contains("`sarcastic`")
                && e.contains("negative, positive"),
            "{e}"
        );
    }

    #[test]
    fn empty_labels_are_unlabelled_rows_and_refused_where_labels_are_needed() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "mixed.tsv", b"sentence\tlabel\na\t1\nb\t\nc\t0\n");
        let spec = TaskSpec::default();
        let d = Dataset::read_with(&p, &spec, &LabelSet::binary()).unwrap();
        assert_eq!(
            d.examples.iter().map(|e| e.label).collect::<Vec<_>>(),
            [Some(1), None, Some(0)]
        );
        let e = Dataset::read_labelled(&p, &spec, &LabelSet::binary(), "baseline training")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mixed.tsv:3:")
                && e.contains("label is empty")
                && e.contains("baseline training"),
            "{e}"
        );
        let bare = write(&dir, "bare.tsv", b"sentence\na\nb\n");
        let e = Dataset::read_labelled(&bare, &spec, &LabelSet::binary(), "evaluation")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bare.tsv") && e.contains("no label column"),
            "{e}"
        );
    }

    #[test]
    fn pairs_write_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let src = write(
            &dir,
            "p.tsv",
            b"sentence1\tsentence2\tlabel\na\tb\t1\nc\t\t0\n",
        );
        let d = Dataset::read(&src, &LabelSet::binary()).unwrap();
        assert_eq!(d.text_pairs().unwrap(), ["b", ""]);
        let out = dir.path().join("out.tsv");
        d.write_tsv(&out).unwrap();
        assert_eq!(
            Dataset::read(&out, &LabelSet::binary()).unwrap().examples,
            d.examples
        );
        // A pair's fingerprint covers both texts.
        let mut other = d.clone();
        other.examples[0].text_pair = Some("B".into());
        assert_ne!(d.fingerprint(), other.fingerprint());
    }
}
