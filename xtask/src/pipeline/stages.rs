//! The plan: which stages a run has, in order, and for each the `distill` command it runs,
//! the files it reads (which key its cache entry) and the files it writes.
//!
//! ```text
//! assets → data → teacher-finetune → teacher-label → augment → teacher-label-augment
//!        → student-<name>… → eval-teacher → eval-<name>… → bench-<name>… → report
//! ```
//! Training and labelling run on `--device`; evaluation and timing always on the CPU, so
//! the report's speed figures compare like with like.

use std::path::{Path, PathBuf};

use super::device::DeviceChoice;
use super::layout::{student, Layout, RunFolder, StudentSpec, TeacherBase};
use super::presets::{Settings, TeacherPrecision};

/// Share of the training file each student holds out for validation. `distill augment`
/// leaves the same rows out (same share, same default split seed), so that no augmented
/// copy of a validation sentence trains a student and validation stays unseen.
const STUDENT_VAL_SHARE: f64 = 0.2;

/// What a stage does.
#[derive(Clone, Debug)]
pub enum Action {
    /// `distill <args>`; with `stdout`, its standard output (JSON) is saved there.
    Cli {
        args: Vec<String>,
        stdout: Option<PathBuf>,
    },
    /// The task's files as TSV in `data/` (stratified subsets where asked).
    Data,
    /// Augmented samples and unlabelled text concatenated into one transfer file.
    Transfer { parts: Vec<PathBuf>, out: PathBuf },
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

impl Stage {
    /// A `distill` call whose outputs are also what a fresh start removes.
    fn cli(
        name: String,
        what: String,
        args: Args,
        inputs: Vec<PathBuf>,
        outputs: Vec<PathBuf>,
    ) -> Stage {
        Stage {
            name,
            what,
            action: Action::Cli {
                args: args.0,
                stdout: None,
            },
            inputs,
            clean: outputs.clone(),
            outputs,
            settings: String::new(),
        }
    }

    /// Saves the command's standard output (JSON) to `path`, an output of the stage.
    fn stdout_to(mut self, path: PathBuf) -> Stage {
        if let Action::Cli { stdout, .. } = &mut self.action {
            *stdout = Some(path.clone());
        }
        self.clean.push(path.clone());
        self.outputs.push(path);
        self
    }
}

/// A `distill` command line under construction.
struct Args(Vec<String>);

impl Args {
    fn new(words: &[&str]) -> Args {
        Args(words.iter().map(|w| w.to_string()).collect())
    }
    fn opt(mut self, flag: &str, value: impl std::fmt::Display) -> Args {
        self.0.push(flag.to_string());
        self.0.push(value.to_string());
        self
    }
    fn path(self, flag: &str, path: &Path) -> Args {
        self.opt(flag, path.display())
    }
    fn flag(mut self, flag: &str) -> Args {
        self.0.push(flag.to_string());
        self
    }
}

/// The stages of a run with `settings` on `device`.
pub fn plan(
    settings: &Settings,
    layout: &Layout,
    base: &TeacherBase,
    device: &DeviceChoice,
    student_device: &DeviceChoice,
) -> Vec<Stage> {
    let p = Planner {
        s: settings,
        l: layout,
        device: device.arg(),
        student_device: student_device.arg(),
    };
    let mut stages = p.preparation(base);
    let students: Vec<&StudentSpec> = settings
        .students
        .iter()
        .filter_map(|n| student(n))
        .collect();
    stages.extend(students.iter().map(|spec| p.train(spec)));
    stages.push(p.eval_teacher(false));
    stages.extend(students.iter().map(|spec| p.eval_student(spec, false)));
    if settings.task.test.is_some() {
        stages.push(p.eval_teacher(true));
        stages.extend(students.iter().map(|spec| p.eval_student(spec, true)));
    }
    stages.extend(students.iter().map(|spec| p.bench_student(spec)));
    stages.push(p.report(&students));
    stages
}

struct Planner<'a> {
    s: &'a Settings,
    l: &'a Layout,
    /// `--device` of the teacher's fine-tuning and labelling.
    device: String,
    /// `--device` of student training.
    student_device: String,
}

impl Planner<'_> {
    fn teacher_files(&self) -> Vec<PathBuf> {
        RunFolder::model_files(&self.l.teacher(), true)
    }

    /// Assets, data, fine-tuning, labelling and augmentation.
    fn preparation(&self, base: &TeacherBase) -> Vec<Stage> {
        let (s, l) = (self.s, self.l);
        let task = &s.task;
        let sources = l.sources(task);
        let (train, dev, aug) = (l.train(), l.dev(), l.augmented());
        let mut data_files = vec![train.clone(), dev.clone()];
        if task.test.is_some() {
            data_files.push(l.test());
        }
        if task.unlabelled.is_some() {
            data_files.push(l.unlabelled());
        }
        let (base_arg, base_inputs, hub) = match base {
            TeacherBase::Folder(dir) => (
                dir.display().to_string(),
                RunFolder::model_files(dir, true),
                None,
            ),
            TeacherBase::Hub(id) => (id.clone(), Vec::new(), Some(id.clone())),
        };
        let size = |n: Option<usize>| n.map_or("all".to_string(), |n| n.to_string());
        let mut stages = vec![
            Stage {
                name: "assets".into(),
                what: "the teacher base in the hf-hub cache (a folder: checked)".into(),
                action: Action::Cli {
                    args: Args::new(&["teacher", "fetch"])
                        .opt("--teacher", &base_arg)
                        .0,
                    stdout: None,
                },
                inputs: sources.clone(),
                outputs: vec![],
                clean: vec![],
                settings: String::new(),
            },
            Stage {
                name: "data".into(),
                what: format!(
                    "stratified subsets: train {}, dev {}",
                    size(s.train_size),
                    size(s.dev_size)
                ),
                action: Action::Data,
                inputs: sources,
                outputs: data_files.clone(),
                clean: data_files,
                settings: format!(
                    "train {:?} dev {:?} seed {}{}",
                    s.train_size,
                    s.dev_size,
                    s.seed,
                    task_key(task)
                ),
            },
        ];

        let mut args = Args::new(&["teacher", "finetune"])
            .opt("--teacher", &base_arg)
            .path("--train", &train)
            .path("--dev", &dev)
            .path("--out", &l.teacher())
            .opt("--epochs", s.teacher_epochs)
            .opt("--seed", s.seed);
        if !task.is_default() {
            // The order the user fixed (or the original file's), whatever data/train.tsv holds.
            args = args.opt("--labels", task.labels.join(","));
        }
        if let Some(n) = s.teacher_max_steps {
            args = args.opt("--max-steps", n);
        }
        if let Some(lr) = s.teacher_lr {
            args = args.opt("--lr", lr);
        }
        let mut args = args.opt("--device", &self.device);
        if s.teacher_precision != TeacherPrecision::F32 {
            args = args.opt("--precision", s.teacher_precision.name());
        }
        let inputs = [base_inputs, vec![train.clone(), dev.clone()]].concat();
        let what = format!("fine-tune the teacher ({base_arg}) on {}", self.device);
        let mut finetune = Stage::cli(
            "teacher-finetune".into(),
            what,
            args,
            inputs,
            self.teacher_files(),
        );
        finetune.clean = vec![l.teacher()];
        finetune.settings = hub.map(|id| format!("hub {id}")).unwrap_or_default();
        stages.push(finetune);

        stages.push(self.label(
            "teacher-label",
            "the training sentences",
            &train,
            l.logits("train"),
        ));
        if s.uses_augmentation() {
            let args = Args::new(&["augment"])
                .path("--data", &train)
                .path("--out", &aug)
                .path("--teacher", &l.teacher())
                .opt("--augment-factor", s.augment_factor)
                .opt("--val-share", STUDENT_VAL_SHARE)
                .opt("--seed", s.seed);
            let inputs = [self.teacher_files(), vec![train.clone()]].concat();
            let what = format!(
                "augmented transfer sentences ({} per sentence)",
                s.augment_factor
            );
            stages.push(Stage::cli(
                "augment".into(),
                what,
                args,
                inputs,
                vec![aug.clone()],
            ));
        }
        if s.uses_transfer() {
            stages.extend(self.transfer());
        }
        stages
    }

    /// The transfer set and its logits: the augmented samples alone, or with unlabelled
    /// text concatenated into `data/transfer.tsv`.
    fn transfer(&self) -> Vec<Stage> {
        let (s, l) = (self.s, self.l);
        let (file, logits) = self.transfer_files();
        let mut stages = Vec::new();
        if s.task.unlabelled.is_some() {
            let mut parts = Vec::new();
            if s.uses_augmentation() {
                parts.push(l.augmented());
            }
            parts.push(l.unlabelled());
            stages.push(Stage {
                name: "transfer".into(),
                what: "transfer text: augmented samples and the unlabelled text".into(),
                action: Action::Transfer {
                    parts: parts.clone(),
                    out: file.clone(),
                },
                inputs: parts,
                outputs: vec![file.clone()],
                clean: vec![file.clone()],
                settings: String::new(),
            });
        }
        let (name, what) = if s.task.unlabelled.is_some() {
            ("teacher-label-transfer", "the transfer text")
        } else {
            ("teacher-label-augment", "the augmented sentences")
        };
        stages.push(self.label(name, what, &file, logits));
        stages
    }

    /// The transfer file and its logit cache.
    fn transfer_files(&self) -> (PathBuf, PathBuf) {
        let l = self.l;
        if self.s.task.unlabelled.is_some() {
            (l.transfer(), l.logits("transfer"))
        } else {
            (l.augmented(), l.logits("augment"))
        }
    }

    fn label(&self, name: &str, what: &str, data: &Path, out: PathBuf) -> Stage {
        let mut args = Args::new(&["teacher", "label"])
            .path("--teacher", &self.l.teacher())
            .path("--data", data)
            .path("--out", &out)
            .opt("--device", &self.device);
        // Only when asked for: f32 runs keep the command (and stage key) they always had.
        if self.s.teacher_precision != TeacherPrecision::F32 {
            args = args.opt("--precision", self.s.teacher_precision.name());
        }
        let inputs = [self.teacher_files(), vec![data.to_path_buf()]].concat();
        Stage::cli(
            name.into(),
            format!("teacher logits for {what} on {}", self.device),
            args,
            inputs,
            vec![out],
        )
    }

    fn train(&self, spec: &StudentSpec) -> Stage {
        let (s, l) = (self.s, self.l);
        let out = l.student(spec.name);
        let mut args = Args::new(&["student", "train"])
            .path("--train", &l.train())
            .path("--out", &out);
        let mut inputs = vec![l.train()];
        match spec.loss {
            None => args = args.opt("--mode", "baseline"),
            Some(loss) => {
                args = args
                    .opt("--mode", "distill")
                    .opt("--loss", loss)
                    .path("--logits", &l.logits("train"));
                inputs.push(l.logits("train"));
            }
        }
        if spec.augment {
            let (file, logits) = self.transfer_files();
            args = args
                .path("--augment", &file)
                .path("--augment-logits", &logits);
            inputs.extend([file, logits]);
        }
        if spec.wordpieces {
            args = args.opt("--tokenizer", "teacher");
        }
        if spec.teacher_embeddings {
            args = args.opt("--init-embeddings", "teacher");
        }
        if spec.wordpieces || spec.teacher_embeddings {
            args = args.path("--teacher", &l.teacher());
            inputs.extend(self.teacher_files());
        }
        let mut args = args.opt("--preset", spec.preset);
        let (embedding_dim, hidden_size) = s.size_flags(spec);
        if let Some(e) = embedding_dim {
            args = args.opt("--embedding-dim", e);
        }
        if let Some(h) = hidden_size {
            args = args.opt("--hidden-size", h);
        }
        if let Some(n) = s.layers_of(spec) {
            args = args.opt("--num-layers", n);
        }
        if let Some(a) = spec.alpha {
            args = args.opt("--alpha", a);
        }
        let args = args
            .opt("--epochs", s.epochs_of(spec.preset))
            .opt("--batch-size", s.student_batch_size)
            .opt("--val-share", STUDENT_VAL_SHARE)
            .opt("--seed", s.seed)
            .opt("--device", &self.student_device);
        let outputs = vec![
            out.join("metrics.jsonl"),
            out.join("best/model.safetensors"),
        ];
        let what = format!(
            "train student `{}` on {}: {}",
            spec.name, self.student_device, spec.label
        );
        let mut stage = Stage::cli(
            format!("student-{}", spec.name),
            what,
            args,
            inputs,
            outputs,
        );
        stage.clean = vec![out];
        stage
    }

    fn eval_teacher(&self, test: bool) -> Stage {
        let l = self.l;
        if test {
            let args = Args::new(&["teacher", "eval"])
                .path("--teacher", &l.teacher())
                .path("--data", &l.test())
                .flag("--json")
                .opt("--device", "cpu");
            let inputs = [self.teacher_files(), vec![l.test()]].concat();
            return Stage::cli(
                "eval-test-teacher".into(),
                "teacher on test (CPU)".into(),
                args,
                inputs,
                vec![],
            )
            .stdout_to(l.eval_test("teacher"));
        }
        let args = Args::new(&["teacher", "eval"])
            .path("--teacher", &l.teacher())
            .path("--data", &l.dev())
            .flag("--json")
            .path("--scores", &l.scores("teacher"))
            .opt("--latency", self.s.teacher_latency_samples)
            .opt("--device", "cpu");
        let inputs = [self.teacher_files(), vec![l.dev()]].concat();
        let what = "teacher on dev (CPU): metrics, scores, throughput, latency".to_string();
        Stage::cli(
            "eval-teacher".into(),
            what,
            args,
            inputs,
            vec![l.scores("teacher")],
        )
        .stdout_to(l.eval("teacher"))
    }

    fn student_inputs(&self, spec: &StudentSpec) -> Vec<PathBuf> {
        let best = self.l.student(spec.name).join("best");
        [RunFolder::model_files(&best, false), vec![self.l.dev()]].concat()
    }

    fn eval_student(&self, spec: &StudentSpec, test: bool) -> Stage {
        let l = self.l;
        if test {
            let best = l.student(spec.name).join("best");
            let args = Args::new(&["eval"])
                .path("--model", &best)
                .path("--data", &l.test())
                .flag("--json");
            let inputs = [RunFolder::model_files(&best, false), vec![l.test()]].concat();
            return Stage::cli(
                format!("eval-test-{}", spec.name),
                format!("student `{}` on test", spec.name),
                args,
                inputs,
                vec![],
            )
            .stdout_to(l.eval_test(spec.name));
        }
        let args = Args::new(&["eval"])
            .path("--model", &l.student(spec.name).join("best"))
            .path("--data", &l.dev())
            .flag("--json")
            .path("--scores", &l.scores(spec.name));
        let (name, what) = (
            format!("eval-{}", spec.name),
            format!("student `{}` on dev", spec.name),
        );
        Stage::cli(
            name,
            what,
            args,
            self.student_inputs(spec),
            vec![l.scores(spec.name)],
        )
        .stdout_to(l.eval(spec.name))
    }

    fn bench_student(&self, spec: &StudentSpec) -> Stage {
        let l = self.l;
        let args = Args::new(&["bench"])
            .path("--model", &l.student(spec.name).join("best"))
            .path("--data", &l.dev())
            .flag("--json")
            .opt("--repeat", self.s.bench_repeat);
        let name = format!("bench-{}", spec.name);
        let what = format!("student `{}`: CPU throughput and latency", spec.name);
        Stage::cli(name, what, args, self.student_inputs(spec), vec![])
            .stdout_to(l.bench(spec.name))
    }

    fn report(&self, students: &[&StudentSpec]) -> Stage {
        let l = self.l;
        let mut inputs = vec![l.dev(), l.eval("teacher"), l.scores("teacher")];
        let test = self.s.task.test.is_some();
        if test {
            inputs.push(l.eval_test("teacher"));
        }
        for spec in students {
            let dir = l.student(spec.name);
            inputs.extend([l.eval(spec.name), l.scores(spec.name), l.bench(spec.name)]);
            if test {
                inputs.push(l.eval_test(spec.name));
            }
            inputs.extend([
                dir.join("metrics.jsonl"),
                dir.join("best/model.safetensors"),
            ]);
        }
        let outputs: Vec<PathBuf> = ["report.md", "report.html", "report.json"]
            .iter()
            .map(|f| l.run.dir.join(f))
            .collect();
        let args = Args::new(&["report"]).path("--run", &l.run.dir);
        let mut stage = Stage::cli(
            "report".into(),
            "report.md, report.html and plots/".into(),
            args,
            inputs,
            outputs,
        );
        // What pipeline.json's description says of the run is not in any input file.
        stage.settings = format!(
            "{} devices {} {}",
            serde_json::to_string(self.s).unwrap_or_default(),
            self.device,
            self.student_device
        );
        stage
    }
}

/// What of the task keys the data stage: format, columns and label names.
fn task_key(task: &super::presets::Task) -> String {
    if task.is_default() {
        return String::new(); // SST-2 as before: existing runs keep their cache
    }
    format!(
        " task {} labels {}",
        serde_json::to_string(&task.spec).unwrap_or_default(),
        task.labels.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::layout::STUDENTS;
    use crate::pipeline::presets::{Preset, StudentSize};

    fn test_layout() -> Layout {
        Layout {
            root: "/root".into(),
            run: RunFolder::new("/runs/x"),
        }
    }

    #[test]
    fn every_stage_reads_only_what_an_earlier_stage_writes() {
        let layout = test_layout();
        let settings = Settings::preset(Preset::Full);
        let base = TeacherBase::Hub("a/b".into());
        let plan = plan(
            &settings,
            &layout,
            &base,
            &DeviceChoice::parse("cuda").unwrap(),
            &DeviceChoice::parse("cpu").unwrap(),
        );
        let mut written: Vec<PathBuf> = layout.sources(&settings.task);
        for stage in &plan {
            for input in &stage.inputs {
                assert!(
                    written.contains(input),
                    "{} reads {} before it is written",
                    stage.name,
                    input.display()
                );
            }
            written.extend(stage.outputs.iter().cloned());
            if stage.name.starts_with("student-") {
                let best = stage.outputs[1].parent().unwrap().to_path_buf();
                written.extend(RunFolder::model_files(&best, false));
            }
            if let Action::Cli { args, .. } = &stage.action {
                let on_device = args
                    .windows(2)
                    .any(|w| w[0] == "--device" && w[1] == "cuda");
                // Teacher stages on the GPU; students, evaluation and timing on the CPU.
                let computes = ["teacher-finetune", "teacher-label"]
                    .iter()
                    .any(|p| stage.name.starts_with(p));
                assert_eq!(on_device, computes, "{}: {args:?}", stage.name);
            }
        }
        assert_eq!(plan.len(), 2 + 4 + STUDENTS.len() * 3 + 1 + 1);
    }

    #[test]
    fn bf16_reaches_fine_tuning_and_every_label_stage_and_f32_keeps_the_old_commands() {
        let layout = test_layout();
        let base = TeacherBase::Hub("a/b".into());
        let cpu = DeviceChoice::parse("cpu").unwrap();
        let precision_of = |settings: &Settings| -> Vec<(String, Option<String>)> {
            plan(settings, &layout, &base, &cpu, &cpu)
                .iter()
                .filter_map(|stage| match &stage.action {
                    Action::Cli { args, .. }
                        if args[..2] == ["teacher", "label"]
                            || args[..2] == ["teacher", "finetune"] =>
                    {
                        let p = args.windows(2).find(|w| w[0] == "--precision");
                        Some((stage.name.clone(), p.map(|w| w[1].clone())))
                    }
                    _ => None,
                })
                .collect()
        };
        let mut settings = Settings::preset(Preset::Full);
        settings.teacher_precision = TeacherPrecision::F32;
        let f32_stages = precision_of(&settings);
        assert_eq!(f32_stages.len(), 3, "{f32_stages:?}");
        assert!(
            f32_stages.iter().all(|(_, p)| p.is_none()),
            "{f32_stages:?}"
        );
        settings.teacher_precision = TeacherPrecision::Bf16;
        let bf16_stages = precision_of(&settings);
        assert_eq!(bf16_stages.len(), 3, "{bf16_stages:?}");
        assert!(
            bf16_stages
                .iter()
                .all(|(_, p)| p.as_deref() == Some("bf16")),
            "{bf16_stages:?}"
        );
    }

    /// The value after `flag` in a command's arguments.
    fn flag_value(args: &[String], flag: &str) -> Option<String> {
        args.windows(2).find(|w| w[0] == flag).map(|w| w[1].clone())
    }

    #[test]
    fn a_specs_embedding_size_reaches_its_student_alone() {
        let layout = test_layout();
        let base = TeacherBase::Hub("a/b".into());
        let cpu = DeviceChoice::parse("cpu").unwrap();
        let settings = Settings::preset(Preset::Full);
        let mut seen = 0;
        for stage in plan(&settings, &layout, &base, &cpu, &cpu) {
            let Action::Cli { args, .. } = &stage.action else {
                continue;
            };
            let Some(spec) = STUDENTS
                .iter()
                .find(|k| stage.name == format!("student-{}", k.name))
            else {
                continue;
            };
            let want = spec.embedding_dim.map(|e| e.to_string());
            assert_eq!(flag_value(args, "--embedding-dim"), want, "{args:?}");
            seen += usize::from(want.is_some());
        }
        assert_eq!(seen, 1, "only large-augment sets its embedding size");
    }

    #[test]
    fn sizes_reach_only_the_large_students_and_wordpieces_only_the_students_that_read_them() {
        let layout = test_layout();
        let base = TeacherBase::Hub("a/b".into());
        let cpu = DeviceChoice::parse("cpu").unwrap();
        let sizes_of = |settings: &Settings| -> Vec<(String, Option<String>)> {
            plan(settings, &layout, &base, &cpu, &cpu)
                .iter()
                .filter_map(|stage| match &stage.action {
                    Action::Cli { args, .. } if args[..2] == ["student", "train"] => {
                        let value = |flag: &str| flag_value(args, flag);
                        let size = value("--hidden-size")
                            .map(|h| format!("{}/{h}", value("--embedding-dim").unwrap()));
                        Some((value("--preset").unwrap(), size))
                    }
                    _ => None,
                })
                .collect()
        };
        let mut settings = Settings::preset(Preset::Full);
        let default = sizes_of(&settings);
        assert!(default.iter().all(|(_, z)| z.is_none()), "{default:?}");
        settings.large_student_size = Some(StudentSize {
            embedding_dim: 300,
            hidden_size: 150,
        });
        let sized = sizes_of(&settings);
        assert!(sized.iter().any(|(p, _)| p == "large"), "{sized:?}");
        for (preset, size) in &sized {
            let want = (preset == "large").then(|| "300/150".to_string());
            assert_eq!(size, &want, "{sized:?}");
        }

        // WordPieces: the students whose spec says so read them (and so get the teacher).
        for stage in plan(&settings, &layout, &base, &cpu, &cpu) {
            let Action::Cli { args, .. } = &stage.action else {
                continue;
            };
            if args[..2] != ["student", "train"] {
                continue;
            }
            let spec = STUDENTS
                .iter()
                .find(|k| stage.name == format!("student-{}", k.name))
                .unwrap();
            let reads = args.windows(2).any(|w| w == ["--tokenizer", "teacher"]);
            assert_eq!(reads, spec.wordpieces, "{args:?}");
            // Depth and the label weight reach exactly the students whose spec sets them.
            let value = |flag: &str| flag_value(args, flag);
            assert_eq!(
                value("--num-layers"),
                spec.num_layers.map(|n| n.to_string())
            );
            assert_eq!(settings.layers_of(spec), spec.num_layers);
            // `--large-embedding-dim`/`--large-hidden-size` replace a spec's embedding size.
            let sized = (spec.preset == "large").then(|| "300".to_string());
            assert_eq!(value("--embedding-dim"), sized, "{args:?}");
            assert_eq!(value("--alpha"), spec.alpha.map(|a| a.to_string()));
            if reads {
                assert!(args.iter().any(|a| a == "--teacher"), "{args:?}");
                assert!(stage
                    .inputs
                    .contains(&layout.teacher().join("tokenizer.json")));
            }
        }
        assert!(STUDENTS.iter().any(|k| k.wordpieces));
        let deep = student("large-augment").unwrap();
        assert_eq!((deep.num_layers, deep.alpha), (Some(2), Some(0.0)));

        // `--large-num-layers` sets every `large` student's depth and no other's.
        settings.large_num_layers = Some(1);
        for stage in plan(&settings, &layout, &base, &cpu, &cpu) {
            let Action::Cli { args, .. } = &stage.action else {
                continue;
            };
            if args[..2] != ["student", "train"] {
                continue;
            }
            let value = |flag: &str| flag_value(args, flag);
            let want = (value("--preset").as_deref() == Some("large")).then(|| "1".to_string());
            assert_eq!(value("--num-layers"), want, "{args:?}");
        }
    }
}
