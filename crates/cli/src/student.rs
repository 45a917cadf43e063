//! `distill student train`: a thin wrapper over [`distill_trainer::StudentRun`].

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use distill_data::{LabelSet, ValSplit};
use distill_student::StudentPreset;
use distill_teacher::TeacherSource;
use distill_trainer::{Augmentation, Engine, InitEmbeddings, Loss, StudentRun};

use crate::task::{parse_labels, TaskArgs};

/// Student subcommands.
#[derive(Subcommand, Debug)]
pub enum StudentCommand {
    /// Train a BiLSTM student (baseline on labels, or distilled from teacher logits).
    Train(TrainArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Mode {
    Baseline,
    Distill,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LossKind {
    Ce,
    Bce,
    Distill,
    WeightedMse,
    Kl,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training file (TSV, CSV or JSON lines; see the task flags). Rows with an empty
    /// label are unlabelled: they train on the teacher term alone (distillation only).
    #[arg(long)]
    train: PathBuf,
    #[command(flatten)]
    task: TaskArgs,
    /// Label names in id order, comma-separated [default: the teacher logits' labels, or
    /// the training file's: numbers in numeric order, other names sorted].
    #[arg(long, value_parser = parse_labels)]
    labels: Option<LabelSet>,
    /// Run folder: metrics.jsonl, best/, last/.
    #[arg(long)]
    out: PathBuf,
    /// baseline (labels only) or distill (needs --logits).
    #[arg(long, value_enum, default_value = "baseline")]
    mode: Mode,
    /// Loss; defaults to ce for baseline and distill for distill mode.
    #[arg(long, value_enum)]
    loss: Option<LossKind>,
    /// Teacher logits over --train (from `distill teacher label`).
    #[arg(long)]
    logits: Option<PathBuf>,
    /// Transfer text: augmented sentences (from `distill augment`) or unlabelled in-domain
    /// text, in the task's columns; needs --transfer-logits.
    #[arg(long, alias = "augment", requires = "transfer_logits")]
    transfer: Option<PathBuf>,
    /// Teacher logits over --transfer (from `distill teacher label`).
    #[arg(long, alias = "augment-logits")]
    transfer_logits: Option<PathBuf>,
    /// Weight of the hard-label term.
    #[arg(long, default_value_t = 0.5, value_parser = finite)]
    alpha: f64,
    /// Temperature of the kl loss.
    #[arg(long, default_value_t = 2.0, value_parser = finite)]
    temperature: f64,
    /// Exponent of the weighted-mse weights.
    #[arg(long, default_value_t = 1.5, value_parser = finite)]
    k: f64,
    #[command(flatten)]
    architecture: ArchitectureArgs,
    /// Dropout before the head [default: the preset's].
    #[arg(long, value_parser = finite)]
    dropout: Option<f64>,
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 1e-3, value_parser = finite)]
    lr: f64,
    /// StepLR decay per epoch.
    #[arg(long, default_value_t = 0.9, value_parser = finite)]
    gamma: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Share of --train held out for validation (stratified; `distill augment` leaves out
    /// the same rows given the same --val-share, --val-split and --split-seed).
    #[arg(long, default_value_t = 0.2, value_parser = finite)]
    val_share: f64,
    /// Seed of the validation split.
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// `rows`: validation rows drawn one by one; `sentences`: whole sentences, each with
    /// every row that is a word span of it (SST-2 lists each parse-tree phrase as a row), so
    /// that validation holds no phrase of a training row.
    #[arg(long, value_enum, default_value = "rows")]
    val_split: ValSplit,
    /// Skip the original word normalisation (punctuation, numbers, stemming).
    #[arg(long)]
    no_normalize: bool,
    #[arg(long, default_value_t = 10_000)]
    max_vocab: usize,
    #[arg(long, default_value_t = 1)]
    min_freq: usize,
    /// What the student reads: `words` (the normalised word vocabulary) or `teacher`
    /// (the teacher's WordPiece tokens; needs --teacher).
    #[arg(long, value_enum, default_value = "words")]
    tokenizer: Source,
    /// Initial embeddings: `random` (N(0, 1)) or `teacher` (the teacher's word embeddings
    /// reduced by PCA; needs --teacher).
    #[arg(long, value_enum, default_value = "random")]
    init_embeddings: Init,
    /// Teacher (folder or hub id) for --tokenizer/--init-embeddings.
    #[arg(long)]
    teacher: Option<String>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Training step: `fused` (hand-written, CPU only), `candle` (tensor graph, any
    /// device) or `auto` (fused on the CPU). A run may resume on the other engine.
    #[arg(long, default_value_t = Engine::Auto)]
    engine: Engine,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Source {
    Words,
    Teacher,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Init {
    Random,
    Teacher,
}

/// Parses a float flag, refusing NaN and ±inf (which Rust's parser accepts).
fn finite(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => Err(format!("{v} is not a finite number")),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs a student subcommand.
pub fn run(cmd: StudentCommand) -> Result<()> {
    match cmd {
        StudentCommand::Train(args) => train(args),
    }
}

fn train(a: TrainArgs) -> Result<()> {
    let device = crate::device::parse(&a.device)?;
    let kind = a.loss.unwrap_or(match a.mode {
        Mode::Baseline => LossKind::Ce,
        Mode::Distill => LossKind::Distill,
    });
    let loss = match kind {
        LossKind::Ce => Loss::Ce,
        LossKind::Bce => Loss::Bce,
        LossKind::Distill => Loss::Distill { alpha: a.alpha },
        LossKind::WeightedMse => Loss::WeightedMse {
            alpha: a.alpha,
            k: a.k,
        },
        LossKind::Kl => Loss::Kl {
            alpha: a.alpha,
            temperature: a.temperature,
        },
    };
    let mut run = StudentRun::new(a.train.clone(), a.out.clone());
    run.preset = a.architecture.preset()?;
    if let Some(p) = a.dropout {
        run.preset.dropout = p as f32;
    }
    run.val_share = a.val_share;
    run.split_seed = a.split_seed;
    run.val_split = a.val_split;
    run.normalize = !a.no_normalize;
    run.max_vocab = a.max_vocab;
    run.min_freq = a.min_freq;
    run.logits = if loss.needs_teacher() {
        a.logits.clone()
    } else {
        None
    };
    run.task = a.task.spec();
    run.labels = a.labels.clone();
    run.augment = match (a.transfer, a.transfer_logits) {
        (Some(data), Some(logits)) => Some(Augmentation { data, logits }),
        _ => None,
    };
    let teacher = || {
        a.teacher.clone().context(
            "--tokenizer teacher and --init-embeddings teacher need --teacher (a teacher folder or hub id)",
        )
    };
    if a.tokenizer == Source::Teacher {
        let teacher = teacher()?;
        let source = TeacherSource::resolve(&teacher)
            .with_context(|| format!("finding teacher {teacher}"))?;
        run.wordpiece = Some(source.dir().join("tokenizer.json"));
    }
    if a.init_embeddings == Init::Teacher {
        let teacher = teacher()?;
        let id = teacher.clone();
        run.init_embeddings = Some(InitEmbeddings::new(teacher, move |vocab, dim| {
            Ok(distill_teacher::student_embeddings(&id, vocab, dim)?)
        }));
    }
    run.train.epochs = a.epochs;
    run.train.batch_size = a.batch_size;
    run.train.lr = a.lr;
    run.train.gamma = a.gamma;
    run.train.seed = a.seed;
    run.train.loss = loss;
    run.train.progress = !a.quiet;
    run.train.engine = a.engine;
    run.validate().context("invalid setting")?;
    if loss.needs_teacher() && a.logits.is_none() {
        anyhow::bail!("--loss {kind:?} needs teacher logits: pass --logits FILE (from `distill teacher label`)");
    }
    let outcome = run.run(&device).with_context(|| {
        format!(
            "training a student from {} into {}",
            a.train.display(),
            a.out.display()
        )
    })?;
    if let Some(best) = outcome
        .records
        .iter()
        .find(|r| r.epoch == outcome.best_epoch)
    {
        println!(
            "best epoch {}: val loss {:.4}, acc {:.4}, ap {:.4}, f1 {:.4} -> {}",
            best.epoch,
            best.val_loss,
            best.val_acc,
            best.val_ap,
            best.val_f1,
            a.out.join("best").display()
        );
    }
    Ok(())
}

/// A student's architecture: `--preset` and the sizes that replace the preset's
/// (`student train`, `bench --train`).
#[derive(Args, Debug)]
pub struct ArchitectureArgs {
    /// Architecture preset: original or large.
    #[arg(long, default_value = "original")]
    pub preset: String,
    /// Embedding size [default: the preset's].
    #[arg(long)]
    pub embedding_dim: Option<usize>,
    /// LSTM hidden size per direction [default: the preset's].
    #[arg(long)]
    pub hidden_size: Option<usize>,
    /// Stacked BiLSTM layers [default: the preset's].
    #[arg(long)]
    pub num_layers: Option<usize>,
}

impl ArchitectureArgs {
    /// The preset with the size flags applied (dropout stays the preset's).
    pub fn preset(&self) -> Result<StudentPreset> {
        let mut preset = StudentPreset::by_name(&self.preset)?;
        if let Some(n) = self.embedding_dim {
            preset.embedding_dim = n;
        }
        if let Some(n) = self.hidden_size {
            preset.hidden_size = n;
        }
        if let Some(n) = self.num_layers {
            preset.num_layers = n;
        }
        Ok(preset)
    }

    /// `, E/H, N layers` for the sizes a flag changed; empty when none did.
    pub fn changed_sizes(&self) -> Result<String> {
        let p = self.preset()?;
        let mut out = String::new();
        if self.embedding_dim.is_some() || self.hidden_size.is_some() {
            out += &format!(", {}/{}", p.embedding_dim, p.hidden_size);
        }
        if let Some(n) = self.num_layers {
            out += &format!(", {n} layers");
        }
        Ok(out)
    }
}
