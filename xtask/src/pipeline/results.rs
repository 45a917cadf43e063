//! The numbers behind the report, gathered from the run folder: per model its dev metrics (`eval/<model>.json`; per-label
//! precision, recall, F1 and support are recomputed from its confusion matrix), class
//! probabilities per sentence (`eval/<model>.scores`), CPU timing
//! (`bench/<model>.json`, the teacher's in its eval JSON), training curve
//! (`students/<model>/metrics.jsonl`), parameter count (from the safetensors header) and
//! size on disk.

use std::io::Read;
use std::path::Path;

use anyhow::{ensure, Context, Result};
use distill_data::metrics::{self, class_metrics, ClassMetrics};
use distill_data::{Dataset, LabelSet};
use serde::{Deserialize, Serialize};

use super::layout::{student, Layout};

/// One epoch of `metrics.jsonl`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Epoch {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_acc: f64,
}

/// Everything the report says about one model.
#[derive(Clone, Debug, Serialize)]
pub struct ModelResult {
    pub name: String,
    pub label: String,
    pub teacher: bool,
    /// Dev sentences.
    pub n: usize,
    pub acc: f64,
    /// Two labels: AP of label 1; more: the mean one-vs-rest AP over labels with gold
    /// examples (as `distill eval` reports it).
    pub ap: f64,
    /// Two labels: F1 of label 1; more: macro-F1.
    pub f1: f64,
    /// Mean F1 over the labels that occur among the gold labels or the predictions.
    pub macro_f1: f64,
    /// Per label, in id order, from `confusion`.
    pub classes: Vec<ClassMetrics>,
    /// One-vs-rest AP per label, from the scores; `None` for a label without gold examples.
    pub class_ap: Vec<Option<f64>>,
    /// Rows gold, columns predicted, in label order.
    pub confusion: Vec<Vec<usize>>,
    pub params: u64,
    /// Bytes of the files that make up the model folder.
    pub size_bytes: u64,
    /// Sentences per second on the CPU, raw text in.
    pub throughput: Option<f64>,
    /// Median single-sentence latency on the CPU, raw text in (µs).
    pub latency_us: Option<f64>,
    /// Class probabilities per dev sentence, row-major `[n, C]`.
    #[serde(skip)]
    pub scores: Vec<f32>,
    /// Training curve (students).
    #[serde(skip)]
    pub epochs: Vec<Epoch>,
    /// Metrics on the test file, when the run has one.
    pub test: Option<TestResult>,
}

/// A model's metrics on the test file (`eval/test/<model>.json`).
#[derive(Clone, Debug, Serialize)]
pub struct TestResult {
    pub n: usize,
    pub acc: f64,
    pub macro_f1: f64,
}

/// The test metrics of `model`, when the run evaluated it on a test file.
fn test_result(layout: &Layout, model: &str, labels: &LabelSet) -> Result<Option<TestResult>> {
    let path = layout.eval_test(model);
    if !path.is_file() {
        return Ok(None);
    }
    let eval: EvalJson = read_json(&path)?;
    check_labels(model, &eval, labels)?;
    let macro_f1 = eval
        .macro_f1
        .with_context(|| format!("{}: no macro_f1", path.display()))?;
    Ok(Some(TestResult {
        n: eval.n,
        acc: eval.acc,
        macro_f1,
    }))
}

/// What the report needs of `distill eval --json` and `distill teacher eval --json`.
#[derive(Deserialize)]
struct EvalJson {
    /// Label names in id order (absent in files written before N-class support).
    #[serde(default)]
    labels: Option<Vec<String>>,
    n: usize,
    acc: f64,
    ap: f64,
    f1: f64,
    confusion: Vec<Vec<usize>>,
    #[serde(default)]
    macro_f1: Option<f64>,
    #[serde(default)]
    sentences_per_second: Option<f64>,
    #[serde(default)]
    latency_us_median: Option<f64>,
}

/// The dev gold labels and their names.
pub struct Dev {
    pub labels: LabelSet,
    pub gold: Vec<u32>,
}

impl ModelResult {
    /// The metric part of a model's result, from its eval JSON and its `[n, C]` scores
    /// against `gold`; the rest is left empty for the caller.
    fn from_eval(name: &str, eval: &EvalJson, scores: Vec<f32>, gold: &[u32]) -> Result<Self> {
        let c = eval.confusion.len();
        ensure!(
            eval.confusion.iter().all(|row| row.len() == c),
            "{name}: the confusion matrix is not square"
        );
        let counted: usize = eval.confusion.iter().flatten().sum();
        ensure!(
            counted == eval.n && eval.n == gold.len(),
            "{name}: the confusion matrix counts {counted} sentences, the eval {} and dev {}",
            eval.n,
            gold.len()
        );
        let class_ap = (0..c as u32)
            .map(|k| {
                let is_k: Vec<u32> = gold.iter().map(|&g| u32::from(g == k)).collect();
                is_k.contains(&1).then(|| {
                    metrics::average_precision(
                        &metrics::class_scores(&scores, c, k as usize),
                        &is_k,
                    )
                })
            })
            .collect();
        Ok(ModelResult {
            name: name.into(),
            label: String::new(),
            teacher: false,
            n: eval.n,
            acc: eval.acc,
            ap: eval.ap,
            f1: eval.f1,
            macro_f1: metrics::macro_f1(&eval.confusion),
            classes: class_metrics(&eval.confusion),
            class_ap,
            confusion: eval.confusion.clone(),
            params: 0,
            size_bytes: 0,
            throughput: None,
            latency_us: None,
            scores,
            epochs: Vec::new(),
            test: None,
        })
    }

    /// Number of labels.
    pub fn num_classes(&self) -> usize {
        self.confusion.len()
    }
}

#[derive(Deserialize)]
struct BenchJson {
    text_sentences_per_second: Option<f64>,
    text_latency_us_median: Option<f64>,
}

/// The teacher and each student of `students`, in that order, and the dev labels named
/// from `labels` (the task's, in id order).
pub fn collect(
    layout: &Layout,
    teacher_base: &str,
    students: &[String],
    labels: &LabelSet,
) -> Result<(Vec<ModelResult>, Dev)> {
    let teacher_eval: EvalJson = read_json(&layout.eval("teacher"))?;
    check_labels("teacher", &teacher_eval, labels)?;
    let dev = Dataset::read(&layout.dev(), labels)
        .with_context(|| format!("reading {}", layout.dev().display()))?;
    let gold = dev.labels().context("the dev file has unlabelled rows")?;
    let c = labels.len();
    let mut models = Vec::new();

    let teacher = layout.teacher();
    let scores = read_scores(&layout.scores("teacher"), gold.len(), c)?;
    models.push(ModelResult {
        label: format!("teacher: fine-tuned {}", short_name(teacher_base)),
        teacher: true,
        params: parameter_count(&teacher.join("model.safetensors"))?,
        size_bytes: files_size(&Layout::model_files(&teacher, true))?,
        throughput: teacher_eval.sentences_per_second,
        latency_us: teacher_eval.latency_us_median,
        test: test_result(layout, "teacher", labels)?,
        ..ModelResult::from_eval("teacher", &teacher_eval, scores, &gold)?
    });
    for name in students {
        let spec = student(name).with_context(|| format!("unknown student {name}"))?;
        let dir = layout.student(name);
        let best = dir.join("best");
        let eval: EvalJson = read_json(&layout.eval(name))?;
        check_labels(name, &eval, labels)?;
        let bench: BenchJson = read_json(&layout.bench(name))?;
        let scores = read_scores(&layout.scores(name), gold.len(), c)?;
        models.push(ModelResult {
            label: spec.label.into(),
            params: parameter_count(&best.join("model.safetensors"))?,
            size_bytes: files_size(&Layout::model_files(&best, false))?,
            throughput: bench.text_sentences_per_second,
            latency_us: bench.text_latency_us_median,
            epochs: read_epochs(&dir.join("metrics.jsonl"))?,
            test: test_result(layout, name, labels)?,
            ..ModelResult::from_eval(name, &eval, scores, &gold)?
        });
    }
    Ok((
        models,
        Dev {
            labels: labels.clone(),
            gold,
        },
    ))
}

/// Fails unless `model` was evaluated on `labels`: as many as its confusion matrix has
/// rows, and the same names when its eval JSON lists them (files from before N-label
/// support do not).
fn check_labels(model: &str, eval: &EvalJson, labels: &LabelSet) -> Result<()> {
    ensure!(
        eval.confusion.len() == labels.len(),
        "{model} was evaluated on {} labels, the task has {} ({})",
        eval.confusion.len(),
        labels.len(),
        labels.names().join(", ")
    );
    if let Some(names) = &eval.labels {
        ensure!(
            names == labels.names(),
            "{model} was evaluated with labels {}, the task has {}",
            names.join(", "),
            labels.names().join(", ")
        );
    }
    Ok(())
}

/// The student with the best dev accuracy (the first on a tie).
pub fn best_student(models: &[ModelResult]) -> Option<&ModelResult> {
    models
        .iter()
        .filter(|m| !m.teacher)
        .fold(None, |best: Option<&ModelResult>, m| match best {
            Some(b) if b.acc >= m.acc => Some(b),
            _ => Some(m),
        })
}

/// `owner/name` → `name`; a folder → its last component.
pub fn short_name(id_or_dir: &str) -> String {
    Path::new(id_or_dir).file_name().map_or_else(
        || id_or_dir.to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

/// `n` rows of `c` class probabilities, tab- or space-separated. A file of one number per
/// line (P(label 1), written before N-class support) reads as `[1 − p, p]`.
fn read_scores(path: &Path, n: usize, c: usize) -> Result<Vec<f32>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut scores = Vec::with_capacity(n * c);
    let mut rows = 0;
    for (i, line) in text.lines().enumerate() {
        let row = line
            .split_whitespace()
            .map(str::parse::<f32>)
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("{}:{}: not numbers", path.display(), i + 1))?;
        match row.len() {
            1 if c == 2 => scores.extend([1.0 - row[0], row[0]]),
            k if k == c => scores.extend(row),
            k => anyhow::bail!("{}:{}: {k} scores for {c} labels", path.display(), i + 1),
        }
        rows += 1;
    }
    ensure!(
        rows == n,
        "{} has scores for {rows} sentences, dev has {n}",
        path.display()
    );
    Ok(scores)
}

fn read_epochs(path: &Path) -> Result<Vec<Epoch>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).with_context(|| format!("parsing a line of {}", path.display()))
        })
        .collect()
}

/// Sum of the element counts in a safetensors file's header.
pub fn parameter_count(path: &Path) -> Result<u64> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .with_context(|| format!("reading {}", path.display()))?;
    let len = u64::from_le_bytes(len);
    ensure!(
        len < 100 << 20,
        "{}: implausible safetensors header length {len}",
        path.display()
    );
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .with_context(|| format!("reading {}", path.display()))?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)
        .with_context(|| format!("parsing the header of {}", path.display()))?;
    let mut total = 0u64;
    for (name, entry) in header.iter().filter(|(k, _)| *k != "__metadata__") {
        let shape = entry
            .get("shape")
            .and_then(|s| s.as_array())
            .with_context(|| format!("{}: tensor {name} has no shape", path.display()))?;
        total += shape
            .iter()
            .map(|d| d.as_u64().unwrap_or(0))
            .product::<u64>();
    }
    Ok(total)
}

fn files_size(files: &[std::path::PathBuf]) -> Result<u64> {
    files.iter().try_fold(0u64, |sum, f| {
        let meta = std::fs::metadata(f).with_context(|| format!("{} is missing", f.display()))?;
        Ok(sum + meta.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parameters_from_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let header = br#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[4],"data_offsets":[24,40]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend(std::iter::repeat_n(0u8, 40));
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(parameter_count(&path).unwrap(), 10);
    }

    #[test]
    fn short_names() {
        assert_eq!(
            short_name("sentence-transformers/all-MiniLM-L6-v2"),
            "all-MiniLM-L6-v2"
        );
        assert_eq!(short_name("/a/b/tiny-bert"), "tiny-bert");
    }
}
