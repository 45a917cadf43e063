//! `distill augment`: teacher-ready transfer sentences (Tang et al. 2019) written to a TSV.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use distill_data::{Augmenter, Dataset, LabelSet, ValSplit};
use distill_teacher::{similar_words, HeadInit, LoadOptions, Teacher};

use crate::task::TaskArgs;

#[derive(Args, Debug)]
pub struct AugmentArgs {
    /// Texts to augment (the training file; pairs are augmented text by text).
    #[arg(long)]
    data: PathBuf,
    /// Share of DATA left out: the part `distill student train` holds out for validation
    /// with the same `--val-share` and `--split-seed` (stratified by label; labels read as
    /// the student reads them), so that no augmented copy of a validation sentence trains
    /// the student. 0 augments every row.
    #[arg(long, default_value_t = 0.2)]
    val_share: f64,
    /// Seed of the validation split (the student's `--split-seed`).
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// How the student draws it (the student's `--val-split`).
    #[arg(long, value_enum, default_value = "rows")]
    val_split: ValSplit,
    #[command(flatten)]
    task: TaskArgs,
    /// Output TSV (header `sentence`, or `sentence1<TAB>sentence2` for pairs), one
    /// augmented example per row, unlabelled.
    #[arg(long)]
    out: PathBuf,
    /// Teacher (hub id or folder) whose input embeddings choose swap words.
    #[arg(long)]
    teacher: String,
    /// Samples drawn per sentence (n_iter).
    #[arg(long, default_value_t = 20)]
    augment_factor: usize,
    /// Swap candidates per word.
    #[arg(long, default_value_t = 10)]
    neighbours: usize,
    #[arg(long, default_value_t = 0.1)]
    p_mask: f64,
    #[arg(long, default_value_t = 0.1)]
    p_swap: f64,
    #[arg(long, default_value_t = 0.25)]
    p_ngram: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn augment(a: AugmentArgs) -> Result<()> {
    let started = Instant::now();
    if !(0.0..1.0).contains(&a.val_share) {
        bail!("--val-share {}: must be in [0, 1)", a.val_share);
    }
    // Only the input embeddings are read: a base model without a head will do.
    let opts = LoadOptions {
        head: HeadInit::Random,
        ..LoadOptions::default()
    };
    let teacher = Teacher::load(&a.teacher, &opts, &candle_core::Device::Cpu)
        .with_context(|| format!("loading teacher {}", a.teacher))?;
    let (data, held_out) = student_split(&a, &teacher)?;
    let mut texts = data.texts();
    texts.extend(data.text_pairs().unwrap_or_default());
    let words = distill_data::distinct_words(&texts);
    let subs = similar_words(&teacher, &words, a.neighbours)
        .with_context(|| format!("--neighbours {}", a.neighbours))?;
    tracing::info!(
        "{} of {} words have swap candidates",
        subs.len(),
        words.len()
    );
    let aug = Augmenter {
        p_mask: a.p_mask,
        p_swap: a.p_swap,
        p_ngram: a.p_ngram,
        n_iter: a.augment_factor,
        seed: a.seed,
        ..Augmenter::default()
    };
    let samples = aug.augment_dataset_avoiding(&data, &subs, &held_out);
    samples
        .write_tsv(&a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "{} augmented examples from {} ({:.1}s) -> {}",
        samples.len(),
        data.len(),
        started.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}

/// `--data` as (the student's training part, its validation part): the file read with the
/// labels a distilled student reads it with, since the split is stratified by label id.
fn student_split(a: &AugmentArgs, teacher: &Teacher) -> Result<(Dataset, Dataset)> {
    if a.val_share == 0.0 {
        return Ok((a.task.read_texts(&a.data)?, Dataset::default()));
    }
    let spec = a.task.spec();
    let file_labels = Dataset::label_set_of(&a.data, &spec).ok();
    let labels = LabelSet::for_distillation(file_labels, LabelSet::new(teacher.labels().to_vec()));
    let data = Dataset::read_with(&a.data, &spec, &labels)?;
    let (train_rows, val_rows) = a.val_split.indices(&data, a.val_share, a.split_seed);
    tracing::info!(
        "augmenting the student's {} training rows; its {} validation rows (--val-share {}) are left out",
        train_rows.len(),
        val_rows.len(),
        a.val_share
    );
    Ok((data.subset(&train_rows), data.subset(&val_rows)))
}
