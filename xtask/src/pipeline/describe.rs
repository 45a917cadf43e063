//! The `description` of `pipeline.json`: what `distill report` cannot know from the run
//! folder's files alone — the paragraphs that open the report, what each model is, the
//! students in report order and the settings table. Written at the start of every run, so
//! the report stage always reads the current one.
//!
//! `distill_report::Description` reads this object; the two agree on its field names
//! (`intro`, `student_device`, `students`, `models`, `settings`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::layout::{student, StudentSpec};
use super::presets::{Preset, Settings};
use super::Context;

/// The run as the report describes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Description {
    pub intro: Vec<String>,
    pub student_device: Option<String>,
    pub students: Vec<String>,
    /// Model name (`teacher`, students) → what it is.
    pub models: BTreeMap<String, String>,
    /// (setting, value) rows.
    pub settings: Vec<(String, String)>,
}

/// The description of the run `ctx`.
pub fn describe(ctx: &Context) -> Description {
    let s = &ctx.settings;
    let mut models = BTreeMap::new();
    models.insert(
        "teacher".to_string(),
        format!("teacher: fine-tuned {}", short_name(&s.teacher)),
    );
    for name in &s.students {
        if let Some(spec) = student(name) {
            models.insert(name.clone(), student_label(s, spec));
        }
    }
    let mut settings = vec![(
        "devices".to_string(),
        format!(
            "teacher fine-tune and labelling: {}; student training: {}; evaluation and timing: cpu",
            ctx.device, ctx.student_device
        ),
    )];
    settings.extend(s.rows().into_iter().map(|(k, v)| (k.to_string(), v)));
    Description {
        intro: intro(ctx),
        student_device: Some(ctx.student_device.to_string()),
        students: s.students.clone(),
        models,
        settings,
    }
}

fn intro(ctx: &Context) -> Vec<String> {
    let s = &ctx.settings;
    let mut lines = vec![format!(
        "Preset `{}` (teacher on `{}`, students on `{}`): teacher fine-tuned from `{}`; training \
         data {}. Evaluation and timing run on this machine's CPU whatever the device.",
        s.preset.name(),
        ctx.device,
        ctx.student_device,
        short_name(&s.teacher),
        training_data(s),
    )];
    if s.preset == Preset::Smoke {
        lines.push(
            "This is the smoke preset: a tiny random BERT and one epoch per model check the \
             plumbing; its numbers say nothing about the method."
                .into(),
        );
    }
    lines
}

/// "all 8544 rows of `train.csv` (5 labels)", or the subset taken.
fn training_data(s: &Settings) -> String {
    let file = s
        .task
        .train
        .as_ref()
        .map_or("SST-2 train".to_string(), |p| {
            format!("`{}`", p.file_name().unwrap_or_default().to_string_lossy())
        });
    let pairs = if s.task.pairs { ", sentence pairs" } else { "" };
    let what = format!("{} labels{pairs}", s.task.labels.len());
    match s.train_size {
        Some(k) if k < s.task.train_rows => {
            format!(
                "a stratified subset of {k} of the {} rows of {file} ({what})",
                s.task.train_rows
            )
        }
        _ => format!("all {} rows of {file} ({what})", s.task.train_rows),
    }
}

/// What the report calls a student: its spec's label, with its sizes when a flag set them.
fn student_label(s: &Settings, spec: &StudentSpec) -> String {
    match s.size_of(spec.preset) {
        Some(z) => format!("{} ({}/{})", spec.label, z.embedding_dim, z.hidden_size),
        None => spec.label.to_string(),
    }
}

/// `owner/name` → `name`; a folder → its last component.
fn short_name(id_or_dir: &str) -> String {
    Path::new(id_or_dir).file_name().map_or_else(
        || id_or_dir.to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::presets::StudentSize;

    #[test]
    fn subsets_and_short_names() {
        let mut s = Settings::preset(Preset::Quick);
        s.task.train_rows = 67_349;
        s.task.labels = vec!["0".into(), "1".into()];
        assert_eq!(
            training_data(&s),
            "a stratified subset of 8000 of the 67349 rows of SST-2 train (2 labels)"
        );
        s.train_size = None;
        assert_eq!(
            training_data(&s),
            "all 67349 rows of SST-2 train (2 labels)"
        );
        assert_eq!(
            short_name("sentence-transformers/all-MiniLM-L6-v2"),
            "all-MiniLM-L6-v2"
        );
        assert_eq!(short_name("/a/b/tiny-bert"), "tiny-bert");
    }

    #[test]
    fn a_student_sized_by_flag_says_its_sizes() {
        let mut s = Settings::preset(Preset::Full);
        let (large, original) = (student("large-augment").unwrap(), student("kl").unwrap());
        assert_eq!(student_label(&s, large), large.label);
        s.large_student_size = Some(StudentSize {
            embedding_dim: 128,
            hidden_size: 96,
        });
        assert_eq!(
            student_label(&s, large),
            format!("{} (128/96)", large.label)
        );
        assert_eq!(student_label(&s, original), original.label);
    }
}
