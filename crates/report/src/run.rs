//! The run folder a report is made from ([`RunFolder`], whose layout `distill-data` keeps
//! for the pipeline and the report alike) and what the report reads of its `pipeline.json`
//! ([`PipelineRecord`]), when a pipeline made the run. The report writes `report.md`,
//! `report.html`, `report.json` and `plots/` there, or into another folder.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use distill_data::RunFolder;

use crate::error::{Error, Result};

/// Every student folder with dev metrics (`eval/<name>.json`), by name.
pub fn evaluated_students(run: &RunFolder) -> Result<Vec<String>> {
    let dir = run.dir.join("students");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read", dir, e)),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| run.eval(n).is_file())
        .collect();
    names.sort();
    Ok(names)
}

/// What the report reads of `pipeline.json`; every field may be missing.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PipelineRecord {
    /// The run's name.
    #[serde(default)]
    pub name: String,
    /// Where the teacher's stages ran.
    #[serde(default)]
    pub device: String,
    /// The resolved settings, shown in `report.json` as they are.
    #[serde(default)]
    pub settings: serde_json::Value,
    /// Each stage's state, wall time and command, in plan order.
    #[serde(default)]
    pub stages: Vec<StageTime>,
    /// How the pipeline describes its run (absent in runs from before the report was a
    /// command of its own).
    #[serde(default)]
    pub description: Option<Description>,
}

/// One stage of `pipeline.json`, as the report shows it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct StageTime {
    pub name: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// Wall time of the last run that reached `state`.
    #[serde(default)]
    pub seconds: Option<f64>,
    /// The command, as it can be typed from the folder the pipeline ran in.
    #[serde(default)]
    pub command: String,
}

/// The `description` object `cargo xtask pipeline` writes into `pipeline.json` for the
/// report: the words the report cannot know from the files alone.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct Description {
    /// Paragraphs that open the report.
    #[serde(default)]
    pub intro: Vec<String>,
    /// Where the students trained (`report.json`'s `student_device`).
    #[serde(default)]
    pub student_device: Option<String>,
    /// Students in report order.
    #[serde(default)]
    pub students: Vec<String>,
    /// What each model is, by name (`teacher` and students): the results table's second
    /// column.
    #[serde(default)]
    pub models: BTreeMap<String, String>,
    /// The settings table, as (setting, value) rows.
    #[serde(default)]
    pub settings: Vec<(String, String)>,
}

impl PipelineRecord {
    /// Reads `path`; `None` when there is no such file.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::file(path, format!("not a pipeline record: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", path, e)),
        }
    }

    /// The students of the run in report order: the description's, else the settings'
    /// (records from before descriptions).
    pub fn students(&self) -> Option<Vec<String>> {
        if let Some(d) = self.description.as_ref().filter(|d| !d.students.is_empty()) {
            return Some(d.students.clone());
        }
        let list = self.settings.get("students")?.as_array()?;
        list.iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect()
    }

    /// The teacher base the settings name (a hub id or a folder).
    pub fn teacher_base(&self) -> Option<&str> {
        self.settings.get("teacher")?.as_str()
    }

    /// The task's label names the settings list.
    pub fn labels(&self) -> Option<Vec<String>> {
        let list = self.settings.get("task")?.get("labels")?.as_array()?;
        list.iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect()
    }

    /// The settings table: the description's rows, else every setting as JSON.
    pub fn settings_rows(&self) -> Vec<(String, String)> {
        if let Some(d) = self.description.as_ref().filter(|d| !d.settings.is_empty()) {
            return d.settings.clone();
        }
        let mut rows = Vec::new();
        if let Some(map) = self.settings.as_object() {
            for (k, v) in map {
                let shown = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "–".into(),
                    other => other.to_string(),
                };
                rows.push((k.replace('_', " "), shown));
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_records_read_their_settings() {
        let old = serde_json::json!({
            "name": "sst5", "device": "cpu",
            "settings": {"teacher": "a/b", "students": ["baseline", "kl"], "seed": 0,
                         "task": {"labels": ["neg", "pos"]}, "teacher_lr": null},
            "stages": [{"name": "assets", "state": "done", "key": "k", "command": "cargo xtask assets",
                        "inputs": {}, "seconds": 0.5, "finished_unix": 1}],
        });
        let r: PipelineRecord = serde_json::from_value(old).unwrap();
        assert_eq!(r.students().unwrap(), ["baseline", "kl"]);
        assert_eq!(r.teacher_base(), Some("a/b"));
        assert_eq!(r.labels().unwrap(), ["neg", "pos"]);
        let rows = r.settings_rows();
        assert!(
            rows.contains(&("teacher lr".into(), "–".into())),
            "{rows:?}"
        );
        assert_eq!(r.stages[0].seconds, Some(0.5));
    }

    #[test]
    fn a_description_comes_first() {
        let r = PipelineRecord {
            settings: serde_json::json!({"students": ["kl"]}),
            description: Some(Description {
                students: vec!["baseline".into()],
                settings: vec![("seed".into(), "1".into())],
                ..Description::default()
            }),
            ..PipelineRecord::default()
        };
        assert_eq!(r.students().unwrap(), ["baseline"]);
        assert_eq!(r.settings_rows(), [("seed".to_string(), "1".to_string())]);
    }
}
