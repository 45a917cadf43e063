//! `distill teacher finetune | eval | label`: thin calls into `distill_teacher`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use distill_data::shard::Shard;
use distill_data::{Dataset, LabelSet};
use distill_teacher::{FinetuneConfig, InferOptions, LoadOptions, Precision, Teacher};

use crate::task::{parse_labels, TaskArgs};

/// The teacher subcommands.
#[derive(Debug, Subcommand)]
pub enum TeacherCommand {
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
        /// Arithmetic of the encoder's products: f32, or bf16 on Intel AMX tiles (several
        /// times faster on Xeon Sapphire Rapids and newer; logits within ~1e-2 of f32).
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
        /// Arithmetic of the encoder's products: f32, or bf16 on Intel AMX tiles (several
        /// times faster on Xeon Sapphire Rapids and newer; logits within ~1e-2 of f32).
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

/// Class probabilities per row of row-major `[N, C]` logits (softmax).
fn class_probabilities(logits: &[f32], num_labels: usize) -> Vec<Vec<f32>> {
    logits
        .chunks(num_labels)
        .map(distill_data::probabilities)
        .collect()
}

/// Median microseconds of one forward pass over a single example (text or pair in, logits
/// out), over the first `n` examples of `data` (cycling when there are fewer).
fn single_sentence_latency(teacher: &Teacher, data: &Dataset, n: usize) -> Result<f64> {
    let opts = InferOptions {
        batch_size: 1,
        progress: false,
    };
    let mut times = Vec::with_capacity(n);
    for i in (0..data.len()).cycle().take(n) {
        let one = data.subset(&[i]);
        let start = std::time::Instant::now();
        std::hint::black_box(distill_teacher::predict_data_logits(teacher, &one, &opts)?);
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    anyhow::ensure!(!times.is_empty(), "no sentences to time");
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Runs one teacher subcommand.
pub fn run(cmd: TeacherCommand) -> Result<()> {
    match cmd {
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
                ..Default::default()
            };
            let report = distill_teacher::finetune(&cfg, &train_data, &dev_data, &device)
                .with_context(|| format!("fine-tuning {teacher}"))?;
            let b = &report.best;
            println!(
                "fine-tuned {teacher}: {} steps, {:.3} s/step; best dev (step {}): acc {:.4}, AP {:.4}, F1 {:.4}, loss {:.4}; saved to {}",
                report.steps,
                report.mean_step_seconds,
                b.step,
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
            let gold = data
                .labels()
                .context("evaluation needs a label on every row")?;
            let opts = InferOptions {
                batch_size,
                progress: !json,
            };
            let start = std::time::Instant::now();
            let logits = distill_teacher::predict_data_logits(&teacher, &data, &opts)?;
            let seconds = start.elapsed().as_secs_f64();
            let eval = distill_teacher::infer::score(&logits, labels.len(), &gold)?;
            if let Some(path) = &scores {
                crate::eval::write_scores(path, &class_probabilities(&logits, labels.len()))?;
            }
            let latency_us_median =
                (latency > 0).then(|| single_sentence_latency(&teacher, &data, latency));
            let latency_us_median = latency_us_median.transpose()?;
            let m = &eval.metrics;
            if json {
                let mut value = serde_json::to_value(crate::eval::EvalRecord::new(&labels, m))?;
                value["loss"] = eval.loss.into();
                value["seconds"] = seconds.into();
                value["sentences_per_second"] = (m.n as f64 / seconds.max(1e-9)).into();
                value["latency_us_median"] = serde_json::json!(latency_us_median);
                println!("{value}");
            } else {
                print!("{}", crate::eval::metrics_text(m, &labels));
                println!("loss      {:.4}", eval.loss);
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
