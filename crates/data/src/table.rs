//! Reading the rows of a data file: TSV or CSV (a header row naming the
//! columns, then one example per row) or JSON lines (one object per line).
//! Used by [`crate::Dataset::read_with`]; every error names the file, the
//! 1-based line and the reason, and the first error stops the read.
//!
//! A line ends at `\n`, `\r\n` or a lone `\r` (old Mac files), in TSV as
//! in CSV (the csv crate's rule), so a CR-only file reads as its lines
//! instead of as one long header.

use crate::error::{Error, Result};
use crate::task::{Columns, Format, TaskSpec};
use std::path::Path;

/// One row of a data file before its label is resolved against a label set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawRow {
    /// 1-based line where the row starts.
    pub line: usize,
    pub text: String,
    pub text_pair: Option<String>,
    /// The label cell, trimmed; `None` when the file has no label column or the cell is empty.
    pub label: Option<String>,
}

/// The rows of a file and whether it has a label column at all.
pub(crate) struct RawTable {
    pub rows: Vec<RawRow>,
    pub has_label_column: bool,
}

/// Reads every row of `path` in `spec`'s format and columns.
pub(crate) fn read(path: &Path, bytes: &[u8], spec: &TaskSpec) -> Result<RawTable> {
    match spec.format_of(path) {
        Format::Tsv => read_tsv(path, bytes, spec),
        Format::Csv => read_csv(path, bytes, spec),
        Format::Jsonl => read_jsonl(path, bytes, spec),
    }
}

impl Columns {
    /// Builds a row from one line's fields.
    fn row(&self, path: &Path, line: usize, fields: &[&str], sep: &str) -> Result<RawRow> {
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
        Ok(RawRow {
            line,
            text: fields[self.text].to_string(),
            text_pair: self.text_pair.map(|c| fields[c].to_string()),
            label: self.label.and_then(|c| label_cell(fields[c])),
        })
    }

    fn table(&self, rows: Vec<RawRow>) -> RawTable {
        RawTable {
            rows,
            has_label_column: self.label.is_some(),
        }
    }
}

/// A label cell: trimmed, empty meaning "no label".
fn label_cell(cell: &str) -> Option<String> {
    let t = cell.trim();
    (!t.is_empty()).then(|| t.to_string())
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

fn read_tsv(path: &Path, bytes: &[u8], spec: &TaskSpec) -> Result<RawTable> {
    let text = utf8(path, strip_bom(bytes), 1)?;
    if text.is_empty() {
        return Err(Error::parse(
            path,
            1,
            "the file is empty; expected a header row such as `sentence<TAB>label`",
        ));
    }
    let mut lines: Vec<&str> = lines(text).collect();
    // Trailing blank lines are an editor's habit, not rows.
    while lines.len() > 1 && lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let header: Vec<&str> = lines[0].split('\t').collect();
    let columns = spec.columns(path, 1, &header)?;
    let mut out = Vec::with_capacity(lines.len() - 1);
    for (i, line) in lines[1..].iter().enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        out.push(columns.row(path, i + 2, &fields, "tab")?);
    }
    Ok(columns.table(out))
}

fn read_csv(path: &Path, bytes: &[u8], spec: &TaskSpec) -> Result<RawTable> {
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
            None => columns = Some(spec.columns(path, line, &fields)?),
            Some(c) => out.push(c.row(path, line, &fields, "comma")?),
        }
    }
    let columns = columns.ok_or_else(|| {
        Error::parse(
            path,
            1,
            "no header row; expected one such as `sentence,label`",
        )
    })?;
    Ok(columns.table(out))
}

/// JSON lines: the first object's keys name the columns; every line must be an
/// object with the text (and pair) keys. Strings are taken as they are; a
/// number or boolean label as its JSON text (`datasets` writes class ids as
/// numbers); a `null` label means unlabelled.
fn read_jsonl(path: &Path, bytes: &[u8], spec: &TaskSpec) -> Result<RawTable> {
    let text = utf8(path, strip_bom(bytes), 1)?;
    let mut lines: Vec<&str> = lines(text).collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        return Err(Error::parse(
            path,
            1,
            "the file is empty; expected one JSON object per line, such as \
             {\"text\": \"…\", \"label\": \"…\"}",
        ));
    }
    let mut names: Vec<String> = Vec::new();
    let mut columns: Option<Columns> = None;
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| Error::parse(path, n, format!("not valid JSON: {e}")))?;
        let serde_json::Value::Object(object) = value else {
            return Err(Error::parse(
                path,
                n,
                format!(
                    "expected a JSON object such as {{\"text\": …, \"label\": …}}, found {}",
                    json_kind(&value)
                ),
            ));
        };
        let c = match &columns {
            Some(c) => c,
            None => {
                names = object.keys().cloned().collect();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                columns.insert(spec.columns(path, n, &refs)?)
            }
        };
        let cell = |col: usize| -> Result<Option<String>> {
            let key = &names[col];
            let v = object
                .get(key)
                .ok_or_else(|| Error::parse(path, n, format!("the object has no key `{key}`")))?;
            match v {
                serde_json::Value::String(s) => Ok(Some(s.clone())),
                serde_json::Value::Null => Ok(None),
                serde_json::Value::Number(x) => Ok(Some(x.to_string())),
                serde_json::Value::Bool(b) => Ok(Some(b.to_string())),
                other => Err(Error::parse(
                    path,
                    n,
                    format!("`{key}` is {}, expected a string", json_kind(other)),
                )),
            }
        };
        let text_cell = |col: usize| -> Result<String> {
            cell(col)?.ok_or_else(|| {
                Error::parse(
                    path,
                    n,
                    format!("`{}` is null, expected a string", names[col]),
                )
            })
        };
        out.push(RawRow {
            line: n,
            text: text_cell(c.text)?,
            text_pair: c.text_pair.map(text_cell).transpose()?,
            label: match c.label {
                Some(col) => cell(col)?.and_then(|l| label_cell(&l)),
                None => None,
            },
        });
    }
    let columns = columns.expect("at least one line was read");
    Ok(columns.table(out))
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use crate::dataset::{Dataset, LabelSet};
    use crate::error::Result;
    use crate::task::TaskSpec;

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
        let e = read_err("x.tsv", b"body\tlabel\nok\t1\n");
        assert!(
            e.contains("x.tsv:1:") && e.contains("`body`, `label`"),
            "{e}"
        );
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
        // A blank line inside the rows is a row with too few fields.
        let e = read_err("x.tsv", b"sentence\tlabel\na\t1\n\nb\t0\n");
        assert!(e.contains("x.tsv:3:") && e.contains("found 1"), "{e}");
        // CSV: the line of a record is where it starts, after a multi-line field.
        let e = read_err("y.csv", b"sentence,label\n\"two\nlines\",1\nx,9\n");
        assert!(e.contains("y.csv:4:") && e.contains("`9`"), "{e}");
        let e = read_err("y.csv", b"sentence,label\nok,1\n\xfe,0\n");
        assert!(e.contains("y.csv:3:") && e.contains("UTF-8"), "{e}");
        let e = read_err("y.csv", b"body,label\nok,1\n");
        assert!(e.contains("y.csv:1:") && e.contains("--text-column"), "{e}");
    }

    fn read_with(
        name: &str,
        content: &[u8],
        spec: &TaskSpec,
        labels: &LabelSet,
    ) -> Result<Dataset> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        Dataset::read_with(&p, spec, labels)
    }

    #[test]
    fn tsv_is_literal_with_bom_crlf_and_trailing_blank_lines() {
        // MRPC's shape: a BOM, literal quotes, named columns, CRLF, blank lines at the end.
        let file = "\u{FEFF}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n\
                    1\t7\t8\the called \" the witness \"\tas \"only\" a witness\r\n\
                    0\t9\t10\t\"unbalanced\tb\r\n\r\n\r\n";
        let spec = TaskSpec {
            text_column: Some("#1 String".into()),
            text_pair_column: Some("#2 String".into()),
            label_column: Some("Quality".into()),
            ..Default::default()
        };
        let d = read_with("m.tsv", file.as_bytes(), &spec, &LabelSet::binary()).unwrap();
        assert_eq!(d.texts(), ["he called \" the witness \"", "\"unbalanced"]);
        assert_eq!(d.text_pairs().unwrap(), ["as \"only\" a witness", "b"]);
        assert_eq!(d.labels(), Some(vec![1, 0]));
        assert!(d.is_pairs());
    }

    #[test]
    fn csv_follows_rfc_4180_with_named_columns() {
        let file = b"\xEF\xBB\xBFtext,label\r\n\"a, \"\"quoted\"\"\r\nline\",very positive\r\nplain,negative\r\n\r\n";
        let labels = LabelSet::new(vec!["negative".into(), "very positive".into()]);
        let d = read_with("s.csv", file, &TaskSpec::default(), &labels).unwrap();
        assert_eq!(d.texts(), ["a, \"quoted\"\r\nline", "plain"]);
        assert_eq!(d.labels(), Some(vec![1, 0]));
    }

    #[test]
    fn json_lines_read_strings_numbers_and_null_labels() {
        let file = b"{\"text\": \"good \\\"film\\\"\", \"label\": 2, \"idx\": 0}\n\
                     {\"label\": null, \"text\": \"\", \"idx\": 1}\n\
                     {\"text\": \"tab\\there\", \"label\": \"10\", \"idx\": 2}\n\n";
        let labels = LabelSet::new(vec!["2".into(), "10".into()]);
        let d = read_with("d.jsonl", file, &TaskSpec::default(), &labels).unwrap();
        assert_eq!(d.texts(), ["good \"film\"", "", "tab\there"]);
        assert_eq!(
            d.examples.iter().map(|e| e.label).collect::<Vec<_>>(),
            [Some(0), None, Some(1)]
        );
        let pairs = b"{\"question\": \"q?\", \"answer\": \"a.\", \"label\": \"1\"}\n";
        let d = read_with("p.json", pairs, &TaskSpec::default(), &LabelSet::binary()).unwrap();
        assert_eq!(
            (d.texts(), d.text_pairs().unwrap()),
            (vec!["q?"], vec!["a."])
        );
    }

    #[test]
    fn json_lines_errors_name_the_line() {
        let spec = TaskSpec::default();
        let b = LabelSet::binary();
        let e = read_with(
            "x.jsonl",
            b"{\"text\": \"a\", \"label\": 1}\n[\"a\", 1]\n",
            &spec,
            &b,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("x.jsonl:2:") && e.contains("an array") && e.contains("object"),
            "{e}"
        );
        let e = read_with(
            "x.jsonl",
            b"{\"text\": \"a\"}\n{\"txt\": \"b\"}\n",
            &spec,
            &b,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("x.jsonl:2:") && e.contains("no key `text`"),
            "{e}"
        );
        let e = read_with("x.jsonl", b"{\"text\": [1]}\n", &spec, &b)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.jsonl:1:") && e.contains("expected a string"),
            "{e}"
        );
        let e = read_with("x.jsonl", b"{\"text\": \"a\"}\n{\"text\": \n", &spec, &b)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.jsonl:2:") && e.contains("not valid JSON"),
            "{e}"
        );
        let e = read_with("x.jsonl", b"{\"body\": \"a\"}\n", &spec, &b)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`body`") && e.contains("--text-column"), "{e}");
        let e = read_with("x.jsonl", b"\n\n", &spec, &b)
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.jsonl:1:") && e.contains("empty"), "{e}");
    }

    #[test]
    fn format_flag_overrides_the_extension() {
        let spec = TaskSpec {
            format: Some(crate::Format::Csv),
            ..Default::default()
        };
        let d = read_with(
            "a.txt",
            b"sentence,label\n\"x\ty\",1\n",
            &spec,
            &LabelSet::binary(),
        )
        .unwrap();
        assert_eq!(d.texts(), ["x\ty"]);
    }
}
