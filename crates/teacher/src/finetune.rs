//! Fine-tuning a BERT into a sentence classifier, as transformers' `Trainer` does for
//! GLUE: cross-entropy on the logits, AdamW (decay 0.01 except biases and LayerNorm
//! weights), linear warm-up over 6% of the steps then linear decay to 0, gradient
//! clipping at global norm 1, dropout on, batches of similar length, all seeded.
//!
//! The dev set is evaluated after every epoch (and every `eval_every` steps when asked);
//! each evaluation appends a line to `<out>/metrics.jsonl`, and the best one by dev
//! accuracy (then lower loss) is saved as a Hugging Face folder in `<out>`, swapped in whole
//! (so `<out>` must be new or hold only a checkpoint), with `<out>/training.json`: the
//! run's settings, its training precision among them.
//!
//! [`FinetuneConfig::precision`] `Bf16` trains in mixed precision (AMX tiles or AVX512-BF16): the
//! encoder's products and their gradients in bf16, everything else (master weights, AdamW,
//! layer norm, softmax, GELU, loss) in f32; dev evaluation stays f32
//! ([`crate::BertClassifier::set_training_precision`]).
//!
//! Sentence-pair data trains on `[CLS] a [SEP] b [SEP]` with token type ids (see
//! [`crate::TeacherTokenizer`]); train and dev must both be pairs or both single sentences. The
//! label names are the caller's ([`FinetuneConfig::labels`]): any number from two up, saved
//! as the checkpoint's `id2label`/`label2id`.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;
use distill_data::{Batcher, Dataset, EpochRecord, LabelSet};

use crate::checkpoint::{check_replaceable, LoadOptions, Precision, Teacher};
use crate::error::{Error, Result};
use crate::infer::{predict_encoded, progress_bar, score, InferOptions};
use crate::optim::{AdamW, AdamWConfig, LinearSchedule};
pub use crate::step::train_step;
use crate::step::{split_rows, train_step_parts, StepPart, CPU_PARTS};
use crate::tokenize::pair_texts;
use crate::weights::HeadInit;

/// Everything a fine-tuning run needs besides the data; defaults follow transformers'
/// GLUE recipe.
#[derive(Debug, Clone)]
pub struct FinetuneConfig {
    /// Base model: hub id or folder.
    pub teacher: String,
    /// Output folder (best checkpoint and `metrics.jsonl`).
    pub out: PathBuf,
    /// Label names; data label ids index into them. No default: the caller names them
    /// (the default is empty, which [`finetune`] refuses).
    pub labels: LabelSet,
    pub epochs: usize,
    /// Peak learning rate.
    pub lr: f64,
    pub batch_size: usize,
    /// Share of the steps spent warming up.
    pub warmup_ratio: f64,
    pub weight_decay: f64,
    /// Global gradient-norm clipping threshold.
    pub max_grad_norm: f64,
    pub seed: u64,
    /// Stop after this many steps (the schedule is shortened to match).
    pub max_steps: Option<usize>,
    /// Also evaluate every this many steps.
    pub eval_every: Option<usize>,
    /// Longest token sequence.
    pub max_len: usize,
    /// Batch size of dev evaluation.
    pub eval_batch_size: usize,
    /// Log the running loss every this many steps.
    pub log_every: usize,
    /// Show progress bars.
    pub progress: bool,
    /// Arithmetic of the encoder's products in training steps: f32, or bf16 (AMX tiles or
    /// AVX512-BF16; refused where the CPU has neither).
    pub precision: Precision,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self {
            teacher: "sentence-transformers/all-MiniLM-L6-v2".into(),
            out: PathBuf::from("runs/teacher"),
            labels: LabelSet::new(Vec::new()),
            epochs: 1,
            lr: 3e-5,
            batch_size: 32,
            warmup_ratio: 0.06,
            weight_decay: 0.01,
            max_grad_norm: 1.0,
            seed: 42,
            max_steps: None,
            eval_every: None,
            max_len: 128,
            eval_batch_size: 64,
            log_every: 50,
            progress: true,
            precision: Precision::F32,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct FinetuneReport {
    /// The best dev evaluation (its `step` is always set).
    pub best: EpochRecord,
    /// Every dev evaluation, as written to `metrics.jsonl`.
    pub history: Vec<EpochRecord>,
    pub steps: usize,
    /// Mean wall time of a training step (forward, backward, update), evaluation excluded.
    pub mean_step_seconds: f64,
    pub out: PathBuf,
    /// The arithmetic of the training steps.
    pub precision: Precision,
}

/// Fine-tunes `cfg.teacher` on `train`, evaluating on `dev`; see the module doc.
pub fn finetune(
    cfg: &FinetuneConfig,
    train: &Dataset,
    dev: &Dataset,
    device: &Device,
) -> Result<FinetuneReport> {
    check(cfg)?;
    let train_labels = train
        .labels()
        .ok_or_else(|| Error::Labels("the training data must be labelled".into()))?;
    let dev_labels = dev
        .labels()
        .ok_or_else(|| Error::Labels("the dev data must be labelled".into()))?;
    if train.is_empty() || dev.is_empty() {
        return Err(Error::Setting(
            "training and dev data must not be empty".into(),
        ));
    }
    if pair_texts(train)?.is_some() != pair_texts(dev)?.is_some() {
        return Err(Error::Setting(
            "the training and dev data must both be sentence pairs or both single sentences".into(),
        ));
    }
    distill_data::io::recover_dir(&cfg.out)?;
    check_replaceable(&cfg.out)?;
    let load = LoadOptions {
        labels: Some(cfg.labels.names().to_vec()),
        head: HeadInit::Random,
        seed: cfg.seed,
        max_len: cfg.max_len,
        // Weights packed for inference have no gradients: bf16 training rounds the f32
        // weights per step instead (below).
        precision: Precision::F32,
    };
    let mut teacher = Teacher::load(&cfg.teacher, &load, device)?;
    teacher.model.set_training_precision(cfg.precision)?;
    let settings = training_json(cfg, train.len());
    teacher.model.seed_dropout(cfg.seed);
    let encoded = teacher.tokenizer.encode_data(train)?;
    let dev_encoded = teacher.tokenizer.encode_data(dev)?;
    let lengths: Vec<usize> = encoded.ids.iter().map(Vec::len).collect();

    let per_epoch = train.len().div_ceil(cfg.batch_size);
    let total = (per_epoch * cfg.epochs).min(cfg.max_steps.unwrap_or(usize::MAX));
    let schedule = LinearSchedule::with_ratio(cfg.lr, cfg.warmup_ratio, total);
    let adamw = AdamWConfig {
        weight_decay: cfg.weight_decay,
        ..Default::default()
    };
    let mut opt = AdamW::new(teacher.model.params().iter(), adamw)?;
    let (decayed, exempt) = opt.group_sizes();
    tracing::info!(
        teacher = %teacher.source.name(),
        examples = train.len(),
        epochs = cfg.epochs,
        steps = total,
        warmup = schedule.warmup,
        lr = cfg.lr,
        batch = cfg.batch_size,
        precision = cfg.precision.name(),
        decayed,
        exempt,
        "fine-tuning"
    );

    let eval_opts = InferOptions {
        batch_size: cfg.eval_batch_size,
        progress: false,
    };
    let mut history: Vec<EpochRecord> = Vec::new();
    let mut best: Option<EpochRecord> = None;
    let mut lines = String::new();
    let (mut step, mut loss_sum, mut loss_n, mut span_seconds, mut all_seconds) =
        (0, 0f64, 0usize, 0f64, 0f64);
    let mut lr;
    let bar = progress_bar(total as u64, "fine-tuning", cfg.progress);
    let started = Instant::now();
    // Length-bucketed, seeded batches (the student's batcher): little padding, a new mix
    // every epoch.
    let batcher = Batcher::new(cfg.batch_size)
        .max_len(usize::MAX)
        .shuffle(true)
        .seed(cfg.seed);
    'epochs: for epoch in 0..cfg.epochs {
        for batch in batcher.index_batches(&lengths, epoch) {
            if step >= total {
                break 'epochs;
            }
            let t0 = Instant::now();
            let parts = split_rows(&batch, if device.is_cpu() { CPU_PARTS } else { 1 })
                .into_iter()
                .map(|rows| {
                    Ok(StepPart {
                        inputs: encoded.batch(&rows, teacher.tokenizer.pad_id(), device)?,
                        labels: rows.iter().map(|&i| train_labels[i]).collect(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            lr = schedule.lr(step);
            let loss = train_step_parts(&teacher, &mut opt, &parts, lr, cfg.max_grad_norm)?;
            if !loss.is_finite() {
                return Err(Error::Setting(format!(
                    "the loss diverged at step {step} ({loss})"
                )));
            }
            let dt = t0.elapsed().as_secs_f64();
            step += 1;
            loss_sum += loss;
            loss_n += 1;
            span_seconds += dt;
            all_seconds += dt;
            bar.set_message(format!("loss {:.4}", loss_sum / loss_n as f64));
            bar.inc(1);
            if step % cfg.log_every.max(1) == 0 {
                let rate = step as f64 / all_seconds;
                tracing::info!(
                    step,
                    total,
                    loss = format!("{:.4}", loss_sum / loss_n as f64),
                    lr = format!("{lr:.2e}"),
                    s_per_step = format!("{:.3}", 1.0 / rate),
                    eta_min = format!("{:.1}", (total - step) as f64 / rate / 60.0),
                    "training"
                );
            }
            let end_of_epoch = step % per_epoch == 0 || step == total;
            let asked = cfg.eval_every.is_some_and(|n| step % n == 0);
            if end_of_epoch || asked {
                let logits = predict_encoded(&teacher, &dev_encoded, &eval_opts)?;
                let eval = score(&logits, teacher.model.num_labels(), &dev_labels)?;
                let record = EpochRecord {
                    epoch: step.div_ceil(per_epoch),
                    step: Some(step),
                    train_loss: loss_sum / loss_n.max(1) as f64,
                    val_loss: eval.loss,
                    val_acc: eval.metrics.acc,
                    val_ap: eval.metrics.ap,
                    val_f1: eval.metrics.f1,
                    lr,
                    epoch_seconds: span_seconds,
                };
                let improved = best
                    .as_ref()
                    .is_none_or(|b| (record.val_acc, -record.val_loss) > (b.val_acc, -b.val_loss));
                bar.suspend(|| {
                    tracing::info!(
                        step,
                        val_acc = format!("{:.4}", record.val_acc),
                        val_ap = format!("{:.4}", record.val_ap),
                        val_loss = format!("{:.4}", record.val_loss),
                        best = improved,
                        "dev evaluation"
                    )
                });
                let path = cfg.out.join("metrics.jsonl");
                let line = serde_json::to_string(&record).map_err(|source| Error::Json {
                    path: path.clone(),
                    source,
                })?;
                lines.push_str(&line);
                lines.push('\n');
                if improved {
                    // The metrics travel with the checkpoint they describe.
                    teacher.save_with(
                        &cfg.out,
                        &[
                            ("metrics.jsonl", lines.as_bytes()),
                            ("training.json", settings.as_bytes()),
                        ],
                    )?;
                    best = Some(record.clone());
                } else {
                    distill_data::write_atomic(&path, lines.as_bytes())
                        .map_err(|e| Error::io("write", path, e))?;
                }
                history.push(record);
                (loss_sum, loss_n, span_seconds) = (0.0, 0, 0.0);
            }
        }
    }
    bar.finish_and_clear();
    let best = best.ok_or_else(|| Error::Setting("no training step was run".into()))?;
    tracing::info!(
        steps = step,
        minutes = format!("{:.1}", started.elapsed().as_secs_f64() / 60.0),
        s_per_step = format!("{:.3}", all_seconds / step.max(1) as f64),
        precision = cfg.precision.name(),
        best_acc = format!("{:.4}", best.val_acc),
        best_ap = format!("{:.4}", best.val_ap),
        out = %cfg.out.display(),
        "fine-tuning done"
    );
    Ok(FinetuneReport {
        best,
        history,
        steps: step,
        mean_step_seconds: all_seconds / step.max(1) as f64,
        out: cfg.out.clone(),
        precision: cfg.precision,
    })
}

/// `training.json`, saved with the checkpoint: how it was trained.
fn training_json(cfg: &FinetuneConfig, examples: usize) -> String {
    let value = serde_json::json!({
        "base": cfg.teacher,
        "precision": cfg.precision.name(),
        "examples": examples,
        "epochs": cfg.epochs,
        "max_steps": cfg.max_steps,
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "warmup_ratio": cfg.warmup_ratio,
        "weight_decay": cfg.weight_decay,
        "max_grad_norm": cfg.max_grad_norm,
        "max_len": cfg.max_len,
        "seed": cfg.seed,
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

fn check(cfg: &FinetuneConfig) -> Result<()> {
    let bad = |m: String| Err(Error::Setting(m));
    if cfg.epochs == 0 || cfg.batch_size == 0 || cfg.eval_batch_size == 0 {
        return bad("epochs and batch sizes must be positive".into());
    }
    if !(cfg.lr > 0.0 && cfg.lr.is_finite()) {
        return bad(format!("learning rate {} must be positive", cfg.lr));
    }
    if !(0.0..1.0).contains(&cfg.warmup_ratio) {
        return bad(format!(
            "warm-up ratio {} is not in [0, 1)",
            cfg.warmup_ratio
        ));
    }
    if cfg.max_steps == Some(0) || cfg.eval_every == Some(0) {
        return bad("--max-steps and --eval-every must be positive".into());
    }
    if cfg.labels.len() < 2 {
        return bad(format!(
            "a classifier needs at least two labels, the fine-tuning labels are [{}]",
            cfg.labels.names().join(", ")
        ));
    }
    Ok(())
}
