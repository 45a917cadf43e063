//! The plan: which stages a run has, in order, and for each the `distill` command it runs,
//! the files it reads (which key its cache entry) and the files it writes.
//!
//! ```text
//! assets → data → teacher-finetune → teacher-label → augment → teacher-label-augment
//!        → student-<name>… → eval-teacher → eval-<name>… → bench-<name>… → report
//! ```
//! Everything lands in the run folder ([`Layout`]): `data/`, `teacher/`, `logits/`,
//! `students/<name>/`, `eval/<model>.{json,scores}`, `bench/<name>.json`, `plots/`,
//! `report.{md,html,json}` and `pipeline.json`.

use std::path::{Path, PathBuf};

use super::device::DeviceChoice;
use super::presets::Settings;

/// A student the pipeline can train.
#[derive(Clone, Copy, Debug)]
pub struct StudentSpec {
    pub name: &'static str,
    /// What the report calls it.
    pub label: &'static str,
    /// The distillation loss; `None` trains on gold labels alone (cross-entropy).
    pub loss: Option<&'static str>,
    /// Also learns from the teacher-labelled augmented samples.
    pub augment: bool,
    /// Architecture preset of `distill student train --preset`.
    pub preset: &'static str,
}

/// Every student the pipeline knows, in report order.
pub const STUDENTS: [StudentSpec; 6] = [
    StudentSpec { name: "baseline", label: "BiLSTM on labels (CE)", loss: None, augment: false, preset: "original" },
    StudentSpec { name: "distill", label: "distilled: CE + logit MSE", loss: Some("distill"), augment: false, preset: "original" },
    StudentSpec { name: "weighted-mse", label: "distilled: teacher-weighted MSE", loss: Some("weighted-mse"), augment: false, preset: "original" },
    StudentSpec { name: "kl", label: "distilled: CE + KL (T = 2)", loss: Some("kl"), augment: false, preset: "original" },
    StudentSpec { name: "distill-augment", label: "distilled + augmentation", loss: Some("distill"), augment: true, preset: "original" },
    StudentSpec { name: "large-augment", label: "large preset, distilled + augmentation", loss: Some("distill"), augment: true, preset: "large" },
];

/// The spec of a student by name.
pub fn student(name: &str) -> Option<&'static StudentSpec> {
    STUDENTS.iter().find(|s| s.name == name)
}

/// Where a run keeps its files.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The workspace root (assets, fixtures).
    pub root: PathBuf,
    /// `runs/<name>`.
    pub run: PathBuf,
}

impl Layout {
    pub fn sst2(&self, file: &str) -> PathBuf {
        self.root.join("assets/sst2").join(file)
    }
    pub fn train(&self) -> PathBuf {
        self.run.join("data/train.tsv")
    }
    pub fn dev(&self) -> PathBuf {
        self.run.join("data/dev.tsv")
    }
    pub fn augmented(&self) -> PathBuf {
        self.run.join("data/augment.tsv")
    }
    pub fn teacher(&self) -> PathBuf {
        self.run.join("teacher")
    }
    pub fn logits(&self, name: &str) -> PathBuf {
        self.run.join("logits").join(format!("{name}.safetensors"))
    }
    pub fn student(&self, name: &str) -> PathBuf {
        self.run.join("students").join(name)
    }
    pub fn eval(&self, model: &str) -> PathBuf {
        self.run.join("eval").join(format!("{model}.json"))
    }
    pub fn scores(&self, model: &str) -> PathBuf {
        self.run.join("eval").join(format!("{model}.scores"))
    }
    pub fn bench(&self, model: &str) -> PathBuf {
        self.run.join("bench").join(format!("{model}.json"))
    }
    pub fn plots(&self) -> PathBuf {
        self.run.join("plots")
    }
    pub fn pipeline_json(&self) -> PathBuf {
        self.run.join("pipeline.json")
    }
    /// The files of a model folder that define it (teacher: HF layout; student: ours).
    pub fn model_files(dir: &Path, teacher: bool) -> Vec<PathBuf> {
        let names: &[&str] = if teacher {
            &["config.json", "model.safetensors", "tokenizer.json"]
        } else {
            &["config.json", "vocab.json", "model.safetensors"]
        };
        names.iter().map(|n| dir.join(n)).collect()
    }
}

/// The teacher base, as resolved on this machine.
#[derive(Clone, Debug)]
pub enum TeacherBase {
    /// A Hugging Face folder: its files key the fine-tuning stage.
    Folder(PathBuf),
    /// A hub id, fetched by the assets stage; the id keys the stage.
    Hub(String),
}

/// What a stage does.
#[derive(Clone, Debug)]
pub enum Action {
    /// `distill <args>`; with `stdout`, its standard output (JSON) is saved there.
    Cli { args: Vec<String>, stdout: Option<PathBuf> },
    /// SST-2 present; the teacher base in the hf-hub cache when it is a hub id.
    Assets { hub_teacher: Option<String> },
    /// Stratified subsets of SST-2 written to `data/`.
    Data,
    /// Tables and plots from everything above.
    Report,
}

/// One step of the pipeline.
#[derive(Clone, Debug)]
pub struct Stage {
    pub name: String,
    /// One line for the progress display.
    pub what: String,
    pub action: Action,
    /// Files whose contents key the stage.
    pub inputs: Vec<PathBuf>,
    /// Files that must exist for the stage to count as done.
    pub outputs: Vec<PathBuf>,
    /// Removed before a fresh start (new key or `--force`), never before a resume.
    pub clean: Vec<PathBuf>,
    /// Everything else that keys the stage.
    pub settings: String,
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn cli(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// The stages of a run with `settings` on `device`.
pub fn plan(settings: &Settings, layout: &Layout, base: &TeacherBase, device: &DeviceChoice) -> Vec<Stage> {
    let dev_arg = device.arg();
    let teacher = layout.teacher();
    let teacher_files = Layout::model_files(&teacher, true);
    let (train, dev, aug) = (layout.train(), layout.dev(), layout.augmented());
    let seed = settings.seed.to_string();
    let mut stages = Vec::new();

    let (base_arg, base_inputs, hub) = match base {
        TeacherBase::Folder(dir) => (s(dir), Layout::model_files(dir, true), None),
        TeacherBase::Hub(id) => (id.clone(), Vec::new(), Some(id.clone())),
    };
    stages.push(Stage {
        name: "assets".into(),
        what: "SST-2 in assets/, the teacher base in the hf-hub cache".into(),
        action: Action::Assets { hub_teacher: hub.clone() },
        inputs: vec![layout.sst2("train.tsv"), layout.sst2("dev.tsv")],
        outputs: vec![],
        clean: vec![],
        settings: format!("teacher base {base_arg}"),
    });
    stages.push(Stage {
        name: "data".into(),
        what: format!(
            "stratified subsets: train {}, dev {}",
            settings.train_size.map_or("all".into(), |n| n.to_string()),
            settings.dev_size.map_or("all".into(), |n| n.to_string())
        ),
        action: Action::Data,
        inputs: vec![layout.sst2("train.tsv"), layout.sst2("dev.tsv")],
        outputs: vec![train.clone(), dev.clone()],
        clean: vec![train.clone(), dev.clone()],
        settings: format!("train {:?} dev {:?} seed {}", settings.train_size, settings.dev_size, settings.seed),
    });

    let mut args = cli(&["teacher", "finetune", "--teacher", &base_arg, "--train", &s(&train), "--dev", &s(&dev)]);
    args.extend(cli(&["--out", &s(&teacher), "--epochs", &settings.teacher_epochs.to_string(), "--seed", &seed]));
    if let Some(n) = settings.teacher_max_steps {
        args.extend(cli(&["--max-steps", &n.to_string()]));
    }
    if let Some(lr) = settings.teacher_lr {
        args.extend(cli(&["--lr", &lr.to_string()]));
    }
    args.extend(cli(&["--device", &dev_arg]));
    let mut inputs = base_inputs;
    inputs.extend([train.clone(), dev.clone()]);
    stages.push(Stage {
        name: "teacher-finetune".into(),
        what: format!("fine-tune the teacher ({base_arg})"),
        action: Action::Cli { args, stdout: None },
        inputs,
        outputs: teacher_files.clone(),
        clean: vec![teacher.clone()],
        settings: hub.map(|id| format!("hub {id}")).unwrap_or_default(),
    });

    let label = |name: &str, what: &str, data: &Path, out: PathBuf| {
        let args = cli(&["teacher", "label", "--teacher", &s(&teacher), "--data", &s(data), "--out", &s(&out)]);
        let mut args = args;
        args.extend(cli(&["--device", &dev_arg]));
        let mut inputs = teacher_files.clone();
        inputs.push(data.to_path_buf());
        Stage {
            name: name.into(),
            what: what.into(),
            action: Action::Cli { args, stdout: None },
            inputs,
            outputs: vec![out.clone()],
            clean: vec![out],
            settings: String::new(),
        }
    };
    stages.push(label("teacher-label", "teacher logits for the training sentences", &train, layout.logits("train")));
    if settings.uses_augmentation() {
        let factor = settings.augment_factor.to_string();
        let args = cli(&["augment", "--data", &s(&train), "--out", &s(&aug), "--teacher", &s(&teacher)]);
        let mut args = args;
        args.extend(cli(&["--augment-factor", &factor, "--seed", &seed]));
        let mut inputs = teacher_files.clone();
        inputs.push(train.clone());
        stages.push(Stage {
            name: "augment".into(),
            what: format!("augmented transfer sentences ({factor} per sentence)"),
            action: Action::Cli { args, stdout: None },
            inputs,
            outputs: vec![aug.clone()],
            clean: vec![aug.clone()],
            settings: String::new(),
        });
        stages.push(label("teacher-label-augment", "teacher logits for the augmented sentences", &aug, layout.logits("augment")));
    }

    let students: Vec<&StudentSpec> = settings.students.iter().filter_map(|n| student(n)).collect();
    for spec in &students {
        let out = layout.student(spec.name);
        let mut args = cli(&["student", "train", "--train", &s(&train), "--out", &s(&out)]);
        let mut inputs = vec![train.clone()];
        match spec.loss {
            None => args.extend(cli(&["--mode", "baseline"])),
            Some(loss) => {
                let logits = layout.logits("train");
                args.extend(cli(&["--mode", "distill", "--loss", loss, "--logits", &s(&logits)]));
                inputs.push(logits);
            }
        }
        if spec.augment {
            let logits = layout.logits("augment");
            args.extend(cli(&["--augment", &s(&aug), "--augment-logits", &s(&logits)]));
            inputs.extend([aug.clone(), logits]);
        }
        args.extend(cli(&["--preset", spec.preset, "--epochs", &settings.student_epochs.to_string()]));
        args.extend(cli(&["--batch-size", &settings.student_batch_size.to_string(), "--seed", &seed, "--device", &dev_arg]));
        stages.push(Stage {
            name: format!("student-{}", spec.name),
            what: format!("train student `{}`: {}", spec.name, spec.label),
            action: Action::Cli { args, stdout: None },
            inputs,
            outputs: vec![out.join("metrics.jsonl"), out.join("best/model.safetensors")],
            clean: vec![out],
            settings: String::new(),
        });
    }

    // Evaluation and timing run on the CPU whatever --device is: like for like.
    let (eval_t, scores_t) = (layout.eval("teacher"), layout.scores("teacher"));
    let mut args = cli(&["teacher", "eval", "--teacher", &s(&teacher), "--data", &s(&dev), "--json"]);
    args.extend(cli(&["--scores", &s(&scores_t), "--latency", &settings.teacher_latency_samples.to_string()]));
    args.extend(cli(&["--device", "cpu"]));
    let mut inputs = teacher_files.clone();
    inputs.push(dev.clone());
    stages.push(Stage {
        name: "eval-teacher".into(),
        what: "teacher on dev (CPU): metrics, scores, throughput, latency".into(),
        action: Action::Cli { args, stdout: Some(eval_t.clone()) },
        inputs,
        outputs: vec![eval_t.clone(), scores_t.clone()],
        clean: vec![eval_t, scores_t],
        settings: String::new(),
    });
    for spec in &students {
        let best = layout.student(spec.name).join("best");
        let mut inputs = Layout::model_files(&best, false);
        inputs.push(dev.clone());
        let (eval, scores) = (layout.eval(spec.name), layout.scores(spec.name));
        let args = cli(&["eval", "--model", &s(&best), "--data", &s(&dev), "--json", "--scores", &s(&scores)]);
        stages.push(Stage {
            name: format!("eval-{}", spec.name),
            what: format!("student `{}` on dev", spec.name),
            action: Action::Cli { args, stdout: Some(eval.clone()) },
            inputs: inputs.clone(),
            outputs: vec![eval.clone(), scores.clone()],
            clean: vec![eval, scores],
            settings: String::new(),
        });
    }
    for spec in &students {
        let best = layout.student(spec.name).join("best");
        let mut inputs = Layout::model_files(&best, false);
        inputs.push(dev.clone());
        let bench = layout.bench(spec.name);
        let repeat = settings.bench_repeat.to_string();
        let args = cli(&["bench", "--model", &s(&best), "--data", &s(&dev), "--json", "--repeat", &repeat]);
        stages.push(Stage {
            name: format!("bench-{}", spec.name),
            what: format!("student `{}`: CPU throughput and latency", spec.name),
            action: Action::Cli { args, stdout: Some(bench.clone()) },
            inputs,
            outputs: vec![bench.clone()],
            clean: vec![bench],
            settings: String::new(),
        });
    }

    let mut inputs = vec![dev.clone(), layout.eval("teacher"), layout.scores("teacher")];
    for spec in &students {
        let dir = layout.student(spec.name);
        inputs.extend([layout.eval(spec.name), layout.scores(spec.name), layout.bench(spec.name)]);
        inputs.extend([dir.join("metrics.jsonl"), dir.join("best/model.safetensors")]);
    }
    let outputs: Vec<PathBuf> = ["report.md", "report.html", "report.json"].iter().map(|f| layout.run.join(f)).collect();
    stages.push(Stage {
        name: "report".into(),
        what: "report.md, report.html and plots/".into(),
        action: Action::Report,
        inputs,
        outputs: outputs.clone(),
        clean: outputs,
        settings: serde_json::to_string(settings).unwrap_or_default(),
    });
    stages
}
