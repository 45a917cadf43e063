//! The numbers behind the report, gathered from the run folder: per model its dev metrics
//! (`eval/<model>.json`), per-sentence scores (`eval/<model>.scores`), CPU timing
//! (`bench/<model>.json`, the teacher's in its eval JSON), training curve
//! (`students/<model>/metrics.jsonl`), parameter count (from the safetensors header) and
//! size on disk.

use std::io::Read;
use std::path::Path;

use anyhow::{ensure, Context, Result};
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
    pub ap: f64,
    pub f1: f64,
    /// Rows gold 0/1, columns predicted 0/1.
    pub confusion: [[u64; 2]; 2],
    pub params: u64,
    /// Bytes of the files that make up the model folder.
    pub size_bytes: u64,
    /// Sentences per second on the CPU, raw text in.
    pub throughput: Option<f64>,
    /// Median single-sentence latency on the CPU, raw text in (µs).
    pub latency_us: Option<f64>,
    /// P(label 1) per dev sentence.
    #[serde(skip)]
    pub scores: Vec<f32>,
    /// Training curve (students).
    #[serde(skip)]
    pub epochs: Vec<Epoch>,
}

#[derive(Deserialize)]
struct EvalJson {
    n: usize,
    acc: f64,
    ap: f64,
    f1: f64,
    confusion: [[u64; 2]; 2],
    #[serde(default)]
    sentences_per_second: Option<f64>,
    #[serde(default)]
    latency_us_median: Option<f64>,
}

#[derive(Deserialize)]
struct BenchJson {
    text_sentences_per_second: Option<f64>,
    text_latency_us_median: Option<f64>,
}

/// The teacher and each student of `students`, in that order, and the dev labels.
pub fn collect(
    layout: &Layout,
    teacher_base: &str,
    students: &[String],
) -> Result<(Vec<ModelResult>, Vec<u32>)> {
    let dev = Dataset::read(&layout.dev(), &LabelSet::binary())
        .with_context(|| format!("reading {}", layout.dev().display()))?;
    let labels = dev.labels().context("the dev file has unlabelled rows")?;
    let mut models = Vec::new();

    let teacher = layout.teacher();
    let eval: EvalJson = read_json(&layout.eval("teacher"))?;
    models.push(ModelResult {
        name: "teacher".into(),
        label: format!("teacher: fine-tuned {}", short_name(teacher_base)),
        teacher: true,
        n: eval.n,
        acc: eval.acc,
        ap: eval.ap,
        f1: eval.f1,
        confusion: eval.confusion,
        params: parameter_count(&teacher.join("model.safetensors"))?,
        size_bytes: files_size(&Layout::model_files(&teacher, true))?,
        throughput: eval.sentences_per_second,
        latency_us: eval.latency_us_median,
        scores: read_scores(&layout.scores("teacher"), labels.len())?,
        epochs: Vec::new(),
    });
    for name in students {
        let spec = student(name).with_context(|| format!("unknown student {name}"))?;
        let dir = layout.student(name);
        let best = dir.join("best");
        let eval: EvalJson = read_json(&layout.eval(name))?;
        let bench: BenchJson = read_json(&layout.bench(name))?;
        models.push(ModelResult {
            name: name.clone(),
            label: spec.label.into(),
            teacher: false,
            n: eval.n,
            acc: eval.acc,
            ap: eval.ap,
            f1: eval.f1,
            confusion: eval.confusion,
            params: parameter_count(&best.join("model.safetensors"))?,
            size_bytes: files_size(&Layout::model_files(&best, false))?,
            throughput: bench.text_sentences_per_second,
            latency_us: bench.text_latency_us_median,
            scores: read_scores(&layout.scores(name), labels.len())?,
            epochs: read_epochs(&dir.join("metrics.jsonl"))?,
        });
    }
    Ok((models, labels))
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

fn read_scores(path: &Path, n: usize) -> Result<Vec<f32>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let scores = text
        .lines()
        .map(|l| l.trim().parse::<f32>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", path.display()))?;
    ensure!(
        scores.len() == n,
        "{} has {} scores for {n} dev sentences",
        path.display(),
        scores.len()
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
