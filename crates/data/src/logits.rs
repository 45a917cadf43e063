//! The teacher-logit cache: the teacher's output for every sentence of a data
//! set, computed once and reused by every distillation run.
//!
//! On disk it is a safetensors file with one tensor `logits` (F32, shape
//! `[count, num_labels]`, rows in data order) and `__metadata__` holding
//! `format` = `candle-distill-logits/1`, `teacher` (path or hub id),
//! `teacher_sha256` (of the teacher's config and weights), `labels` (the
//! teacher's label names in column order, a JSON list), `data_sha256`
//! ([`Dataset::fingerprint`] of the labelled data) and `count`.
//!
//! Every value must be finite: a NaN or ±inf is refused when a cache is built,
//! saved or loaded. A cache without `labels` (written before they were
//! recorded) is refused with a request to relabel: its columns cannot be
//! matched to label names. [`TeacherLogits::check_matches`] refuses a cache
//! made for other data or other labels, [`TeacherLogits::check_compatible`]
//! two caches from different teachers.

use crate::dataset::{Dataset, LabelSet};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::shard::{Shard, ShardInfo};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The `format` value in a logit cache's metadata.
pub const LOGITS_FORMAT: &str = "candle-distill-logits/1";
/// Name of the tensor in a logit cache.
pub const LOGITS_TENSOR: &str = "logits";

/// Where a logit cache came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogitsMeta {
    /// The teacher: a local path or a hub id.
    pub teacher: String,
    /// SHA-256 of the teacher's config and weights.
    pub teacher_sha256: String,
    /// The teacher's label names (its `id2label`), one per column, in column order.
    pub labels: Vec<String>,
    /// [`Dataset::fingerprint`] of the data the logits were computed for.
    pub data_sha256: String,
    /// Number of sentences (rows).
    pub count: usize,
    /// Set for a shard of the data (`distill teacher label --shard`): its place.
    pub shard: Option<ShardInfo>,
    /// Arithmetic of the teacher's matrix products: `f32` (also every cache that predates
    /// the field) or `bf16`. Caches of different precision do not mix.
    pub precision: String,
}

/// The precision of caches that do not record one.
pub const DEFAULT_PRECISION: &str = "f32";

/// Teacher logits for a data set, row-major `[count, num_labels]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TeacherLogits {
    /// The logits, row `i` for sentence `i`.
    pub logits: Vec<f32>,
    /// Columns per row.
    pub num_labels: usize,
    /// Provenance.
    pub meta: LogitsMeta,
    /// The file these logits were loaded from (`None` when built in memory), for messages.
    pub source: Option<PathBuf>,
}

/// Row, column and value of the first NaN or ±inf in row-major `values` with `columns` columns.
fn first_non_finite(values: &[f32], columns: usize) -> Option<(usize, usize, f32)> {
    let i = values.iter().position(|v| !v.is_finite())?;
    Some((i / columns, i % columns, values[i]))
}

impl TeacherLogits {
    /// Logits for `meta.count` sentences, checking that there is at least one
    /// row, that `logits` has `meta.count · num_labels` values, all finite, and
    /// that `meta.labels` names every column.
    pub fn new(logits: Vec<f32>, num_labels: usize, meta: LogitsMeta) -> Result<Self> {
        // A shard may be empty (fewer windows than shards); a whole cache may not.
        let empty = meta.count == 0 && meta.shard.is_none();
        if num_labels == 0 || empty || logits.len() != meta.count * num_labels {
            return Err(Error::Invalid(format!(
                "teacher logits: {} values do not make {} rows (at least one) of {num_labels} labels",
                logits.len(),
                meta.count
            )));
        }
        if meta.labels.len() != num_labels {
            return Err(Error::Invalid(format!(
                "teacher logits: {} label names ({}) for {num_labels} columns",
                meta.labels.len(),
                meta.labels.join(", ")
            )));
        }
        let out = TeacherLogits {
            logits,
            num_labels,
            meta,
            source: None,
        };
        out.check_finite(&out.origin())?;
        Ok(out)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.logits.len().checked_div(self.num_labels).unwrap_or(0)
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The logits of sentence `i`.
    ///
    /// # Panics
    /// If `i` is out of range.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.logits[i * self.num_labels..(i + 1) * self.num_labels]
    }

    /// The file these logits came from, or a placeholder, for messages.
    pub(crate) fn origin(&self) -> PathBuf {
        self.source
            .clone()
            .unwrap_or_else(|| PathBuf::from("<in-memory teacher logits>"))
    }

    fn check_finite(&self, path: &Path) -> Result<()> {
        match first_non_finite(&self.logits, self.num_labels) {
            None => Ok(()),
            Some((row, column, value)) => Err(Error::NonFiniteLogit {
                path: path.to_path_buf(),
                row,
                column,
                value,
            }),
        }
    }

    /// Writes the cache atomically (see the module docs).
    pub fn save(&self, path: &Path) -> Result<()> {
        if self.num_labels == 0
            || (self.meta.count == 0 && self.meta.shard.is_none())
            || self.logits.len() != self.meta.count * self.num_labels
            || self.meta.labels.len() != self.num_labels
        {
            return Err(Error::format(
                path,
                format!(
                    "cannot save {} logits as {} rows of {} labels named [{}]",
                    self.logits.len(),
                    self.meta.count,
                    self.num_labels,
                    self.meta.labels.join(", ")
                ),
            ));
        }
        self.check_finite(path)?;
        let bytes: Vec<u8> = self.logits.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(
            Dtype::F32,
            vec![self.meta.count, self.num_labels],
            &bytes,
        )
        .map_err(|e| Error::format(path, format!("cannot build tensor: {e}")))?;
        let labels = serde_json::to_string(&self.meta.labels)
            .map_err(|e| Error::format(path, format!("cannot encode the label names: {e}")))?;
        let metadata = HashMap::from([
            ("format".to_string(), LOGITS_FORMAT.to_string()),
            ("teacher".to_string(), self.meta.teacher.clone()),
            (
                "teacher_sha256".to_string(),
                self.meta.teacher_sha256.clone(),
            ),
            ("labels".to_string(), labels),
            ("data_sha256".to_string(), self.meta.data_sha256.clone()),
            ("count".to_string(), self.meta.count.to_string()),
            ("precision".to_string(), self.meta.precision.clone()),
        ]);
        let mut metadata = metadata;
        if let Some(s) = &self.meta.shard {
            metadata.extend([
                ("shard".to_string(), s.shard.to_string()),
                (
                    "rows".to_string(),
                    format!("{}..{}", s.rows.start, s.rows.end),
                ),
                ("total".to_string(), s.total.to_string()),
                ("window".to_string(), s.window.to_string()),
            ]);
        }
        let file = safetensors::serialize([(LOGITS_TENSOR, view)], Some(metadata))
            .map_err(|e| Error::format(path, format!("cannot encode safetensors: {e}")))?;
        write_atomic(path, &file).map_err(|e| Error::io("write", path, e))
    }

    /// Reads a cache written by [`TeacherLogits::save`], checking the format,
    /// the tensor's name, dtype and shape, the metadata and that every value
    /// is finite.
    pub fn load(path: &Path) -> Result<TeacherLogits> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        let bad = |reason: String| Error::format(path, reason);
        let tensors = SafeTensors::deserialize(&bytes)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let meta = header.metadata().as_ref().ok_or_else(|| {
            bad("no __metadata__; not a logit cache written by `distill teacher label`".into())
        })?;
        let field = |key: &str| {
            meta.get(key)
                .cloned()
                .ok_or_else(|| bad(format!("metadata lacks `{key}`")))
        };
        let format = field("format")?;
        if format != LOGITS_FORMAT {
            return Err(bad(format!(
                "unknown format `{format}`, expected `{LOGITS_FORMAT}`"
            )));
        }
        let count_text = field("count")?;
        let count: usize = count_text
            .parse()
            .map_err(|_| bad(format!("metadata `count` is `{count_text}`, not a number")))?;
        if count == 0 && !meta.contains_key("shard") {
            return Err(bad("the cache holds no rows".into()));
        }

        let view = tensors
            .tensor(LOGITS_TENSOR)
            .map_err(|_| bad(format!("no tensor named `{LOGITS_TENSOR}`")))?;
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!(
                "tensor `{LOGITS_TENSOR}` is {:?}, expected F32",
                view.dtype()
            )));
        }
        let (rows, num_labels) = match view.shape() {
            [r, c] if *c > 0 => (*r, *c),
            s => {
                return Err(bad(format!(
                    "tensor `{LOGITS_TENSOR}` has shape {s:?}, expected [count, num_labels]"
                )))
            }
        };
        if rows != count {
            return Err(bad(format!(
                "metadata says {count} rows but the tensor has {rows}"
            )));
        }
        // Caches written before label names were recorded cannot be matched to a
        // data set's labels; relabelling is cheap next to training on the wrong columns.
        let labels_text = meta.get("labels").ok_or_else(|| {
            bad(
                "metadata lacks `labels`: the cache predates recorded label names, so its \
                 columns cannot be matched to the data's labels; relabel the data with \
                 `distill teacher label`"
                    .into(),
            )
        })?;
        let labels: Vec<String> = serde_json::from_str(labels_text).map_err(|_| {
            bad(format!(
                "metadata `labels` is `{labels_text}`, not a JSON list of names"
            ))
        })?;
        if labels.len() != num_labels {
            return Err(bad(format!(
                "metadata `labels` names {} labels but the tensor has {num_labels} columns",
                labels.len()
            )));
        }
        let logits = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let out = TeacherLogits {
            logits,
            num_labels,
            meta: LogitsMeta {
                teacher: field("teacher")?,
                teacher_sha256: field("teacher_sha256")?,
                labels,
                data_sha256: field("data_sha256")?,
                count,
                shard: shard_info(meta, count).map_err(bad)?,
                precision: meta
                    .get("precision")
                    .map_or(DEFAULT_PRECISION, String::as_str)
                    .to_string(),
            },
            source: Some(path.to_path_buf()),
        };
        out.check_finite(path)?;
        Ok(out)
    }

    /// Checks that these logits were computed for `data`: same number of
    /// sentences, same [`Dataset::fingerprint`], and columns named as `labels`
    /// (by name, in order).
    pub fn check_matches(&self, data: &Dataset, labels: &LabelSet) -> Result<()> {
        let expected_sha256 = data.fingerprint();
        if self.meta.count != data.len()
            || self.len() != data.len()
            || self.meta.data_sha256 != expected_sha256
        {
            return Err(Error::LogitsMismatch {
                path: self.origin(),
                expected_count: data.len(),
                found_count: self.meta.count,
                expected_sha256,
                found_sha256: self.meta.data_sha256.clone(),
            });
        }
        if self.meta.labels != labels.names() {
            return Err(Error::LabelsMismatch {
                path: self.origin(),
                expected: labels.names().to_vec(),
                found: self.meta.labels.clone(),
            });
        }
        Ok(())
    }

    /// Checks that each row has `columns` values: one per output of the
    /// student's loss.
    pub fn check_columns(&self, columns: usize) -> Result<()> {
        if self.num_labels == columns {
            return Ok(());
        }
        Err(Error::format(
            self.origin(),
            format!(
                "the cache has {} column(s) per sentence (labels [{}]) but the student's loss \
                 needs {columns}, one per output",
                self.num_labels,
                self.meta.labels.join(", ")
            ),
        ))
    }

    /// Checks that `other` comes from the same teacher: same weights
    /// (`teacher_sha256`, the teacher's identity: one folder may be named by
    /// several paths), same columns and label names.
    pub fn check_compatible(&self, other: &TeacherLogits) -> Result<()> {
        let (a, b) = (&self.meta, &other.meta);
        let mut diffs = Vec::new();
        if a.teacher_sha256 != b.teacher_sha256 {
            diffs.push(format!(
                "teacher `{}` (sha256 {}) vs `{}` (sha256 {})",
                a.teacher, a.teacher_sha256, b.teacher, b.teacher_sha256
            ));
        }
        if self.num_labels != other.num_labels {
            diffs.push(format!(
                "{} vs {} columns",
                self.num_labels, other.num_labels
            ));
        }
        if a.precision != b.precision {
            diffs.push(format!("precision {} vs {}", a.precision, b.precision));
        }
        if a.labels != b.labels {
            diffs.push(format!(
                "labels [{}] vs [{}]",
                a.labels.join(", "),
                b.labels.join(", ")
            ));
        }
        if diffs.is_empty() {
            return Ok(());
        }
        Err(Error::TeacherMismatch {
            path: self.origin(),
            other: other.origin(),
            reason: diffs.join("; "),
        })
    }
}

/// A shard's place from its metadata (`None` for a whole cache).
fn shard_info(
    meta: &HashMap<String, String>,
    count: usize,
) -> std::result::Result<Option<ShardInfo>, String> {
    let Some(spec) = meta.get("shard") else {
        return Ok(None);
    };
    let shard = Shard::parse(spec).map_err(|e| e.to_string())?;
    let number = |key: &str| -> std::result::Result<usize, String> {
        let v = meta
            .get(key)
            .ok_or(format!("shard metadata lacks `{key}`"))?;
        v.parse()
            .map_err(|_| format!("shard metadata `{key}` is `{v}`, not a number"))
    };
    let rows = meta.get("rows").ok_or("shard metadata lacks `rows`")?;
    let (a, b) = rows
        .split_once("..")
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
        .ok_or(format!("shard metadata `rows` is `{rows}`, not start..end"))?;
    let (total, window) = (number("total")?, number("window")?);
    if a > b || b > total || b - a != count || window == 0 {
        return Err(format!(
            "shard metadata rows {a}..{b} of {total} (window {window}) do not fit {count} rows"
        ));
    }
    Ok(Some(ShardInfo {
        shard,
        rows: a..b,
        total,
        window,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    fn data() -> Dataset {
        Dataset::from_texts(vec![
            "a good film".into(),
            "a bad film".into(),
            "meh".into(),
        ])
    }

    fn logits_for(d: &Dataset) -> TeacherLogits {
        let meta = LogitsMeta {
            teacher: "bert-base-uncased-sst2".into(),
            teacher_sha256: "t".repeat(64),
            labels: vec!["0".into(), "1".into()],
            data_sha256: d.fingerprint(),
            count: d.len(),
            shard: None,
            precision: DEFAULT_PRECISION.into(),
        };
        TeacherLogits::new(vec![1.5, -1.5, -2.0, 2.25, 0.0, f32::MIN_POSITIVE], 2, meta).unwrap()
    }

    fn raw_file(
        path: &Path,
        dtype: Dtype,
        shape: Vec<usize>,
        name: &str,
        meta: Option<Vec<(&str, &str)>>,
    ) {
        let n: usize = shape.iter().product();
        let bytes = vec![0u8; n * dtype.bitsize() / 8];
        let view = TensorView::new(dtype, shape, &bytes).unwrap();
        let meta = meta.map(|m| {
            m.into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        });
        std::fs::write(path, safetensors::serialize([(name, view)], meta).unwrap()).unwrap();
    }

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logits/train.safetensors");
        let d = data();
        let l = logits_for(&d);
        assert_eq!(l.row(1), [-2.0, 2.25]);
        assert_eq!(l.len(), 3);
        l.save(&path).unwrap();
        let back = TeacherLogits::load(&path).unwrap();
        assert_eq!(back.logits, l.logits);
        assert_eq!((back.num_labels, &back.meta), (2, &l.meta));
        assert_eq!(back.source.as_deref(), Some(path.as_path()));
        back.check_matches(&d, &LabelSet::binary()).unwrap();
    }

    #[test]
    fn new_rejects_wrong_sizes() {
        let mut meta = logits_for(&data()).meta;
        assert!(TeacherLogits::new(vec![0.0; 5], 2, meta.clone()).is_err());
        meta.count = 0;
        assert!(TeacherLogits::new(vec![], 0, meta).is_err());
    }

    #[test]
    fn mismatch_names_file_counts_hashes_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.safetensors");
        let d = data();
        logits_for(&d).save(&path).unwrap();
        let l = TeacherLogits::load(&path).unwrap();
        let other = d.subset(&[0, 1]);
        let e = l
            .check_matches(&other, &LabelSet::binary())
            .unwrap_err()
            .to_string();
        for part in [
            "l.safetensors",
            "3 sentences",
            "2 sentences",
            "distill teacher label",
        ] {
            assert!(e.contains(part), "{e} lacks {part}");
        }
        assert!(
            e.contains(&other.fingerprint()) && e.contains(&d.fingerprint()),
            "{e}"
        );
        // Same count, different text: caught by the hash.
        let edited = Dataset::from_texts(vec![
            "a good film".into(),
            "a bad film".into(),
            "meh!".into(),
        ]);
        assert!(l.check_matches(&edited, &LabelSet::binary()).is_err());
    }

    #[test]
    fn load_rejects_malformed_caches() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.safetensors");
        let full = vec![
            ("format", LOGITS_FORMAT),
            ("teacher", "t"),
            ("teacher_sha256", "x"),
            ("data_sha256", "y"),
            ("count", "3"),
            ("labels", r#"["0","1"]"#),
        ];
        type Case<'a> = (
            Dtype,
            Vec<usize>,
            &'a str,
            Option<Vec<(&'a str, &'a str)>>,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            (Dtype::F32, vec![3, 2], "logits", None, "__metadata__"),
            (
                Dtype::F32,
                vec![3, 2],
                "scores",
                Some(full.clone()),
                "no tensor named `logits`",
            ),
            (
                Dtype::F64,
                vec![3, 2],
                "logits",
                Some(full.clone()),
                "expected F32",
            ),
            (Dtype::F32, vec![6], "logits", Some(full.clone()), "shape"),
            (
                Dtype::F32,
                vec![4, 2],
                "logits",
                Some(full.clone()),
                "3 rows but the tensor has 4",
            ),
            (
                Dtype::F32,
                vec![3, 2],
                "logits",
                Some(full[..4].to_vec()),
                "lacks `count`",
            ),
            (
                Dtype::F32,
                vec![3, 2],
                "logits",
                Some(vec![("format", "other/1")]),
                "unknown format",
            ),
        ];
        for (dtype, shape, name, meta, reason) in cases {
            raw_file(&p, dtype, shape, name, meta);
            let e = TeacherLogits::load(&p).unwrap_err().to_string();
            assert!(
                e.contains("bad.safetensors") && e.contains(reason),
                "{e} lacks {reason}"
            );
        }
        std::fs::write(&p, b"garbage").unwrap();
        assert!(TeacherLogits::load(&p)
            .unwrap_err()
            .to_string()
            .contains("not a safetensors"));
    }

    /// A cache file with `values` as its `[rows, cols]` tensor and `full`'s metadata
    /// (count = rows) plus `extra` entries.
    fn cache_file(path: &Path, values: &[f32], cols: usize, extra: &[(&str, &str)]) {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let rows = values.len() / cols;
        let view = TensorView::new(Dtype::F32, vec![rows, cols], &bytes).unwrap();
        let mut meta: HashMap<String, String> = [
            ("format", LOGITS_FORMAT),
            ("teacher", "t"),
            ("teacher_sha256", "x"),
            ("data_sha256", "y"),
            ("labels", r#"["0","1"]"#),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        meta.insert("count".into(), rows.to_string());
        for (k, v) in extra {
            meta.insert(k.to_string(), v.to_string());
        }
        let file = safetensors::serialize([(LOGITS_TENSOR, view)], Some(meta)).unwrap();
        std::fs::write(path, file).unwrap();
    }

    #[test]
    fn load_refuses_nan_and_inf_naming_file_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("poisoned.safetensors");
        for (bad, shown) in [
            (f32::NAN, "NaN"),
            (f32::INFINITY, "inf"),
            (f32::NEG_INFINITY, "-inf"),
        ] {
            cache_file(&p, &[0.5, -0.5, 1.0, 2.0, 3.0, bad], 2, &[]);
            let e = TeacherLogits::load(&p).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::NonFiniteLogit {
                        row: 2,
                        column: 1,
                        ..
                    }
                ),
                "{e:?}"
            );
            let m = e.to_string();
            for part in ["poisoned.safetensors", "row 2", "column 1", shown] {
                assert!(m.contains(part), "{m} lacks {part}");
            }
        }
        cache_file(&p, &[0.5, -0.5, 1.0, 2.0], 2, &[]);
        let clean = TeacherLogits::load(&p).unwrap();
        assert_eq!(clean.len(), 2);
        // A cache from before precision was recorded was computed in f32.
        assert_eq!(clean.meta.precision, DEFAULT_PRECISION);
        cache_file(&p, &[0.5, -0.5, 1.0, 2.0], 2, &[("precision", "bf16")]);
        assert_eq!(TeacherLogits::load(&p).unwrap().meta.precision, "bf16");
    }

    #[test]
    fn new_and_save_refuse_non_finite_values() {
        let d = data();
        let mut l = logits_for(&d);
        let e = TeacherLogits::new(vec![0.0, 1.0, f32::NAN, 0.0, 0.0, 0.0], 2, l.meta.clone())
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::NonFiniteLogit {
                    row: 1,
                    column: 0,
                    ..
                }
            ),
            "{e:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.safetensors");
        l.logits[3] = f32::INFINITY;
        let e = l.save(&p).unwrap_err().to_string();
        assert!(
            e.contains("out.safetensors") && e.contains("row 1, column 1"),
            "{e}"
        );
        assert!(!p.exists(), "a cache with inf was written");
    }

    #[test]
    fn empty_cache_is_refused() {
        let mut meta = logits_for(&data()).meta;
        meta.count = 0;
        assert!(TeacherLogits::new(vec![], 2, meta).is_err());
    }

    #[test]
    fn save_writes_label_names_and_load_requires_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.safetensors");
        let d = data();
        logits_for(&d).save(&p).unwrap();
        let (_, header) = SafeTensors::read_metadata(&std::fs::read(&p).unwrap()).unwrap();
        let meta = header.metadata().clone().unwrap();
        assert_eq!(meta["labels"], r#"["0","1"]"#);
        assert_eq!(
            TeacherLogits::load(&p).unwrap().meta.labels,
            vec!["0".to_string(), "1".to_string()]
        );

        // A cache from before label names were recorded: refused, with the fix.
        let mut old = meta.clone();
        old.remove("labels");
        let bytes: Vec<u8> = [0f32; 6].iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = TensorView::new(Dtype::F32, vec![3, 2], &bytes).unwrap();
        std::fs::write(
            &p,
            safetensors::serialize([(LOGITS_TENSOR, view)], Some(old)).unwrap(),
        )
        .unwrap();
        let e = TeacherLogits::load(&p).unwrap_err().to_string();
        for part in ["l.safetensors", "lacks `labels`", "distill teacher label"] {
            assert!(e.contains(part), "{e} lacks {part}");
        }

        // Label names must be a JSON list naming every column.
        for (labels, reason) in [
            (
                r#"["0","1","2"]"#,
                "names 3 labels but the tensor has 2 columns",
            ),
            ("0,1", "not a JSON list"),
        ] {
            cache_file(&p, &[0.0; 4], 2, &[("labels", labels)]);
            let e = TeacherLogits::load(&p).unwrap_err().to_string();
            assert!(e.contains(reason), "{e} lacks {reason}");
        }
        let mut meta = logits_for(&d).meta;
        meta.labels.pop();
        assert!(TeacherLogits::new(vec![0.0; 6], 2, meta).is_err());
    }

    #[test]
    fn labels_are_matched_by_name_and_order_not_count() {
        let d = data();
        let mut l = logits_for(&d);
        l.meta.labels = vec!["neg".into(), "pos".into()];
        let e = l.check_matches(&d, &LabelSet::binary()).unwrap_err();
        assert!(matches!(e, Error::LabelsMismatch { .. }), "{e:?}");
        let m = e.to_string();
        assert!(m.contains("[neg, pos]") && m.contains("[0, 1]"), "{m}");
        let named = LabelSet::new(vec!["neg".into(), "pos".into()]);
        l.check_matches(&d, &named).unwrap();
        let swapped = LabelSet::new(vec!["pos".into(), "neg".into()]);
        assert!(l.check_matches(&d, &swapped).is_err());
    }

    #[test]
    fn column_count_must_match_the_loss() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("one.safetensors");
        cache_file(&p, &[0.5, -1.0, 2.0], 1, &[("labels", r#"["1"]"#)]);
        let l = TeacherLogits::load(&p).unwrap();
        l.check_columns(1).unwrap();
        let e = l.check_columns(2).unwrap_err().to_string();
        for part in ["one.safetensors", "1 column(s)", "needs 2"] {
            assert!(e.contains(part), "{e} lacks {part}");
        }
    }

    #[test]
    fn caches_from_different_teachers_are_incompatible() {
        let d = data();
        let train = TeacherLogits {
            source: Some("train.safetensors".into()),
            ..logits_for(&d)
        };
        let mut transfer = TeacherLogits {
            source: Some("transfer.safetensors".into()),
            ..logits_for(&d)
        };
        // The same weights under another path are the same teacher.
        transfer.meta.teacher = "./bert-base-uncased-sst2".into();
        train.check_compatible(&transfer).unwrap();

        let mut other = transfer.clone();
        other.meta.teacher_sha256 = "u".repeat(64);
        let e = train.check_compatible(&other).unwrap_err();
        assert!(matches!(e, Error::TeacherMismatch { .. }), "{e:?}");
        let m = e.to_string();
        for part in [
            "train.safetensors",
            "transfer.safetensors",
            "sha256",
            &"u".repeat(64),
        ] {
            assert!(m.contains(part), "{m} lacks {part}");
        }

        let mut renamed = transfer.clone();
        renamed.meta.labels = vec!["neg".into(), "pos".into()];
        let m = train.check_compatible(&renamed).unwrap_err().to_string();
        assert!(m.contains("labels [0, 1] vs [neg, pos]"), "{m}");

        let three = TeacherLogits {
            logits: vec![0.0; 9],
            num_labels: 3,
            meta: LogitsMeta {
                labels: vec!["a".into(), "b".into(), "c".into()],
                ..transfer.meta.clone()
            },
            source: transfer.source.clone(),
        };
        let m = train.check_compatible(&three).unwrap_err().to_string();
        assert!(m.contains("2 vs 3 columns"), "{m}");
    }
}
