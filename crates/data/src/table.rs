//! Reading the rows of a data file: a header row naming the columns, then
//! one example per row, from tab-separated text or from CSV. Used by
//! [`crate::Dataset::read`]; every error names the file, the 1-based line and
//! the reason, and the first error stops the read.
//!
//! A line ends at `\n`, `\r\n` or a lone `\r` (old Mac files), in TSV as
//! in CSV (the csv crate's rule), so a CR-only file reads as its lines
//! instead of as one long header.

use crate::dataset::{Example, LabelSet};
use crate::error::{Error, Result};
use std::path::Path;

/// Where the `sentence` and `label` columns are, from the header row.
struct Columns {
    count: usize,
    sentence: usize,
    label: Option<usize>,
}

impl Columns {
    fn from_header<'a>(path: &Path, names: impl Iterator<Item = &'a str>) -> Result<Columns> {
        let names: Vec<&str> = names.map(str::trim).collect();
        let find = |n: &str| names.iter().position(|h| *h == n);
        let sentence = find("sentence").ok_or_else(|| {
            Error::parse(
                path,
                1,
                format!(
                    "the header has no `sentence` column (found: {}); the first line must \
                     name the columns, e.g. `sentence<TAB>label`",
                    names.join(", ")
                ),
            )
        })?;
        Ok(Columns {
            count: names.len(),
            sentence,
            label: find("label"),
        })
    }

    /// Builds an example from one row's fields.
    fn example(
        &self,
        path: &Path,
        line: usize,
        fields: &[&str],
        labels: &LabelSet,
        sep: &str,
    ) -> Result<Example> {
        if fields.len() != self.count {
            let hint = if fields.len() < self.count {
                format!(" (missing {sep}?)")
            } else {
                String::new()
            };
            return Err(Error::parse(
                path,
                line,
                format!(
                    "expected {} {sep}-separated fields as in the header, found {}{hint}",
                    self.count,
                    fields.len()
                ),
            ));
        }
        let label = match self.label {
            None => None,
            Some(c) => {
                let name = fields[c].trim();
                Some(labels.index(name).ok_or_else(|| {
                    Error::parse(
                        path,
                        line,
                        format!(
                            "label `{name}` is not one of the allowed labels: {}",
                            labels.allowed()
                        ),
                    )
                })?)
            }
        };
        Ok(Example {
            text: fields[self.sentence].to_string(),
            text_pair: None,
            label,
        })
    }
}

/// Line ends in `bytes`: each `\n`, and each `\r` not followed by `\n`.
fn line_ends(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count()
}

fn utf8<'a>(path: &Path, bytes: &'a [u8], first_line: usize) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        let line = first_line + line_ends(&bytes[..e.valid_up_to()]);
        Error::parse(path, line, "invalid UTF-8")
    })
}

/// The lines of `text`, split at `\n`, `\r\n` and lone `\r`; a line end at
/// the very end does not start another (empty) line.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let body = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .or_else(|| text.strip_suffix('\r'))
        .unwrap_or(text);
    body.split('\n')
        .flat_map(|l| l.strip_suffix('\r').unwrap_or(l).split('\r'))
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

pub(crate) fn read_tsv(path: &Path, bytes: &[u8], labels: &LabelSet) -> Result<Vec<Example>> {
    let text = utf8(path, strip_bom(bytes), 1)?;
    if text.is_empty() {
        return Err(Error::parse(
            path,
            1,
            "the file is empty; expected a header row such as `sentence<TAB>label`",
        ));
    }
    let mut lines = lines(text);
    let header = lines.next().unwrap_or_default();
    let columns = Columns::from_header(path, header.split('\t'))?;
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        out.push(columns.example(path, i + 2, &fields, labels, "tab")?);
    }
    Ok(out)
}

pub(crate) fn read_csv(path: &Path, bytes: &[u8], labels: &LabelSet) -> Result<Vec<Example>> {
    let bytes = strip_bom(bytes);
    if bytes.is_empty() {
        return Err(Error::parse(
            path,
            1,
            "the file is empty; expected a header row such as `sentence,label`",
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let csv_err = |e: csv::Error| {
        let line = e.position().map_or(1, |p| p.line() as usize);
        Error::parse(path, line, format!("malformed CSV: {e}"))
    };
    let mut record = csv::ByteRecord::new();
    let mut columns = None;
    let mut out = Vec::new();
    while reader.read_byte_record(&mut record).map_err(csv_err)? {
        let line = record.position().map_or(1, |p| p.line() as usize);
        let mut fields = Vec::with_capacity(record.len());
        for field in record.iter() {
            fields.push(utf8(path, field, line)?);
        }
        match &columns {
            None => columns = Some(Columns::from_header(path, fields.into_iter())?),
            Some(c) => out.push(c.example(path, line, &fields, labels, "comma")?),
        }
    }
    if columns.is_none() {
        return Err(Error::parse(
            path,
            1,
            "no header row; expected one such as `sentence,label`",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::dataset::{Dataset, LabelSet};

    fn read_err(name: &str, content: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        Dataset::read(&p, &LabelSet::binary())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_file_line_and_reason() {
        let e = read_err("x.tsv", b"sentence\tlabel\nok\t1\nno tab here\n");
        assert!(
            e.contains("x.tsv:3:") && e.contains("found 1 (missing tab?)"),
            "{e}"
        );
        let e = read_err("x.tsv", b"sentence\tlabel\nok\t1\nbad\t2\n");
        assert!(
            e.contains("x.tsv:3:") && e.contains("`2`") && e.contains("0, 1"),
            "{e}"
        );
        let e = read_err("x.tsv", b"sentence\tlabel\nok\t1\n\xff\t0\n");
        assert!(e.contains("x.tsv:3:") && e.contains("UTF-8"), "{e}");
        let e = read_err("x.tsv", b"");
        assert!(e.contains("x.tsv:1:") && e.contains("empty"), "{e}");
        let e = read_err("x.tsv", b"text\tlabel\nok\t1\n");
        assert!(e.contains("x.tsv:1:") && e.contains("`sentence`"), "{e}");
        let e = read_err("x.csv", b"sentence,label\nok,1\nbad,7\n");
        assert!(e.contains("x.csv:3:") && e.contains("`7`"), "{e}");
        let e = read_err("x.csv", b"sentence,label\nok,1\nok,1,extra\n");
        assert!(e.contains("x.csv:3:") && e.contains("found 3"), "{e}");
        let e = read_err("x.csv", b"");
        assert!(e.contains("x.csv:1:") && e.contains("empty"), "{e}");
    }

    #[test]
    fn more_malformed_files() {
        // A byte-order mark is not part of the header.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bom.tsv");
        std::fs::write(&p, b"\xEF\xBB\xBFsentence\tlabel\nfine\t0\n").unwrap();
        assert_eq!(
            Dataset::read(&p, &LabelSet::binary()).unwrap().labels(),
            Some(vec![0])
        );
        // Too many fields in a TSV row.
        let e = read_err("x.tsv", b"sentence\tlabel\na\tb\t1\n");
        assert!(e.contains("x.tsv:2:") && e.contains("found 3"), "{e}");
        // A trailing blank line is a row without a label.
        let e = read_err("x.tsv", b"sentence\tlabel\na\t1\n\n");
        assert!(e.contains("x.tsv:3:"), "{e}");
        // CSV: the line of a record is where it starts, after a multi-line field.
        let e = read_err("y.csv", b"sentence,label\n\"two\nlines\",1\nx,9\n");
        assert!(e.contains("y.csv:4:") && e.contains("`9`"), "{e}");
        let e = read_err("y.csv", b"sentence,label\nok,1\n\xfe,0\n");
        assert!(e.contains("y.csv:3:") && e.contains("UTF-8"), "{e}");
        let e = read_err("y.csv", b"text,label\nok,1\n");
        assert!(e.contains("y.csv:1:") && e.contains("`sentence`"), "{e}");
    }
}
