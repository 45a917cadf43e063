//! `distill eval` and `distill predict`: a trained student on a labelled file or on text.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::Device;
use clap::Args;
use distill_data::{Dataset, LabelSet, Metrics};
use distill_student::{Predictor, StudentModel};
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
        .map(|l| predictor.prediction(l))
        .collect();
    let p: Vec<f32> = preds.iter().map(|p| p.probabilities[1]).collect();
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

/// The answer to a stdin line that cannot be classified.
#[derive(Serialize)]
struct LineError {
    /// 1-based line number on stdin.
    line: usize,
    error: String,
}

/// One stdin line without its line end, as text, or why it is not text.
fn stdin_line(bytes: &[u8]) -> std::result::Result<&str, String> {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "not valid UTF-8 (invalid byte at column {})",
            e.valid_up_to() + 1
        )
    })
}

/// Writes the prediction for `text` as one JSON line.
fn answer(out: &mut impl Write, predictor: &Predictor, text: &str) -> Result<()> {
    let p = predictor.predict(text);
    let labels = LabelSet::binary();
    let line = Line {
        text,
        label: labels.name(p.label).unwrap_or("?"),
        probability: p.probability,
        p_positive: p.probabilities[1],
    };
    writeln!(out, "{}", serde_json::to_string(&line)?)?;
    Ok(())
}

pub fn predict(a: PredictArgs) -> Result<()> {
    let predictor = load_predictor(&a.model)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if !a.text.is_empty() {
        for t in &a.text {
            answer(&mut out, &predictor, t)?;
        }
        out.flush()?;
        return Ok(());
    }
    // Bytes, not `lines()`: a line that is not UTF-8 gets an error object with its
    // number, and the lines after it are still answered.
    let mut stdin = std::io::stdin().lock();
    let (mut buf, mut number, mut failed) = (Vec::new(), 0, Vec::new());
    loop {
        buf.clear();
        number += 1;
        let n = stdin
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("reading stdin line {number}"))?;
        if n == 0 {
            break;
        }
        match stdin_line(&buf) {
            Ok(text) => answer(&mut out, &predictor, text)?,
            Err(error) => {
                let e = LineError {
                    line: number,
                    error: format!("line {number}: {error}"),
                };
                writeln!(out, "{}", serde_json::to_string(&e)?)?;
                failed.push(number.to_string());
            }
        }
    }
    out.flush()?;
    if !failed.is_empty() {
        let more = if failed.len() > 10 { ", …" } else { "" };
        anyhow::bail!(
            "{} stdin line(s) could not be read (line {}{more}); each got an error object on stdout",
            failed.len(),
            failed[..failed.len().min(10)].join(", "),
        );
    }
    Ok(())
}
