//! `distill eval` and `distill predict`: a trained student on a labelled file or on text.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::Device;
use clap::Args;
use distill_data::{Dataset, LabelSet, Metrics};
use distill_student::{prediction, Predictor, StudentModel};
use serde::Serialize;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Student model folder (config.json, vocab.json, model.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// Labelled file (TSV or CSV).
    #[arg(long)]
    data: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write P(label 1) of every sentence to this file, one per line in input order
    /// (for precision–recall curves).
    #[arg(long)]
    scores: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Student model folder.
    #[arg(long)]
    model: PathBuf,
    /// Sentences to classify; without any, one per line from stdin.
    text: Vec<String>,
}

/// Loads a student for serving.
pub fn load_predictor(dir: &Path) -> Result<Predictor> {
    let model = StudentModel::load(dir, &Device::Cpu)
        .with_context(|| format!("loading student {}", dir.display()))?;
    Ok(Predictor::new(&model)?)
}

/// Metrics of `predictor` on `data`, with P(label 1) per sentence in input order.
pub fn score(predictor: &Predictor, data: &Dataset) -> Result<(Metrics, Vec<f32>)> {
    let gold = data
        .labels()
        .context("evaluation needs a label on every row")?;
    let ids: Vec<Vec<u32>> = data.texts().iter().map(|t| predictor.encode(t)).collect();
    let preds: Vec<_> = predictor
        .logits_batch(&ids)
        .into_iter()
        .map(prediction)
        .collect();
    let p: Vec<f32> = preds.iter().map(|p| p.p_positive).collect();
    let labels: Vec<u32> = preds.iter().map(|p| p.label).collect();
    Ok((Metrics::compute(&p, &labels, &gold), p))
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let predictor = load_predictor(&a.model)?;
    let data = Dataset::read(&a.data, &LabelSet::binary())?;
    let (m, p) = score(&predictor, &data)?;
    if let Some(path) = &a.scores {
        write_scores(path, &p)?;
    }
    if a.json {
        println!("{}", serde_json::to_string(&m)?);
    } else {
        print_metrics(&m);
    }
    Ok(())
}

/// Writes one score per line, in input order, atomically.
pub fn write_scores(path: &Path, scores: &[f32]) -> Result<()> {
    let text: String = scores.iter().map(|s| format!("{s}\n")).collect();
    distill_data::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// A short human-readable report of metrics.
pub fn print_metrics(m: &Metrics) {
    println!("n     {}", m.n);
    println!("acc   {:.4}", m.acc);
    println!("ap    {:.4}", m.ap);
    println!("f1    {:.4}", m.f1);
    println!("confusion (rows gold 0/1, columns predicted 0/1):");
    for row in &m.confusion {
        println!("  {:>6} {:>6}", row[0], row[1]);
    }
}

#[derive(Serialize)]
struct Line<'a> {
    text: &'a str,
    label: &'a str,
    probability: f32,
    p_positive: f32,
}

pub fn predict(a: PredictArgs) -> Result<()> {
    let predictor = load_predictor(&a.model)?;
    let labels = LabelSet::binary();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut emit = |text: &str| -> Result<()> {
        let p = predictor.predict(text);
        let label = labels.name(p.label).unwrap_or("?");
        let line = Line {
            text,
            label,
            probability: p.probability,
            p_positive: p.p_positive,
        };
        writeln!(out, "{}", serde_json::to_string(&line)?)?;
        Ok(())
    };
    if a.text.is_empty() {
        for line in std::io::stdin().lock().lines() {
            emit(&line.context("reading stdin")?)?;
        }
    } else {
        for t in &a.text {
            emit(t)?;
        }
    }
    out.flush()?;
    Ok(())
}
