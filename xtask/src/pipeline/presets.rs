//! The named presets (`smoke`, `quick`, `full`) and the [`Settings`] a run resolves to
//! once the command line's overrides are applied. Every number a run uses is a field of
//! `Settings`, so a reader sees each preset's choices in one screen, and every field has a
//! flag (see [`Overrides`]).

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::layout::STUDENTS;

/// The tiny random BERT used as the `smoke` teacher, relative to the workspace root.
pub const SMOKE_TEACHER: &str = "crates/teacher/tests/fixtures/tiny-bert";

/// A preset's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The tiny random BERT, 500 sentences, one epoch per model: a plumbing check (< 2 min).
    Smoke,
    /// The real teacher on a stratified 8,000-sentence subset.
    Quick,
    /// Everything: full SST-2, the teacher one epoch, students 30 epochs (the large one
    /// 15), augmentation factor 4. The method's factor 20 is `--augment-factor 20`: on a
    /// 2-core CPU it adds about 30 minutes of labelling and 20× the augmented epochs.
    Full,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Smoke => "smoke",
            Preset::Quick => "quick",
            Preset::Full => "full",
        }
    }
}

/// Everything a pipeline run does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub preset: Preset,
    /// Teacher base: a hub id or a folder.
    pub teacher: String,
    /// Stratified subset of SST-2 train (`None`: all 67,349 sentences).
    pub train_size: Option<usize>,
    /// Stratified subset of SST-2 dev (`None`: all 872 sentences).
    pub dev_size: Option<usize>,
    /// Seed of subsets, fine-tuning, augmentation and student training.
    pub seed: u64,
    pub teacher_epochs: usize,
    /// Stop fine-tuning after this many steps.
    pub teacher_max_steps: Option<usize>,
    /// Peak fine-tuning learning rate (`None`: the CLI's default).
    pub teacher_lr: Option<f64>,
    pub student_epochs: usize,
    /// Epochs of students of the `large` preset (`None`: `student_epochs`); each of their
    /// epochs over the augmented set costs minutes on a CPU.
    pub large_student_epochs: Option<usize>,
    pub student_batch_size: usize,
    /// Augmented samples drawn per training sentence (0: no augmentation stages).
    pub augment_factor: usize,
    /// Which students to train (names of [`STUDENTS`]).
    pub students: Vec<String>,
    /// Passes over dev when timing student throughput.
    pub bench_repeat: usize,
    /// Single-sentence passes timed for the teacher's latency.
    pub teacher_latency_samples: usize,
}

impl Settings {
    /// The defaults of `preset`.
    pub fn preset(preset: Preset) -> Settings {
        let all_students = STUDENTS.iter().map(|s| s.name.to_string()).collect();
        match preset {
            Preset::Smoke => Settings {
                preset,
                teacher: SMOKE_TEACHER.into(),
                train_size: Some(500),
                dev_size: None,
                seed: 0,
                teacher_epochs: 1,
                teacher_max_steps: Some(12),
                // The random tiny BERT needs large steps to move at all in 12 of them.
                teacher_lr: Some(1e-3),
                student_epochs: 1,
                large_student_epochs: None,
                student_batch_size: 32,
                augment_factor: 2,
                students: all_students,
                bench_repeat: 2,
                teacher_latency_samples: 20,
            },
            Preset::Quick => Settings {
                preset,
                teacher: crate::assets::MODEL_ID.into(),
                train_size: Some(8_000),
                dev_size: None,
                seed: 0,
                teacher_epochs: 1,
                teacher_max_steps: None,
                teacher_lr: None,
                student_epochs: 10,
                large_student_epochs: None,
                student_batch_size: 32,
                augment_factor: 4,
                students: all_students,
                bench_repeat: 5,
                teacher_latency_samples: 100,
            },
            Preset::Full => Settings {
                preset,
                teacher: crate::assets::MODEL_ID.into(),
                train_size: None,
                dev_size: None,
                seed: 0,
                teacher_epochs: 1,
                teacher_max_steps: None,
                teacher_lr: None,
                student_epochs: 30,
                large_student_epochs: Some(15),
                student_batch_size: 32,
                augment_factor: 4,
                students: all_students,
                bench_repeat: 20,
                teacher_latency_samples: 200,
            },
        }
    }

    /// The preset's defaults with `o` applied; checks the student names.
    pub fn resolve(preset: Preset, o: &Overrides) -> Result<Settings> {
        let mut s = Settings::preset(preset);
        if let Some(v) = &o.teacher {
            s.teacher = v.clone();
        }
        if let Some(v) = o.train_size {
            s.train_size = (v > 0).then_some(v);
        }
        if let Some(v) = o.dev_size {
            s.dev_size = (v > 0).then_some(v);
        }
        if let Some(v) = o.seed {
            s.seed = v;
        }
        if let Some(v) = o.teacher_epochs {
            s.teacher_epochs = v;
        }
        if let Some(v) = o.teacher_max_steps {
            s.teacher_max_steps = (v > 0).then_some(v);
        }
        if let Some(v) = o.teacher_lr {
            s.teacher_lr = Some(v);
        }
        if let Some(v) = o.student_epochs {
            s.student_epochs = v;
        }
        if let Some(v) = o.large_student_epochs {
            s.large_student_epochs = Some(v);
        }
        if let Some(v) = o.student_batch_size {
            s.student_batch_size = v;
        }
        if let Some(v) = o.augment_factor {
            s.augment_factor = v;
        }
        if let Some(v) = &o.students {
            s.students = v.clone();
        }
        if let Some(v) = o.bench_repeat {
            s.bench_repeat = v;
        }
        if let Some(v) = o.teacher_latency_samples {
            s.teacher_latency_samples = v;
        }
        for name in &s.students {
            if !STUDENTS.iter().any(|k| k.name == name) {
                let known: Vec<_> = STUDENTS.iter().map(|k| k.name).collect();
                bail!("unknown student `{name}` (known: {})", known.join(", "));
            }
        }
        if s.augment_factor == 0 {
            s.students
                .retain(|n| STUDENTS.iter().any(|k| k.name == n && !k.augment));
        }
        if s.students.is_empty() {
            bail!("no students to train");
        }
        if s.student_epochs == 0 || s.teacher_epochs == 0 || s.large_student_epochs == Some(0) {
            bail!("epochs must be positive");
        }
        Ok(s)
    }

    /// The settings as (name, value) rows for the report, in declaration order.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let all = |v: Option<usize>| v.map_or("all".to_string(), |n| n.to_string());
        let opt = |v: Option<String>| v.unwrap_or_else(|| "CLI default".to_string());
        vec![
            ("preset", self.preset.name().to_string()),
            ("teacher base", self.teacher.clone()),
            ("train sentences", all(self.train_size)),
            ("dev sentences", all(self.dev_size)),
            ("seed", self.seed.to_string()),
            ("teacher epochs", self.teacher_epochs.to_string()),
            (
                "teacher max steps",
                self.teacher_max_steps.map_or("–".into(), |n| n.to_string()),
            ),
            (
                "teacher learning rate",
                opt(self.teacher_lr.map(|v| v.to_string())),
            ),
            ("student epochs", self.student_epochs.to_string()),
            (
                "large student epochs",
                self.large_student_epochs
                    .unwrap_or(self.student_epochs)
                    .to_string(),
            ),
            ("student batch size", self.student_batch_size.to_string()),
            ("augment factor", self.augment_factor.to_string()),
            ("students", self.students.join(", ")),
            ("bench passes over dev", self.bench_repeat.to_string()),
            (
                "teacher latency samples",
                self.teacher_latency_samples.to_string(),
            ),
        ]
    }

    /// Training epochs of a student of architecture preset `preset`.
    pub fn epochs_of(&self, preset: &str) -> usize {
        match (preset, self.large_student_epochs) {
            ("large", Some(n)) => n,
            _ => self.student_epochs,
        }
    }

    /// True when some student learns from augmented samples.
    pub fn uses_augmentation(&self) -> bool {
        self.augment_factor > 0
            && STUDENTS
                .iter()
                .any(|k| k.augment && self.students.iter().any(|n| n == k.name))
    }
}

/// Flags that override a preset's values.
#[derive(Debug, Default, clap::Args)]
pub struct Overrides {
    /// Teacher base: hub id or folder.
    #[arg(long)]
    pub teacher: Option<String>,
    /// Stratified subset of SST-2 train to use (0: all).
    #[arg(long)]
    pub train_size: Option<usize>,
    /// Stratified subset of SST-2 dev to evaluate on (0: all).
    #[arg(long)]
    pub dev_size: Option<usize>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub teacher_epochs: Option<usize>,
    /// Stop teacher fine-tuning after N steps (0: no limit).
    #[arg(long)]
    pub teacher_max_steps: Option<usize>,
    #[arg(long)]
    pub teacher_lr: Option<f64>,
    #[arg(long)]
    pub student_epochs: Option<usize>,
    /// Epochs of the `large` preset students.
    #[arg(long)]
    pub large_student_epochs: Option<usize>,
    #[arg(long)]
    pub student_batch_size: Option<usize>,
    /// Augmented samples per training sentence (0: skip augmentation).
    #[arg(long)]
    pub augment_factor: Option<usize>,
    /// Students to train, comma-separated (baseline, distill, weighted-mse, kl,
    /// distill-augment, large-augment).
    #[arg(long, value_delimiter = ',')]
    pub students: Option<Vec<String>>,
    /// Passes over dev when timing student throughput.
    #[arg(long)]
    pub bench_repeat: Option<usize>,
    /// Single-sentence passes timed for the teacher's latency.
    #[arg(long)]
    pub teacher_latency_samples: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_preset_values() {
        let o = Overrides {
            train_size: Some(0),
            student_epochs: Some(3),
            augment_factor: Some(0),
            ..Overrides::default()
        };
        let s = Settings::resolve(Preset::Smoke, &o).unwrap();
        assert_eq!(s.train_size, None);
        assert_eq!(s.student_epochs, 3);
        let full = Settings::resolve(Preset::Full, &Overrides::default()).unwrap();
        assert_eq!(full.epochs_of("large"), 15);
        assert_eq!(full.epochs_of("original"), 30);
        assert!(!s.uses_augmentation());
        assert!(s.students.iter().all(|n| !n.contains("augment")));
    }

    #[test]
    fn unknown_students_are_refused() {
        let o = Overrides {
            students: Some(vec!["nope".into()]),
            ..Overrides::default()
        };
        assert!(Settings::resolve(Preset::Full, &o).is_err());
    }
}
