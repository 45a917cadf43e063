//! `distill eval` and `distill predict`: a trained student on a labelled file or on text.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::Device;
use clap::Args;
use distill_data::{Dataset, LabelSet, Metrics};
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
    /// class_ap, confusion; see `EvalRecord`).
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

/// Metrics of `predictor` on `data`, with the class probabilities `[N][C]` of every
/// sentence in input order.
pub fn score(predictor: &Predictor, data: &Dataset) -> Result<(Metrics, Vec<Vec<f32>>)> {
    let gold = data
        .labels()
        .context("evaluation needs a label on every row")?;
    anyhow::ensure!(
        data.is_pairs() == predictor.is_pair(),
        "the model reads {} but the data has {}",
        kind(predictor.is_pair()),
        kind(data.is_pairs())
    );
    let encode =
        |texts: Vec<&str>| -> Vec<Vec<u32>> { texts.iter().map(|t| predictor.encode(t)).collect() };
    let ids = encode(data.texts());
    let logits = match data.text_pairs().filter(|_| predictor.is_pair()) {
        Some(b) => predictor.logits_pair_batch(&ids, &encode(b))?,
        None => predictor.logits_batch(&ids),
    };
    let probs: Vec<Vec<f32>> = logits
        .into_iter()
        .map(|l| predictor.prediction(l).probabilities)
        .collect();
    let classes = probs.first().map_or(predictor.labels().len(), Vec::len);
    if let Some(bad) = gold.iter().find(|&&g| g as usize >= classes) {
        anyhow::bail!("label id {bad} is out of range for a model with {classes} classes");
    }
    Ok((Metrics::compute(&probs.concat(), classes, &gold), probs))
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let predictor = load_predictor(&a.model)?;
    let labels = predictor.labels().clone();
    let data = a.task.read_labelled(&a.data, &labels, "evaluation")?;
    let (m, p) = score(&predictor, &data)
        .with_context(|| format!("scoring {} on {}", a.model.display(), a.data.display()))?;
    if let Some(path) = &a.scores {
        write_scores(path, &p)?;
    }
    if a.json {
        println!("{}", serde_json::to_string(&EvalRecord::new(&labels, &m))?);
    } else {
        print_metrics(&m, &labels);
    }
    Ok(())
}

fn kind(pairs: bool) -> &'static str {
    if pairs {
        "sentence pairs"
    } else {
        "single texts"
    }
}

/// What `distill eval --json` prints, and the first keys of `distill teacher eval --json`:
/// the label names in id order, then the [`Metrics`] (`n`, `acc`, `ap`, `f1`, `macro_f1`,
/// `classes`, `class_ap`, `confusion`), whose per-class entries and confusion rows and
/// columns follow those names.
#[derive(Serialize)]
pub struct EvalRecord<'a> {
    pub labels: Vec<&'a str>,
    #[serde(flatten)]
    pub metrics: &'a Metrics,
}

impl<'a> EvalRecord<'a> {
    /// Names the metrics' classes from `labels`; a class past its end is called by its id.
    pub fn new(labels: &'a LabelSet, metrics: &'a Metrics) -> Self {
        let labels = (0..metrics.num_classes())
            .map(|k| labels.name(k as u32).unwrap_or("?"))
            .collect();
        Self { labels, metrics }
    }
}

/// Writes each sentence's class probabilities as one tab-separated line, in input order,
/// atomically.
pub fn write_scores(path: &Path, probs: &[Vec<f32>]) -> Result<()> {
    let text: String = probs
        .iter()
        .map(|row| {
            let cells: Vec<String> = row.iter().map(f32::to_string).collect();
            cells.join("\t") + "\n"
        })
        .collect();
    distill_data::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// A short human-readable report of metrics, classes named from `labels`.
pub fn print_metrics(m: &Metrics, labels: &LabelSet) {
    print!("{}", metrics_text(m, labels));
}

/// The text of [`print_metrics`].
pub fn metrics_text(m: &Metrics, labels: &LabelSet) -> String {
    let record = EvalRecord::new(labels, m);
    let names = &record.labels;
    let ap = if m.num_classes() == 2 {
        format!("AP of {}", names[1])
    } else {
        "macro one-vs-rest AP".into()
    };
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = format!(
        "n         {}\naccuracy  {:.4}\nmacro-F1  {:.4}\nAP        {:.4} ({ap})\n",
        m.n, m.acc, m.macro_f1, m.ap
    );
    if m.num_classes() == 2 {
        out += &format!("F1        {:.4} (of {})\n", m.f1, names[1]);
    }
    out += &format!(
        "\n{:<width$}  precision  recall      F1  support      AP\n",
        "label"
    );
    for (k, c) in m.classes.iter().enumerate() {
        let ap = m.class_ap[k].map_or("–".into(), |v| format!("{v:.4}"));
        out += &format!(
            "{:<width$}  {:>9.4}  {:>6.4}  {:>6.4}  {:>7}  {:>6}\n",
            names[k], c.precision, c.recall, c.f1, c.support, ap
        );
    }
    out += "\nconfusion (rows gold, columns predicted):\n";
    // Column heads are the names cut to 10 characters.
    let heads: Vec<String> = names.iter().map(|n| abbreviate(n, 10)).collect();
    let cell = m
        .confusion
        .iter()
        .flatten()
        .map(|c| c.to_string().len())
        .chain(heads.iter().map(|h| h.chars().count()))
        .max()
        .unwrap_or(1);
    let head: Vec<String> = heads.iter().map(|h| format!("{h:>cell$}")).collect();
    out += &format!("{:<width$}  {}\n", "", head.join(" "));
    for (name, row) in names.iter().zip(&m.confusion) {
        let cells: Vec<String> = row.iter().map(|c| format!("{c:>cell$}")).collect();
        out += &format!("{name:<width$}  {}\n", cells.join(" "));
    }
    out
}

/// `name` cut to `max` characters, the last one an ellipsis when cut.
fn abbreviate(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        name.to_string()
    } else {
        name.chars().take(max - 1).chain(['…']).collect()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_and_text_name_the_labels() {
        let labels = LabelSet::new(vec![
            "very negative".into(),
            "neutral".into(),
            "positive".into(),
        ]);
        // Predictions 0, 1, 2, 0 against gold 0, 1, 2, 2.
        let probs = [0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.2, 0.3, 0.5, 0.6, 0.3, 0.1];
        let m = Metrics::compute(&probs, 3, &[0, 1, 2, 2]);
        let v = serde_json::to_value(EvalRecord::new(&labels, &m)).unwrap();
        assert_eq!(
            v["labels"],
            serde_json::json!(["very negative", "neutral", "positive"])
        );
        assert_eq!(
            v["confusion"],
            serde_json::json!([[1, 0, 0], [0, 1, 0], [1, 0, 1]])
        );
        for k in ["n", "acc", "ap", "f1", "macro_f1", "classes", "class_ap"] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        let text = metrics_text(&m, &labels);
        assert!(text.contains("macro one-vs-rest AP"), "{text}");
        let last: Vec<&str> = text.lines().last().unwrap().split_whitespace().collect();
        assert_eq!(last, ["positive", "1", "0", "1"], "{text}");
        // Very negative: 1 of 2 predictions right, its one example found.
        let row = text
            .lines()
            .find(|l| l.starts_with("very negative") && l.contains('.'))
            .unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(&cells[2..6], ["0.5000", "1.0000", "0.6667", "1"], "{text}");
    }
}
