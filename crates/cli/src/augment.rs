//! `distill augment`: teacher-ready transfer sentences (Tang et al. 2019) written to a TSV.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use distill_data::Augmenter;
use distill_teacher::{similar_words, HeadInit, LoadOptions, Teacher};

use crate::task::TaskArgs;

#[derive(Args, Debug)]
pub struct AugmentArgs {
    /// Texts to augment (the training file; pairs are augmented text by text).
    #[arg(long)]
    data: PathBuf,
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
    let data = a.task.read_texts(&a.data)?;
    let mut texts = data.texts();
    texts.extend(data.text_pairs().unwrap_or_default());
    // Only the input embeddings are read: a base model without a head will do.
    let opts = LoadOptions {
        head: HeadInit::Random,
        ..LoadOptions::default()
    };
    let teacher = Teacher::load(&a.teacher, &opts, &candle_core::Device::Cpu)
        .with_context(|| format!("loading teacher {}", a.teacher))?;
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
    let samples = aug.augment_dataset(&data, &subs);
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
