//! `pipeline.json`: per stage, the key of its inputs, its state and wall time.
//!
//! A stage's key is the SHA-256 of its settings, its command line (with the run folder and
//! the workspace root written as `<run>` and `<root>`, so moving either keeps the cache)
//! and the SHA-256 of every input file. A stage is skipped when its record says `done`
//! under the same key and its outputs exist; a record left `running` or `failed` under the
//! same key is resumed (training stages continue from their last checkpoint), one under
//! another key starts afresh.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where a stage stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Done,
    Failed,
}

/// What `pipeline.json` records about one stage.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageRecord {
    pub name: String,
    pub state: State,
    /// SHA-256 over settings, command line and inputs.
    pub key: String,
    /// The command, as it can be typed from the workspace root.
    pub command: String,
    /// Input file (as in the command line) → its SHA-256.
    pub inputs: BTreeMap<String, String>,
    /// Wall time of the last run that reached `state`.
    pub seconds: Option<f64>,
    /// Seconds since the Unix epoch when the stage last finished or failed.
    pub finished_unix: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The whole of `pipeline.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PipelineFile {
    pub name: String,
    pub device: String,
    /// The resolved settings of the latest run.
    pub settings: serde_json::Value,
    /// What `distill report` shows of the latest run (absent in records from before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<super::describe::Description>,
    /// In plan order.
    pub stages: Vec<StageRecord>,
}

impl PipelineFile {
    /// Reads `path`; a missing file is an empty record.
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a pipeline record (delete it to start over)",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)? + "\n";
        distill_data::write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn get(&self, name: &str) -> Option<&StageRecord> {
        self.stages.iter().find(|r| r.name == name)
    }

    /// Replaces the record of `record.name`, keeping the order of `plan` (names).
    pub fn put(&mut self, record: StageRecord, plan: &[String]) {
        self.stages.retain(|r| r.name != record.name);
        self.stages.push(record);
        let rank = |n: &str| plan.iter().position(|p| p == n).unwrap_or(usize::MAX);
        self.stages.sort_by_key(|r| rank(&r.name));
    }
}

/// SHA-256 of files, remembered per (path, length, mtime) for the life of one run.
#[derive(Default)]
pub struct FileHasher {
    memo: HashMap<PathBuf, (u64, SystemTime, String)>,
}

impl FileHasher {
    pub fn sha256(&mut self, path: &Path) -> Result<String> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("{} is missing", path.display()))?;
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if let Some((len, time, hash)) = self.memo.get(path) {
            if *len == meta.len() && *time == mtime {
                return Ok(hash.clone());
            }
        }
        let mut file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)
            .with_context(|| format!("reading {}", path.display()))?;
        let hash = hex::encode(hasher.finalize());
        self.memo
            .insert(path.to_path_buf(), (meta.len(), mtime, hash.clone()));
        Ok(hash)
    }
}

/// The key of a stage: settings, canonical command line and input hashes.
pub fn stage_key(settings: &str, command: &[String], inputs: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    h.update(settings.as_bytes());
    for arg in command {
        h.update([0u8]);
        h.update(arg.as_bytes());
    }
    for (name, hash) in inputs {
        h.update([1u8]);
        h.update(name.as_bytes());
        h.update(hash.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_changes_with_any_part() {
        let inputs: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
        let base = stage_key("s", &["x".into()], &inputs);
        assert_eq!(base, stage_key("s", &["x".into()], &inputs));
        assert_ne!(base, stage_key("t", &["x".into()], &inputs));
        assert_ne!(base, stage_key("s", &["y".into()], &inputs));
        let other: BTreeMap<String, String> = [("a".to_string(), "2".to_string())].into();
        assert_ne!(base, stage_key("s", &["x".into()], &other));
    }

    #[test]
    fn hashes_follow_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "one").unwrap();
        let mut h = FileHasher::default();
        let first = h.sha256(&path).unwrap();
        std::fs::write(&path, "three").unwrap();
        assert_ne!(first, h.sha256(&path).unwrap());
        assert!(h.sha256(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn records_keep_plan_order() {
        let plan: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let rec = |n: &str| StageRecord {
            name: n.into(),
            state: State::Done,
            key: String::new(),
            command: String::new(),
            inputs: BTreeMap::new(),
            seconds: None,
            finished_unix: None,
            error: None,
        };
        let mut f = PipelineFile::default();
        for n in ["c", "a", "b", "a"] {
            f.put(rec(n), &plan);
        }
        let names: Vec<_> = f.stages.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }
}
