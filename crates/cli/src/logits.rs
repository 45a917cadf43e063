//! `distill logits merge|diff`: logit caches labelled in shards, and comparing two caches.

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use clap::Subcommand;
use distill_data::metrics::argmax;
use distill_data::TeacherLogits;

/// The logit-cache subcommands.
#[derive(Subcommand, Debug)]
pub enum LogitsCommand {
    /// Merge the shards of `distill teacher label --shard I/N` into one cache, checking that
    /// they are complete, do not overlap and come from one teacher and one data file.
    Merge {
        /// The merged cache.
        #[arg(long)]
        out: PathBuf,
        /// Every shard file, in any order.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
    },
    /// The largest difference between two caches of the same data (e.g. GPU against CPU);
    /// exits non-zero above --tolerance.
    Diff {
        a: PathBuf,
        b: PathBuf,
        #[arg(long, default_value_t = 1e-3)]
        tolerance: f32,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: LogitsCommand) -> Result<()> {
    match cmd {
        LogitsCommand::Merge { out, shards } => {
            let merged = distill_data::shard::merge_files(&shards)
                .with_context(|| format!("merging {} shards", shards.len()))?;
            merged
                .save(&out)
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "merged {} shards: logits [{}, {}] written to {}",
                shards.len(),
                merged.len(),
                merged.num_labels,
                out.display()
            );
        }
        LogitsCommand::Diff {
            a,
            b,
            tolerance,
            json,
        } => {
            ensure!(tolerance.is_finite(), "--tolerance must be a finite number");
            let (x, y) = (TeacherLogits::load(&a)?, TeacherLogits::load(&b)?);
            ensure!(
                x.meta.data_sha256 == y.meta.data_sha256
                    && x.len() == y.len()
                    && x.num_labels == y.num_labels,
                "{} and {} are not logits of the same data ({} × {} vs {} × {})",
                a.display(),
                b.display(),
                x.len(),
                x.num_labels,
                y.len(),
                y.num_labels
            );
            let max_abs = x
                .logits
                .iter()
                .zip(&y.logits)
                .map(|(p, q)| (p - q).abs())
                .fold(0f32, f32::max);
            let agree = x
                .logits
                .chunks(x.num_labels)
                .zip(y.logits.chunks(y.num_labels))
                .filter(|(p, q)| argmax(p) == argmax(q))
                .count();
            if json {
                println!(
                    "{}",
                    serde_json::json!({"rows": x.len(), "max_abs_diff": max_abs,
                        "argmax_agreement": agree as f64 / x.len().max(1) as f64})
                );
            } else {
                println!(
                    "{} rows: max |Δ| {max_abs:.3e}, same argmax in {agree}",
                    x.len()
                );
            }
            ensure!(
                max_abs <= tolerance,
                "max |Δ| {max_abs:.3e} is above the tolerance {tolerance:e}"
            );
        }
    }
    Ok(())
}
