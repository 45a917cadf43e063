//! `distill bench`: the numbers the README reports — training time per epoch, inference
//! throughput and single-sentence latency of a student on this machine.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use clap::Args;
use distill_trainer::StudentRun;
use serde::Serialize;

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
    /// Also time training epochs of the original preset on this file (80% split).
    #[arg(long)]
    train: Option<PathBuf>,
    /// Training epochs to time.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Student preset to time training of: original or large.
    #[arg(long, default_value = "original")]
    preset: String,
    /// Training step: fused, candle or auto (fused on the CPU).
    #[arg(long, default_value_t = distill_trainer::Engine::Auto)]
    engine: distill_trainer::Engine,
    /// Passes over --data for the throughput figure.
    #[arg(long, default_value_t = 20)]
    repeat: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize, Default)]
struct Report {
    epoch_seconds: Option<Vec<f64>>,
    sentences: usize,
    model_sentences_per_second: Option<f64>,
    text_sentences_per_second: Option<f64>,
    latency_us_median: Option<f64>,
    latency_us_p99: Option<f64>,
    text_latency_us_median: Option<f64>,
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
        run.preset = distill_student::StudentPreset::by_name(&a.preset)?;
        let outcome = run.run(&Device::Cpu).context("timing training")?;
        let _ = std::fs::remove_dir_all(&dir);
        report.epoch_seconds = Some(outcome.records.iter().map(|r| r.epoch_seconds).collect());
    }
    if let Some(model) = &a.model {
        use rayon::prelude::*;
        let predictor = crate::eval::load_predictor(model)?;
        let data = a.task.read_texts(&a.data)?;
        anyhow::ensure!(
            data.is_pairs() == predictor.is_pair(),
            "{}: the model reads {} but the data has {}",
            a.data.display(),
            if predictor.is_pair() {
                "sentence pairs"
            } else {
                "single texts"
            },
            if data.is_pairs() {
                "sentence pairs"
            } else {
                "single texts"
            },
        );
        let texts = data.texts();
        // A pair's second texts (empty for single-text data, and then unused).
        let seconds: Vec<&str> = data.text_pairs().unwrap_or_default();
        let ids: Vec<Vec<u32>> = texts.iter().map(|t| predictor.encode(t)).collect();
        let ids_b: Vec<Vec<u32>> = seconds.iter().map(|t| predictor.encode(t)).collect();
        report.sentences = ids.len();
        let pair = predictor.is_pair();
        let batch = || -> Result<Vec<Vec<f32>>> {
            Ok(if pair {
                predictor.logits_pair_batch(&ids, &ids_b)?
            } else {
                predictor.logits_batch(&ids)
            })
        };
        let one = |i: usize| -> Result<Vec<f32>> {
            Ok(if pair {
                predictor.logits_pair(&ids[i], &ids_b[i])?
            } else {
                predictor.logits(&ids[i])
            })
        };
        let from_text = |i: usize| -> Result<distill_student::Prediction> {
            Ok(if pair {
                predictor.predict_pair(texts[i], seconds[i])?
            } else {
                predictor.predict(texts[i])
            })
        };

        let _ = batch()?; // warm-up
        let start = Instant::now();
        for _ in 0..a.repeat {
            std::hint::black_box(batch()?);
        }
        report.model_sentences_per_second =
            Some((a.repeat * ids.len()) as f64 / start.elapsed().as_secs_f64());

        let start = Instant::now();
        for _ in 0..a.repeat {
            let out: Vec<_> = (0..texts.len())
                .into_par_iter()
                .map(from_text)
                .collect::<Result<_>>()?;
            std::hint::black_box(out);
        }
        report.text_sentences_per_second =
            Some((a.repeat * ids.len()) as f64 / start.elapsed().as_secs_f64());

        let mut lat = Vec::with_capacity(ids.len() * 5);
        for _ in 0..5 {
            for i in 0..ids.len() {
                let t = Instant::now();
                std::hint::black_box(one(i)?);
                lat.push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
        lat.sort_by(f64::total_cmp);
        report.latency_us_median = Some(lat[lat.len() / 2]);
        report.latency_us_p99 = Some(lat[lat.len() * 99 / 100]);
        let mut tl = Vec::with_capacity(texts.len());
        for i in 0..texts.len() {
            let s = Instant::now();
            std::hint::black_box(from_text(i)?);
            tl.push(s.elapsed().as_secs_f64() * 1e6);
        }
        tl.sort_by(f64::total_cmp);
        report.text_latency_us_median = Some(tl[tl.len() / 2]);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        if let Some(e) = &report.epoch_seconds {
            println!(
                "training seconds per epoch ({} preset, batch 32, {} engine): {e:.3?}",
                a.preset, a.engine
            );
        }
        if let Some(v) = report.model_sentences_per_second {
            println!(
                "throughput over {} sentences, token ids in: {v:.0} sentences/s",
                report.sentences
            );
        }
        if let Some(v) = report.text_sentences_per_second {
            println!("throughput, raw text in (normalise + encode + predict): {v:.0} sentences/s");
        }
        if let (Some(m), Some(p)) = (report.latency_us_median, report.latency_us_p99) {
            println!("single-sentence latency, token ids in: median {m:.2} µs, p99 {p:.2} µs");
        }
        if let Some(m) = report.text_latency_us_median {
            println!("single-sentence latency, raw text in: median {m:.2} µs");
        }
    }
    Ok(())
}
