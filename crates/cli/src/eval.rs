//! `distill eval` and `distill predict`: a trained student on a labelled file or on text.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::Device;
use clap::Args;
use distill_data::eval::{metrics_text, write_scores, EvalRecord};
use distill_student::{Predictor, StudentModel};
use serde::Serialize;

use crate::task::TaskArgs;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Student model folder (config.json, vocab.json, model.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// Labelled file (TSV, CSV or JSON lines; see the task flags); its labels must be the
    /// model's (config.json id2label).
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    task: TaskArgs,
    /// Print JSON instead of a table (keys: labels, n, acc, ap, f1, macro_f1, classes,
    /// class_ap, confusion; see `distill_data::EvalRecord`).
    #[arg(long)]
    json: bool,
    /// Also write the class probabilities of every sentence to this file, one line per
    /// sentence in input order, tab-separated in label order (for precision–recall curves).
    #[arg(long)]
    scores: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Student model folder.
    #[arg(long)]
    model: PathBuf,
    /// Texts to classify; without any, one per line from stdin. A pair model reads each
    /// as `first<TAB>second`; any model also reads a JSON object per line, with the text
    /// under `text` (or `sentence`, `sentence1`, `question`) and a pair's second text under
    /// `text_pair` (or `sentence2`, `answer`).
    text: Vec<String>,
}

/// Loads a student for serving.
pub fn load_predictor(dir: &Path) -> Result<Predictor> {
    let model = StudentModel::load(dir, &Device::Cpu)
        .with_context(|| format!("loading student {}", dir.display()))?;
    Ok(Predictor::new(&model)?)
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let predictor = load_predictor(&a.model)?;
    let labels = predictor.labels().clone();
    let data = a.task.read_labelled(&a.data, &labels, "evaluation")?;
    let (m, p) = predictor
        .evaluate(&data)
        .with_context(|| format!("scoring {} on {}", a.model.display(), a.data.display()))?;
    if let Some(path) = &a.scores {
        write_scores(path, &p)?;
    }
    if a.json {
        println!("{}", serde_json::to_string(&EvalRecord::new(&labels, m))?);
    } else {
        print!("{}", metrics_text(&m, &labels));
    }
    Ok(())
}

/// One answer of `distill predict`.
#[derive(Serialize)]
struct Line<'a> {
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text_pair: Option<&'a str>,
    /// The predicted label's name.
    label: &'a str,
    /// Its probability.
    probability: f32,
    /// The probability of every label, by name, in label order.
    probabilities: Probabilities<'a>,
}

/// Label name → probability, serialised as a JSON object in label order.
struct Probabilities<'a>(Vec<(&'a str, f32)>);

impl Serialize for Probabilities<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A line of input: a JSON object with the text (and pair) under known keys, or plain text,
/// which a pair model splits at its first tab.
fn parse_input(line: &str, pair: bool) -> std::result::Result<(String, Option<String>), String> {
    if line.trim_start().starts_with('{') {
        if let Ok(serde_json::Value::Object(o)) = serde_json::from_str(line) {
            let get = |keys: &[&str]| {
                keys.iter()
                    .find_map(|k| o.get(*k).and_then(|v| v.as_str()).map(str::to_string))
            };
            let text = get(&["text", "sentence", "sentence1", "question"])
                .ok_or("the JSON object has no `text` (or `sentence`, `sentence1`, `question`)")?;
            let second = get(&["text_pair", "sentence2", "answer"]);
            if pair && second.is_none() {
                return Err("a pair model needs the second text under `text_pair` (or \
                            `sentence2`, `answer`)"
                    .into());
            }
            return Ok((text, second.filter(|_| pair)));
        }
    }
    if !pair {
        return Ok((line.to_string(), None));
    }
    match line.split_once('\t') {
        Some((a, b)) => Ok((a.to_string(), Some(b.to_string()))),
        None => Err("a pair model reads `first<TAB>second` or a JSON object; found no tab".into()),
    }
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

/// Writes the prediction for an input line as one JSON line, or an error object (and
/// returns false) when the line cannot be read as the model's input.
fn answer(out: &mut impl Write, predictor: &Predictor, number: usize, line: &str) -> Result<bool> {
    let (text, second) = match parse_input(line, predictor.is_pair()) {
        Ok(input) => input,
        Err(error) => {
            let e = LineError {
                line: number,
                error: format!("line {number}: {error}"),
            };
            writeln!(out, "{}", serde_json::to_string(&e)?)?;
            return Ok(false);
        }
    };
    let p = match &second {
        Some(b) => predictor.predict_pair(&text, b)?,
        None => predictor.predict(&text),
    };
    let labels = predictor.labels();
    let line = Line {
        text: &text,
        text_pair: second.as_deref(),
        label: &p.label_name,
        probability: p.probability,
        probabilities: Probabilities(
            labels
                .names()
                .iter()
                .map(String::as_str)
                .zip(p.probabilities.iter().copied())
                .collect(),
        ),
    };
    writeln!(out, "{}", serde_json::to_string(&line)?)?;
    Ok(true)
}

pub fn predict(a: PredictArgs) -> Result<()> {
    let predictor = load_predictor(&a.model)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if !a.text.is_empty() {
        let mut failed = Vec::new();
        for (i, t) in a.text.iter().enumerate() {
            if !answer(&mut out, &predictor, i + 1, t)? {
                failed.push((i + 1).to_string());
            }
        }
        out.flush()?;
        anyhow::ensure!(
            failed.is_empty(),
            "argument(s) {} could not be read; each got an error object on stdout",
            failed.join(", ")
        );
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
            Ok(text) => {
                if !answer(&mut out, &predictor, number, text)? {
                    failed.push(number.to_string());
                }
            }
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
