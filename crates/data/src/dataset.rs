//! A text-classification data set: sentences with optional labels, read from a
//! GLUE-style TSV file (`sentence<TAB>label` with a header row) or a CSV file
//! with the same header, and written back as TSV. A file either loads
//! completely or not at all; every error names the file, the 1-based line and
//! the reason.

use crate::error::{Error, Result};
use crate::io::{sha256_hex, write_atomic};
use crate::table;
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
    /// Reads a data file. Files ending in `.csv` are parsed as CSV (quoted
    /// fields allowed), anything else as tab-separated values. The first row
    /// is a header naming the columns: it must contain `sentence`; with a
    /// `label` column every row's label must be a name in `labels`, without
    /// one the data are unlabelled. Other columns (such as GLUE's `index`) are
    /// ignored. An empty sentence is allowed; a file without a single row
    /// after the header is an error (every use of a data file needs rows).
    /// Lines may end in `\n`, `\r\n` or a lone `\r`.
    pub fn read(path: &Path, labels: &LabelSet) -> Result<Dataset> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        let is_csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let examples = if is_csv {
            table::read_csv(path, &bytes, labels)?
        } else {
            table::read_tsv(path, &bytes, labels)?
        };
        if examples.is_empty() {
            return Err(Error::format(
                path,
                "no rows after the header line; expected one sentence per line after it",
            ));
        }
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

    /// Writes the data as TSV (header `sentence\tlabel`, labels as ids), or
    /// with header `sentence` when no example is labelled. Fails without
    /// writing when a sentence holds a tab or line break, or when only some
    /// examples are labelled.
    pub fn write_tsv(&self, path: &Path) -> Result<()> {
        self.write_tsv_impl(path, |id| Some(id.to_string()))
    }

    /// Like [`Dataset::write_tsv`] but writes label names from `labels`, so the
    /// file reads back with [`Dataset::read`] and the same label set.
    pub fn write_tsv_named(&self, path: &Path, labels: &LabelSet) -> Result<()> {
        self.write_tsv_impl(path, |id| labels.name(id).map(str::to_string))
    }

    fn write_tsv_impl(&self, path: &Path, name: impl Fn(u32) -> Option<String>) -> Result<()> {
        let labelled = self.examples.iter().filter(|e| e.label.is_some()).count();
        if labelled != 0 && labelled != self.len() {
            return Err(Error::format(
                path,
                format!(
                    "cannot write a data set where only {labelled} of {} examples are labelled",
                    self.len()
                ),
            ));
        }
        let mut out = String::from(if labelled > 0 {
            "sentence\tlabel\n"
        } else {
            "sentence\n"
        });
        for (i, e) in self.examples.iter().enumerate() {
            if e.text.contains(['\t', '\n', '\r']) {
                return Err(Error::format(
                    path,
                    format!("example {i} contains a tab or line break, which TSV cannot hold"),
                ));
            }
            out.push_str(&e.text);
            if let Some(id) = e.label {
                let n = name(id).ok_or_else(|| {
                    Error::format(
                        path,
                        format!("example {i} has label id {id}, which has no name"),
                    )
                })?;
                out.push('\t');
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

    fn write(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
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
        mixed.examples[0].label = Some(0);
        assert!(mixed.write_tsv(&out).is_err());
        assert!(!out.exists());
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
}
