//! Labelling past one machine: the I-th of N contiguous slices of a data set, and the
//! merge of the N logit shards back into one cache.
//!
//! Rows are cut into slices at multiples of a window (the teacher sorts rows by length
//! within windows of that many rows), so every row lands in the same batch however the data
//! is sharded, and the merged cache equals a single run's bit for bit. A shard is a logit
//! cache whose metadata also holds `shard` (`I/N`), `rows` (`start..end`), `total` and
//! `window`; [`merge`] checks that the shards are complete, do not overlap and come from
//! one teacher and one data file.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::logits::{LogitsMeta, TeacherLogits};

/// Environment variables a job scheduler sets to a task's index, read by `auto/N`.
pub const INDEX_VARIABLES: [&str; 2] = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"];

/// One slice of N (`index` counts from 0, as Slurm arrays and Kubernetes Indexed Jobs do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// Where a shard's rows sit in the whole data set (part of a shard's metadata).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardInfo {
    pub shard: Shard,
    pub rows: Range<usize>,
    /// Rows in the whole data set.
    pub total: usize,
    /// The length-sorting window the slices are aligned to.
    pub window: usize,
}

impl serde::Serialize for Shard {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Shard {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Shard::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Parses `I/N` (0 ≤ I < N).
    pub fn parse(spec: &str) -> Result<Shard> {
        let bad =
            |why: &str| Error::Invalid(format!("shard `{spec}`: {why} (expected I/N, 0 ≤ I < N)"));
        let (i, n) = spec.split_once('/').ok_or_else(|| bad("no `/`"))?;
        let count: usize = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        let index: usize = i.trim().parse().map_err(|_| bad("I is not a number"))?;
        if count == 0 || index >= count {
            return Err(bad("out of range"));
        }
        Ok(Shard { index, count })
    }

    /// Parses `I/N`, or `auto/N` with I from the first of [`INDEX_VARIABLES`] that is set.
    pub fn parse_or_auto(spec: &str, env: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        let Some(n) = spec.strip_prefix("auto/") else {
            return Shard::parse(spec);
        };
        let (var, index) = INDEX_VARIABLES
            .iter()
            .find_map(|v| env(v).map(|i| (*v, i)))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "shard `{spec}`: none of {} is set (run it as a Slurm job array or a \
                     Kubernetes Indexed Job, or give the index: I/N)",
                    INDEX_VARIABLES.join(", ")
                ))
            })?;
        Shard::parse(&format!("{}/{n}", index.trim()))
            .map_err(|e| Error::Invalid(format!("{e} (the index came from {var}={index})")))
    }

    /// This shard's rows of `total`: whole windows, split as evenly as windows allow.
    pub fn rows(&self, total: usize, window: usize) -> Range<usize> {
        let windows = total.div_ceil(window.max(1));
        let cut = |k: usize| (windows * k / self.count * window.max(1)).min(total);
        cut(self.index)..cut(self.index + 1)
    }
}

/// Merges shards (in any order) into the cache of the whole data set.
pub fn merge(mut shards: Vec<TeacherLogits>) -> Result<TeacherLogits> {
    let name = TeacherLogits::origin;
    let info = |t: &TeacherLogits| -> Result<ShardInfo> {
        t.meta.shard.clone().ok_or_else(|| {
            Error::Invalid(format!(
                "{}: a whole cache, not a shard (it has no `shard` metadata)",
                name(t).display()
            ))
        })
    };
    let first = shards
        .first()
        .ok_or_else(|| Error::Invalid("no shards to merge".into()))?;
    let head = info(first)?;
    let n = head.shard.count;
    let mut slots: Vec<Option<PathBuf>> = vec![None; n];
    for t in &shards {
        let s = info(t)?;
        let foreign = |what: &str, a: &str, b: &str| {
            Err(Error::Invalid(format!(
                "{} is from another run than {}: {what} `{b}` vs `{a}`",
                name(t).display(),
                name(first).display()
            )))
        };
        if s.shard.count != n || s.total != head.total || s.window != head.window {
            return foreign(
                "shard layout",
                &format!("{}/{n} of {} rows", head.shard.index, head.total),
                &format!("{} of {} rows", s.shard, s.total),
            );
        }
        if t.meta.data_sha256 != first.meta.data_sha256 {
            return foreign("data", &first.meta.data_sha256, &t.meta.data_sha256);
        }
        // Teacher, columns and label names: the check train and transfer caches share.
        first.check_compatible(t)?;
        let expected = s.shard.rows(s.total, s.window);
        if s.rows != expected || t.len() != expected.len() {
            return Err(Error::Invalid(format!(
                "{}: shard {} holds rows {:?} ({} rows), expected {expected:?}",
                name(t).display(),
                s.shard,
                s.rows,
                t.len()
            )));
        }
        if let Some(other) = &slots[s.shard.index] {
            return Err(Error::Invalid(format!(
                "shard {} given twice: {} and {}",
                s.shard,
                other.display(),
                name(t).display()
            )));
        }
        slots[s.shard.index] = Some(name(t));
    }
    let missing: Vec<String> = (0..n)
        .filter(|&i| slots[i].is_none())
        .map(|i| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Invalid(format!(
            "shards missing: {} (have {} of {n})",
            missing.join(", "),
            n - missing.len()
        )));
    }
    let num_labels = first.num_labels;
    let meta = LogitsMeta {
        count: head.total,
        shard: None,
        ..first.meta.clone()
    };
    shards.sort_by_key(|t| t.meta.shard.as_ref().map_or(0, |s| s.shard.index));
    let logits: Vec<f32> = shards.into_iter().flat_map(|t| t.logits).collect();
    TeacherLogits::new(logits, num_labels, meta)
}

/// Loads every shard file and merges them.
pub fn merge_files(paths: &[impl AsRef<Path>]) -> Result<TeacherLogits> {
    let shards = paths
        .iter()
        .map(|p| TeacherLogits::load(p.as_ref()))
        .collect::<Result<Vec<_>>>()?;
    merge(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_every_row_once_at_window_boundaries() {
        for (total, window, n) in [
            (500, 50, 3),
            (10, 4, 3),
            (7, 100, 2),
            (0, 8, 4),
            (4096, 4096, 5),
        ] {
            let mut next = 0;
            for index in 0..n {
                let r = Shard { index, count: n }.rows(total, window);
                assert_eq!(r.start, next, "{total} rows, window {window}, {index}/{n}");
                assert!(r.start == total || r.start.checked_rem(window) == Some(0));
                next = r.end;
            }
            assert_eq!(next, total);
        }
    }

    #[test]
    fn specs_parse_and_auto_reads_the_scheduler_index() {
        assert_eq!(Shard::parse("2/3").unwrap(), Shard { index: 2, count: 3 });
        for bad in ["3/3", "1", "a/2", "0/0", "-1/2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let slurm = |v: &str| (v == "SLURM_ARRAY_TASK_ID").then(|| "1".to_string());
        assert_eq!(
            Shard::parse_or_auto("auto/4", slurm).unwrap(),
            Shard { index: 1, count: 4 }
        );
        let k8s = |v: &str| (v == "JOB_COMPLETION_INDEX").then(|| "3".to_string());
        assert_eq!(Shard::parse_or_auto("auto/4", k8s).unwrap().index, 3);
        let err = Shard::parse_or_auto("auto/4", |_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("SLURM_ARRAY_TASK_ID"), "{err}");
        let out_of_range = Shard::parse_or_auto("auto/2", k8s).unwrap_err().to_string();
        assert!(
            out_of_range.contains("JOB_COMPLETION_INDEX=3"),
            "{out_of_range}"
        );
    }
}
