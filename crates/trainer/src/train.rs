//! The training loop: epochs of Adam steps over length-bucketed batches, validation after
//! each epoch, the best model kept by validation loss, and a resumable `last/` checkpoint.
//!
//! Run folder: `metrics.jsonl` (one [`EpochRecord`] per epoch), `best/` (model folder),
//! `last/` (model folder + `optimizer.safetensors` + `state.json`). Randomness (init, batch
//! order, dropout) is derived from the seed and the epoch number alone, so a run resumed from
//! `last/` continues exactly as an uninterrupted one.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use distill_data::io::{partial_dir, recover_dir, replace_dir, write_atomic};
use distill_data::{Batcher, EpochRecord, TextEncoder};
use distill_student::{BiLstmClassifier, StudentConfig, StudentModel};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::engine::{Engine, Stepper, EMBEDDING};
use crate::error::io_err;
use crate::evaluate::evaluate;
use crate::optim::{AdamConfig, StepLr};
use crate::{DataFingerprint, EncodedSet, Error, Loss, Result};

/// Hyper-parameters of a training run (defaults: the original tutorial).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// StepLR decay per epoch.
    pub gamma: f64,
    pub seed: u64,
    pub loss: Loss,
    /// Which implementation runs the steps (absent in runs from before it was recorded).
    #[serde(default)]
    pub engine: Engine,
    /// Show a progress bar.
    #[serde(skip)]
    pub progress: bool,
    /// Start the embedding table from these values instead of N(0, 1) (a resumed run
    /// reads it from its checkpoint instead).
    #[serde(skip)]
    pub initial_embedding: Option<EmbeddingTable>,
    /// What the run trains on, recorded in `last/state.json`; a resume with other data is
    /// refused. `None` records and checks nothing.
    #[serde(skip)]
    pub data: Option<DataFingerprint>,
}

/// Row-major `[vocab, dim]` embedding values (printed by size only).
#[derive(Clone)]
pub struct EmbeddingTable(pub Vec<f32>);

impl std::fmt::Debug for EmbeddingTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EmbeddingTable({} values)", self.0.len())
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 30,
            batch_size: 32,
            lr: 1e-3,
            gamma: 0.9,
            seed: 0,
            loss: Loss::Ce,
            engine: Engine::Auto,
            progress: true,
            initial_embedding: None,
            data: None,
        }
    }
}

impl TrainConfig {
    /// Refuses settings that would train on garbage: NaN/±inf, a non-positive rate or
    /// batch size (and the loss's own ranges, see [`Loss::validate`]).
    pub fn validate(&self) -> Result<()> {
        let bad = |name, value, reason| {
            Err(Error::InvalidSetting {
                name,
                value,
                reason,
            })
        };
        if self.batch_size == 0 {
            return bad("batch_size", 0.0, "must be at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", self.lr, "must be finite and > 0");
        }
        if !(self.gamma.is_finite() && self.gamma > 0.0) {
            return bad("gamma", self.gamma, "must be finite and > 0");
        }
        self.loss.validate()
    }
}

/// `last/state.json`: where a resumed run picks up.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ResumeState {
    epochs_done: usize,
    best_val_loss: f64,
    config: TrainConfig,
    /// Absent in runs from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<DataFingerprint>,
}

/// What a finished run returns.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    pub records: Vec<EpochRecord>,
    pub best_epoch: usize,
}

/// A seed for one purpose in one epoch, so every epoch's randomness is independent of how
/// the run got there (fresh or resumed).
fn derive_seed(seed: u64, purpose: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ purpose.wrapping_mul(0xBF58_476D_1CE4_E5B9)
        ^ (epoch as u64 + 1)
}

/// Trains a student on `train`, validating on `val`, writing into `out`. Resumes from
/// `out/last` when it exists and was written with the same config.
pub fn train(
    cfg: &TrainConfig,
    student: &StudentConfig,
    encoder: &TextEncoder,
    train: &EncodedSet,
    val: &EncodedSet,
    out: &Path,
    device: &Device,
) -> Result<TrainOutcome> {
    cfg.validate()?;
    if cfg.loss.needs_teacher() && train.teacher.is_none() {
        return Err(Error::Config(
            "this loss needs teacher logits (--logits)".into(),
        ));
    }
    // BCE reads one logit; every other loss one logit per label.
    let outputs = if matches!(cfg.loss, Loss::Bce) {
        1
    } else {
        student.labels.len()
    };
    if student.num_outputs != outputs {
        return Err(Error::Config(format!(
            "this loss needs {outputs} outputs, student has {}",
            student.num_outputs
        )));
    }
    if cfg.loss.needs_teacher() && train.num_labels != student.num_outputs {
        return Err(Error::Config(format!(
            "teacher logits have {} columns, the student {} outputs",
            train.num_labels, student.num_outputs
        )));
    }
    for (set, what) in [(train, "training"), (val, "validation")] {
        if set.is_pair() != student.pair {
            let reads = if student.pair {
                "pairs"
            } else {
                "single texts"
            };
            return Err(Error::Config(format!(
                "the student reads {reads}, the {what} set does not"
            )));
        }
    }
    fs::create_dir_all(out).map_err(io_err(out))?;
    let Start {
        mut stepper,
        mut state,
    } = start_or_resume(cfg, student, out, device)?;
    let mut records = read_records(&out.join("metrics.jsonl"), state.epochs_done)?;
    let schedule = StepLr {
        base_lr: cfg.lr,
        gamma: cfg.gamma,
        step_size: 1,
    };
    let batcher = Batcher::new(cfg.batch_size)
        .max_len(student.max_len)
        .shuffle(true);

    for epoch in state.epochs_done..cfg.epochs {
        let started = Instant::now();
        stepper.set_lr(schedule.lr_at(epoch));
        let batches = train.batches(
            &batcher.clone().seed(derive_seed(cfg.seed, 1, epoch)),
            epoch,
        );
        let mut dropout_rng = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, 2, epoch));
        let bar = progress_bar(cfg.progress, batches.len() as u64, epoch, cfg.epochs);
        let (mut loss_sum, mut seen) = (0.0f64, 0usize);
        let mut teacher_rows = Vec::new();
        for (step, batch) in batches.iter().enumerate() {
            let n = batch.indices.len();
            let labels = batch.gather(&train.labels);
            let teacher = train.teacher.as_ref().map(|t| {
                let c = train.num_labels;
                teacher_rows.clear();
                for &i in &batch.indices {
                    teacher_rows.extend_from_slice(&t[i * c..(i + 1) * c]);
                }
                &teacher_rows[..]
            });
            let l = stepper.step(&cfg.loss, batch, &labels, teacher, &mut dropout_rng)?;
            if !l.is_finite() {
                return Err(Error::NonFiniteLoss {
                    out: out.to_path_buf(),
                    epoch: epoch + 1,
                    step: step + 1,
                    steps: batches.len(),
                    loss: l,
                    kept: state.epochs_done,
                });
            }
            loss_sum += l * n as f64;
            seen += n;
            bar.inc(1);
            if bar.position().is_multiple_of(64) {
                bar.set_message(format!("loss {:.4}", loss_sum / seen as f64));
            }
        }
        stepper.sync()?;
        bar.finish_and_clear();
        let train_seconds = started.elapsed().as_secs_f64();
        let model = stepper.model(student)?;
        let eval = evaluate(&model, val, &cfg.loss, device)?;
        if !eval.loss.is_finite() {
            return Err(Error::NonFiniteValLoss {
                out: out.to_path_buf(),
                epoch: epoch + 1,
                loss: eval.loss,
                kept: state.epochs_done,
            });
        }
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: loss_sum / seen.max(1) as f64,
            val_loss: eval.loss,
            val_acc: eval.metrics.acc,
            val_ap: eval.metrics.ap,
            val_f1: eval.metrics.f1,
            lr: stepper.lr(),
            step: None,
            epoch_seconds: train_seconds,
        };
        tracing::info!(
            "epoch {}/{}: train loss {:.4}, val loss {:.4}, acc {:.4}, ap {:.4}, f1 {:.4} ({:.2}s)",
            record.epoch,
            cfg.epochs,
            record.train_loss,
            record.val_loss,
            record.val_acc,
            record.val_ap,
            record.val_f1,
            train_seconds
        );
        if record.val_loss < state.best_val_loss {
            state.best_val_loss = record.val_loss;
            StudentModel::save(&out.join("best"), student, encoder, &model.tensors())?;
        }
        records.push(record);
        write_records(&out.join("metrics.jsonl"), &records)?;
        state.epochs_done = epoch + 1;
        save_last(out, student, encoder, &model.tensors(), &stepper, &state)?;
    }
    let best_epoch = records
        .iter()
        .min_by(|a, b| a.val_loss.total_cmp(&b.val_loss))
        .map_or(0, |r| r.epoch);
    Ok(TrainOutcome {
        records,
        best_epoch,
    })
}

/// Parameters and optimiser state at the start of (or back into) a run.
struct Start {
    stepper: Stepper,
    state: ResumeState,
}

/// The state of the run in `out` if there is one to resume, after checking that it was
/// trained on the same data, settings and architecture. It writes nothing new (it only
/// puts back a `last/` or `best/` whose swap a kill interrupted), so callers run it before
/// writing anything into `out`.
pub(crate) fn check_resume(
    cfg: &TrainConfig,
    student: &StudentConfig,
    out: &Path,
) -> Result<Option<ResumeState>> {
    let last = out.join("last");
    // A kill inside a checkpoint swap leaves `<dir>.old`: put it back before looking.
    recover_dir(&last)?;
    recover_dir(&out.join("best"))?;
    let state_path = last.join("state.json");
    if !state_path.exists() {
        return Ok(None);
    }
    let text = fs::read_to_string(&state_path).map_err(io_err(&state_path))?;
    let state: ResumeState = serde_json::from_str(&text).map_err(|e| Error::Format {
        path: state_path.clone(),
        reason: e.to_string(),
    })?;
    match (&state.data, &cfg.data) {
        (Some(old), Some(new)) => {
            let changes = old.changes(new);
            if !changes.is_empty() {
                return Err(Error::DataChanged {
                    out: out.to_path_buf(),
                    changes,
                });
            }
        }
        (None, Some(_)) => tracing::warn!(
            "{} does not record its data (an older run); resuming unchecked",
            state_path.display()
        ),
        _ => {}
    }
    let comparable = |c: &TrainConfig| {
        let mut c = c.clone();
        c.epochs = 0; // a run may be extended
                      // The engines differ by float rounding only, and save the same checkpoint.
        c.engine = Engine::Auto;
        serde_json::to_value(c).ok()
    };
    if comparable(&state.config) != comparable(cfg) {
        return Err(Error::Config(format!(
            "{} holds a run with different settings; use a new --out or delete it",
            out.display()
        )));
    }
    let config_path = last.join(distill_student::CONFIG_FILE);
    let text = fs::read_to_string(&config_path).map_err(io_err(&config_path))?;
    let saved: StudentConfig = serde_json::from_str(&text).map_err(|e| Error::Format {
        path: config_path.clone(),
        reason: e.to_string(),
    })?;
    if &saved != student {
        return Err(Error::Config(format!(
            "{}: student config differs from this run's",
            last.display()
        )));
    }
    Ok(Some(state))
}

fn start_or_resume(
    cfg: &TrainConfig,
    student: &StudentConfig,
    out: &Path,
    device: &Device,
) -> Result<Start> {
    let last = out.join("last");
    let adam_config = AdamConfig {
        lr: cfg.lr,
        ..AdamConfig::default()
    };
    let resumed = if let Some(state) = check_resume(cfg, student, out)? {
        let model = StudentModel::load(&last, device)?;
        tracing::info!(
            "resuming {} after epoch {}",
            out.display(),
            state.epochs_done
        );
        Some((
            model.classifier.tensors(),
            ResumeState {
                config: cfg.clone(),
                data: cfg.data.clone(),
                ..state
            },
        ))
    } else {
        None
    };
    let (initial, state) = match resumed {
        Some(r) => r,
        None => {
            let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, 0, 0));
            let fresh = ResumeState {
                epochs_done: 0,
                best_val_loss: f64::INFINITY,
                config: cfg.clone(),
                data: cfg.data.clone(),
            };
            let mut tensors = BiLstmClassifier::init_tensors(student, &mut rng, device)?;
            if let Some(EmbeddingTable(table)) = &cfg.initial_embedding {
                let shape = (student.vocab_size, student.embedding_dim);
                if table.len() != shape.0 * shape.1 {
                    return Err(Error::Config(format!(
                        "initial embedding table has {} values, the student needs {shape:?}",
                        table.len()
                    )));
                }
                let t = Tensor::from_slice(table, shape, device)?;
                tensors.insert(EMBEDDING.to_string(), t);
            }
            (tensors, fresh)
        }
    };
    let mut stepper = Stepper::new(cfg.engine, student, &initial, adam_config, device)?;
    if state.epochs_done > 0 {
        let opt_path = last.join("optimizer.safetensors");
        let opt =
            candle_core::safetensors::load(&opt_path, &Device::Cpu).map_err(|e| Error::Format {
                path: opt_path.clone(),
                reason: e.to_string(),
            })?;
        stepper.load_state(&opt).map_err(|e| Error::Format {
            path: opt_path.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(Start { stepper, state })
}

fn save_last(
    out: &Path,
    student: &StudentConfig,
    encoder: &TextEncoder,
    tensors: &HashMap<String, Tensor>,
    stepper: &Stepper,
    state: &ResumeState,
) -> Result<()> {
    let partial = partial_dir(&out.join("last"));
    StudentModel::save(&partial, student, encoder, tensors)?;
    let opt = partial.join("optimizer.safetensors");
    let opt_state = stepper.state()?;
    candle_core::safetensors::save(&opt_state, &opt).map_err(|e| Error::Format {
        path: opt.clone(),
        reason: e.to_string(),
    })?;
    let json = serde_json::to_vec_pretty(state).map_err(|e| Error::Config(e.to_string()))?;
    let sp = partial.join("state.json");
    write_atomic(&sp, &json).map_err(io_err(&sp))?;
    replace_dir(&partial, &out.join("last"))?;
    Ok(())
}

fn read_records(path: &Path, keep: usize) -> Result<Vec<EpochRecord>> {
    if keep == 0 || !path.exists() {
        return Ok(Vec::new());
    }
    // Only the records of the epochs the checkpoint holds; lines past them are replaced.
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let kept: String = text.lines().take(keep).map(|l| format!("{l}\n")).collect();
    Ok(EpochRecord::parse_jsonl(path, &kept)?)
}

fn write_records(path: &Path, records: &[EpochRecord]) -> Result<()> {
    let text = EpochRecord::to_jsonl(records);
    write_atomic(path, text.as_bytes()).map_err(io_err(path))
}

fn progress_bar(show: bool, len: u64, epoch: usize, epochs: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} batches {per_sec} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{}/{}", epoch + 1, epochs));
    bar
}
