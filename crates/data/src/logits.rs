//! The teacher-logit cache: the teacher's output for every sentence of a data
//! set, computed once and reused by every distillation run.
//!
//! On disk it is a safetensors file with one tensor `logits` (F32, shape
//! `[count, num_labels]`, rows in data order) and `__metadata__` holding
//! `format` = `candle-distill-logits/1`, `teacher` (path or hub id),
//! `teacher_sha256` (of the teacher's config and weights), `data_sha256`
//! ([`Dataset::fingerprint`] of the labelled data) and `count`.
//! [`TeacherLogits::check_matches`] refuses a cache made for other data.

use crate::dataset::Dataset;
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
    /// [`Dataset::fingerprint`] of the data the logits were computed for.
    pub data_sha256: String,
    /// Number of sentences (rows).
    pub count: usize,
    /// The teacher's label names, in column order.
    pub labels: Vec<String>,
    /// Set for a shard of the data (`distill teacher label --shard`): its place.
    pub shard: Option<ShardInfo>,
}

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

impl TeacherLogits {
    /// Logits for `meta.count` sentences, checking that `logits` has
    /// `meta.count · num_labels` values.
    pub fn new(logits: Vec<f32>, num_labels: usize, meta: LogitsMeta) -> Result<Self> {
        if num_labels == 0 || logits.len() != meta.count * num_labels {
            return Err(Error::Invalid(format!(
                "teacher logits: {} values do not make {} rows of {num_labels} labels",
                logits.len(),
                meta.count
            )));
        }
        Ok(TeacherLogits {
            logits,
            num_labels,
            meta,
            source: None,
        })
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

    /// Writes the cache atomically (see the module docs).
    pub fn save(&self, path: &Path) -> Result<()> {
        if self.num_labels == 0 || self.logits.len() != self.meta.count * self.num_labels {
            return Err(Error::format(
                path,
                format!(
                    "cannot save {} logits as {} rows of {} labels",
                    self.logits.len(),
                    self.meta.count,
                    self.num_labels
                ),
            ));
        }
        let bytes: Vec<u8> = self.logits.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(
            Dtype::F32,
            vec![self.meta.count, self.num_labels],
            &bytes,
        )
        .map_err(|e| Error::format(path, format!("cannot build tensor: {e}")))?;
        let metadata = HashMap::from([
            ("format".to_string(), LOGITS_FORMAT.to_string()),
            ("teacher".to_string(), self.meta.teacher.clone()),
            (
                "teacher_sha256".to_string(),
                self.meta.teacher_sha256.clone(),
            ),
            ("data_sha256".to_string(), self.meta.data_sha256.clone()),
            ("count".to_string(), self.meta.count.to_string()),
            ("labels".to_string(), self.meta.labels.join(",")),
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
    /// the tensor's name, dtype and shape, and the metadata.
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
        let logits = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(TeacherLogits {
            logits,
            num_labels,
            meta: LogitsMeta {
                teacher: field("teacher")?,
                teacher_sha256: field("teacher_sha256")?,
                data_sha256: field("data_sha256")?,
                count,
                labels: meta
                    .get("labels")
                    .map(|l| l.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
                shard: shard_info(meta, count).map_err(bad)?,
            },
            source: Some(path.to_path_buf()),
        })
    }

    /// Checks that these logits were computed for `data`: same number of
    /// sentences and same [`Dataset::fingerprint`].
    pub fn check_matches(&self, data: &Dataset) -> Result<()> {
        let expected_sha256 = data.fingerprint();
        if self.meta.count == data.len()
            && self.len() == data.len()
            && self.meta.data_sha256 == expected_sha256
        {
            return Ok(());
        }
        Err(Error::LogitsMismatch {
            path: self
                .source
                .clone()
                .unwrap_or_else(|| PathBuf::from("<in-memory teacher logits>")),
            expected_count: data.len(),
            found_count: self.meta.count,
            expected_sha256,
            found_sha256: self.meta.data_sha256.clone(),
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
            data_sha256: d.fingerprint(),
            count: d.len(),
            labels: vec!["0".into(), "1".into()],
            shard: None,
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
        back.check_matches(&d).unwrap();
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
        let e = l.check_matches(&other).unwrap_err().to_string();
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
        assert!(l.check_matches(&edited).is_err());
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
}
