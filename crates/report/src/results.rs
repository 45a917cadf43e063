//! The numbers behind the report, gathered from the run folder: per model its dev metrics (`eval/<model>.json`; per-label
//! precision, recall, F1 and support are recomputed from its confusion matrix), class
//! probabilities per sentence (`eval/<model>.scores`), CPU timing
//! (`bench/<model>.json`, the teacher's in its eval JSON), training curve
//! (`students/<model>/metrics.jsonl`), parameter count (from the safetensors header),
//! size on disk, and what it is (the pipeline's description, else the student's training
//! settings).

use std::io::Read;
use std::path::{Path, PathBuf};

use distill_data::eval::read_scores;
use distill_data::metrics::{self, class_metrics, ClassMetrics};
use distill_data::{Dataset, EpochRecord, LabelSet, TaskSpec};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::run::{evaluated_students, PipelineRecord, RunFolder};

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
    pub epochs: Vec<EpochRecord>,
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
fn test_result(run: &RunFolder, model: &str, labels: &LabelSet) -> Result<Option<TestResult>> {
    let path = run.eval_test(model);
    if !path.is_file() {
        return Ok(None);
    }
    let eval: EvalJson = read_json(&path)?;
    check_labels(&path, &eval, labels)?;
    let macro_f1 = eval
        .macro_f1
        .ok_or_else(|| Error::file(&path, "no macro_f1"))?;
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
    /// The metric part of a model's result, from its eval JSON (`path`) and its `[n, C]`
    /// scores against `gold`; the rest is left empty for the caller.
    fn from_eval(
        name: &str,
        path: &Path,
        eval: &EvalJson,
        scores: Vec<f32>,
        gold: &[u32],
    ) -> Result<Self> {
        let c = eval.confusion.len();
        if eval.confusion.iter().any(|row| row.len() != c) {
            return Err(Error::file(path, "the confusion matrix is not square"));
        }
        let counted: usize = eval.confusion.iter().flatten().sum();
        if counted != eval.n || eval.n != gold.len() {
            return Err(Error::file(
                path,
                format!(
                    "the confusion matrix counts {counted} rows, `n` is {} and the dev file has {}",
                    eval.n,
                    gold.len()
                ),
            ));
        }
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

/// Which models a report covers and how to read the dev file.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Students in report order (`None`: the pipeline's, else every evaluated one).
    pub students: Option<Vec<String>>,
    /// The dev file (`None`: `data/dev.tsv` of the run).
    pub dev: Option<PathBuf>,
    /// How to read it.
    pub task: TaskSpec,
}

/// The teacher and the students, in that order, and the dev labels: named as the teacher's
/// eval JSON names them, else as the pipeline's settings do, else by id.
pub fn collect(
    run: &RunFolder,
    pipeline: Option<&PipelineRecord>,
    selection: &Selection,
) -> Result<(Vec<ModelResult>, Dev)> {
    let teacher_path = run.eval("teacher");
    let teacher_eval: EvalJson = read_json(&teacher_path)?;
    let names = teacher_eval
        .labels
        .clone()
        .or_else(|| pipeline.and_then(PipelineRecord::labels))
        .unwrap_or_else(|| {
            (0..teacher_eval.confusion.len())
                .map(|k| k.to_string())
                .collect()
        });
    let labels = LabelSet::new(names);
    check_labels(&teacher_path, &teacher_eval, &labels)?;
    let dev_path = selection.dev.clone().unwrap_or_else(|| run.dev());
    let dev = Dataset::read_labelled(&dev_path, &selection.task, &labels, "the report")?;
    let gold = dev.labels().unwrap_or_default();
    let c = labels.len();
    let described = |name: &str| {
        pipeline
            .and_then(|p| p.description.as_ref())
            .and_then(|d| d.models.get(name).cloned())
    };
    let students = match (
        &selection.students,
        pipeline.and_then(PipelineRecord::students),
    ) {
        (Some(given), _) => given.clone(),
        (None, Some(listed)) => listed,
        (None, None) => evaluated_students(run)?,
    };

    let teacher = run.teacher();
    let scores = read_scores(&run.scores("teacher"), gold.len(), c)?;
    let base = pipeline.and_then(PipelineRecord::teacher_base);
    let mut models = vec![ModelResult {
        label: described("teacher").unwrap_or_else(|| match base {
            Some(base) => format!("teacher: fine-tuned {}", short_name(base)),
            None => "teacher".into(),
        }),
        teacher: true,
        params: parameter_count(&teacher.join("model.safetensors"))?,
        size_bytes: files_size(&RunFolder::model_files(&teacher, true))?,
        throughput: teacher_eval.sentences_per_second,
        latency_us: teacher_eval.latency_us_median,
        test: test_result(run, "teacher", &labels)?,
        ..ModelResult::from_eval("teacher", &teacher_path, &teacher_eval, scores, &gold)?
    }];
    for name in &students {
        let dir = run.student(name);
        let best = dir.join("best");
        let path = run.eval(name);
        let eval: EvalJson = read_json(&path)?;
        check_labels(&path, &eval, &labels)?;
        let bench_path = run.bench(name);
        let bench: Option<BenchJson> = if bench_path.is_file() {
            Some(read_json(&bench_path)?)
        } else {
            None
        };
        let scores = read_scores(&run.scores(name), gold.len(), c)?;
        let curve = dir.join(distill_data::epoch::METRICS_FILE);
        models.push(ModelResult {
            label: match described(name) {
                Some(label) => label,
                None => describe_student(&dir.join("config.json"))?,
            },
            params: parameter_count(&best.join("model.safetensors"))?,
            size_bytes: files_size(&RunFolder::model_files(&best, false))?,
            throughput: bench.as_ref().and_then(|b| b.text_sentences_per_second),
            latency_us: bench.as_ref().and_then(|b| b.text_latency_us_median),
            epochs: if curve.is_file() {
                EpochRecord::read_jsonl(&curve)?
            } else {
                Vec::new()
            },
            test: test_result(run, name, &labels)?,
            ..ModelResult::from_eval(name, &path, &eval, scores, &gold)?
        });
    }
    Ok((models, Dev { labels, gold }))
}

/// What a student is, from the training settings in its folder's `config.json`:
/// "BiLSTM on labels (CE)" or "distilled: " and its loss, with " + augmentation",
/// ", embeddings from the teacher" and a "large preset, " prefix as they apply.
fn describe_student(config: &Path) -> Result<String> {
    if !config.is_file() {
        return Ok(String::new());
    }
    let v: serde_json::Value = read_json(config)?;
    let loss = &v["train"]["loss"];
    let mut what = match loss["kind"].as_str().unwrap_or("") {
        "ce" => "BiLSTM on labels (CE)".to_string(),
        "distill" => "distilled: CE + logit MSE".into(),
        "weighted-mse" => "distilled: teacher-weighted MSE".into(),
        "kl" => match loss["temperature"].as_f64() {
            Some(t) => format!("distilled: CE + KL (T = {t})"),
            None => "distilled: CE + KL".into(),
        },
        "" => "student".into(),
        other => format!("distilled: {other}"),
    };
    if !v["augment"].is_null() {
        what += " + augmentation";
    }
    if !v["init_embeddings"].is_null() {
        what += ", embeddings from the teacher";
    }
    match v["preset"]["name"].as_str() {
        Some(preset) if preset != "original" => Ok(format!("{preset} preset, {what}")),
        _ => Ok(what),
    }
}

/// Fails unless the model of `path` was evaluated on `labels`: as many as its confusion
/// matrix has rows, and the same names when its eval JSON lists them (files from before
/// N-label support do not).
fn check_labels(path: &Path, eval: &EvalJson, labels: &LabelSet) -> Result<()> {
    if eval.confusion.len() != labels.len() {
        return Err(Error::file(
            path,
            format!(
                "evaluated on {} labels, the teacher on {} ({})",
                eval.confusion.len(),
                labels.len(),
                labels.names().join(", ")
            ),
        ));
    }
    match &eval.labels {
        Some(names) if names != labels.names() => Err(Error::file(
            path,
            format!(
                "evaluated with labels {}, the teacher with {}",
                names.join(", "),
                labels.names().join(", ")
            ),
        )),
        _ => Ok(()),
    }
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
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::file(path, e.to_string()))
}

/// Sum of the element counts in a safetensors file's header.
pub fn parameter_count(path: &Path) -> Result<u64> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|e| Error::io("read", path, e))?;
    let len = u64::from_le_bytes(len);
    if len >= 100 << 20 {
        return Err(Error::file(
            path,
            format!("implausible safetensors header length {len}"),
        ));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|e| Error::io("read", path, e))?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|e| Error::file(path, format!("not a safetensors header: {e}")))?;
    let mut total = 0u64;
    for (name, entry) in header.iter().filter(|(k, _)| *k != "__metadata__") {
        let shape = entry
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(|| Error::file(path, format!("tensor {name} has no shape")))?;
        total += shape
            .iter()
            .map(|d| d.as_u64().unwrap_or(0))
            .product::<u64>();
    }
    Ok(total)
}

fn files_size(files: &[PathBuf]) -> Result<u64> {
    files.iter().try_fold(0u64, |sum, f| {
        let meta = std::fs::metadata(f).map_err(|e| Error::io("read", f, e))?;
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
