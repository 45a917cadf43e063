//! `distill bench`: the numbers the README reports — training time per epoch, inference
//! throughput and single-sentence latency of a student on this machine (batched and per
//! sentence, and beside PyTorch with `--compare-pytorch`). The harness is
//! [`distill_student::bench`]; this file parses flags and prints.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use candle_core::Device;
use clap::Args;
use distill_student::bench::{table, time_serving, PyTorchBench, Serving, Torch};
use distill_student::StudentModel;
use distill_trainer::StudentRun;
use serde::Serialize;

use crate::student::ArchitectureArgs;
use crate::task::TaskArgs;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Student model folder to time inference of.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Sentences (or pairs) to time inference over (e.g. SST-2 dev).
    #[arg(long, default_value = "assets/sst2/dev.tsv")]
    data: PathBuf,
    #[command(flatten)]
    task: TaskArgs,
    /// Also time training epochs of the student (`--preset` and its size flags) on this
    /// file (80% split).
    #[arg(long)]
    train: Option<PathBuf>,
    /// Training epochs to time.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    #[command(flatten)]
    architecture: ArchitectureArgs,
    /// Training step: fused, candle or auto (fused on the CPU).
    #[arg(long, default_value_t = distill_trainer::Engine::Auto)]
    engine: distill_trainer::Engine,
    /// Passes over --data for the throughput figure.
    #[arg(long, default_value_t = 20)]
    repeat: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    compare: CompareArgs,
}

/// The PyTorch side of `distill bench`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Also time PyTorch's student of the same sizes on the same data with this Python
    /// (one with torch installed), and print both sides with their ratios.
    #[arg(long, value_name = "PYTHON")]
    compare_pytorch: Option<PathBuf>,
    /// The PyTorch timing script (`--compare-pytorch`).
    #[arg(long, default_value = "scripts/bench/torch_student_bench.py")]
    torch_script: PathBuf,
    /// PyTorch's threads (`torch.set_num_threads`); 2 is both cores of the project's machine.
    #[arg(long, default_value_t = 2)]
    torch_threads: usize,
}

impl CompareArgs {
    fn bench(&self) -> Option<PyTorchBench> {
        self.compare_pytorch.as_ref().map(|python| PyTorchBench {
            python: python.clone(),
            script: self.torch_script.clone(),
            threads: self.torch_threads,
        })
    }
}

#[derive(Serialize, Default)]
struct Report {
    epoch_seconds: Option<Vec<f64>>,
    #[serde(flatten)]
    inference: Option<Serving>,
    pytorch: Option<Torch>,
}

/// Times serving of the student in `model` over the texts of `data`.
fn time_model(model: &Path, data: &Path, task: &TaskArgs, repeat: usize) -> Result<Serving> {
    let student = StudentModel::load(model, &Device::Cpu)
        .with_context(|| format!("loading student {}", model.display()))?;
    let data_set = task.read_texts(data)?;
    let kind = |pair: bool| {
        if pair {
            "sentence pairs"
        } else {
            "single texts"
        }
    };
    ensure!(
        data_set.is_pairs() == student.config.pair,
        "{}: the model reads {} but the data has {}",
        data.display(),
        kind(student.config.pair),
        kind(data_set.is_pairs()),
    );
    ensure!(repeat > 0, "--repeat must be at least 1");
    let texts = data_set.texts();
    let seconds: Vec<&str> = data_set.text_pairs().unwrap_or_default();
    Ok(time_serving(&student, &texts, &seconds, repeat)?)
}

pub fn bench(a: BenchArgs) -> Result<()> {
    let mut report = Report::default();
    if let Some(train) = &a.train {
        let dir = std::env::temp_dir().join(format!("distill-bench-{}", std::process::id()));
        let mut run = StudentRun::new(train.clone(), dir.clone());
        run.task = a.task.spec();
        run.train.epochs = a.epochs;
        run.train.progress = false;
        run.train.engine = a.engine;
        run.preset = a.architecture.preset()?;
        let outcome = run.run(&Device::Cpu).context("timing training")?;
        let _ = std::fs::remove_dir_all(&dir);
        report.epoch_seconds = Some(outcome.records.iter().map(|r| r.epoch_seconds).collect());
    }
    if let Some(model) = &a.model {
        report.inference = Some(time_model(model, &a.data, &a.task, a.repeat)?);
    }
    if let Some(torch) = a.compare.bench() {
        let Some(inference) = &report.inference else {
            anyhow::bail!("--compare-pytorch compares a student's serving: give --model");
        };
        // PyTorch trains on --train when we time training too; else it only serves (its
        // vocabulary then comes from --data).
        let (train, epochs) = match &a.train {
            Some(t) => (t.as_path(), a.epochs),
            None => (a.data.as_path(), 0),
        };
        report.pytorch = Some(
            torch
                .run(
                    train,
                    &a.data,
                    epochs,
                    (
                        inference.embedding_dim,
                        inference.hidden_size,
                        inference.num_layers,
                    ),
                )
                .context("timing PyTorch (--compare-pytorch PYTHON, --torch-script SCRIPT)")?,
        );
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        if let Some(e) = &report.epoch_seconds {
            println!(
                "training seconds per epoch ({} preset{}, batch 32, {} engine): {e:.3?}",
                a.architecture.preset,
                a.architecture.changed_sizes()?,
                a.engine
            );
        }
        if let Some(i) = &report.inference {
            // PyTorch trains a student of the model's sizes: our epoch goes beside it only
            // when --preset and the size flags timed the same sizes.
            let p = a.architecture.preset()?;
            let epoch = report
                .epoch_seconds
                .as_ref()
                .filter(|_| {
                    (i.embedding_dim, i.hidden_size, i.num_layers)
                        == (p.embedding_dim, p.hidden_size, p.num_layers)
                })
                .and_then(|e| e.iter().copied().reduce(f64::min));
            print!("{}", table(i, report.pytorch.as_ref(), epoch));
            println!(
                "single-sentence latency, token ids in: p99 {:.2} µs",
                i.latency_us_p99
            );
        }
    }
    Ok(())
}
