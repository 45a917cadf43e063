//! `distill bench --model`: how fast a student serves, before and after batching, and beside
//! PyTorch's.
//!
//! Measured over `--data` (`--repeat` passes, all cores through rayon; throughput is that of
//! the median pass, latency the median call):
//! - token ids in: [`Predictor::logits_flat`] (sorted blocks of sixteen sentences in SIMD
//!   lanes), beside the per-sentence path every figure before batching came from
//!   ([`Predictor::logits_batch_per_sentence`]);
//! - raw text in: [`Predictor::predict_batch`] (normalise through the per-thread word cache,
//!   encode, predict, probabilities), beside the per-sentence path with the text normalised
//!   afresh each time ([`Predictor::encode_uncached`]); the word cache is warm after the
//!   first pass, as a server's would be;
//! - single-sentence latency, one sentence at a time on one thread: [`Predictor::logits_into`]
//!   and [`Predictor::predict`] (after one untimed pass that fills the thread's word cache),
//!   beside the per-sentence path.
//!
//! With `--compare-pytorch PYTHON`, the same file goes through `scripts/bench/torch_student_bench.py`
//! (PyTorch's `nn.LSTM` student of the same sizes, dev in batches of 256 and one sentence at
//! a time, its own thread count; see the script) and both sides print with their ratios.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use candle_core::Device;
use clap::Args;
use distill_student::{Predictor, StudentModel};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::task::TaskArgs;

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

/// Serving figures of one student (JSON keys as `distill bench --json` has always written
/// them, plus the per-sentence figures).
#[derive(Serialize, Default, Debug)]
pub struct Inference {
    pub sentences: usize,
    pub repeat: usize,
    /// Worker threads (rayon) of the throughput figures.
    pub threads: usize,
    /// Token ids in, batched.
    pub model_sentences_per_second: f64,
    /// Token ids in, each sentence alone (the path before batching).
    pub per_sentence_sentences_per_second: f64,
    /// Raw text in, batched, through the word cache.
    pub text_sentences_per_second: f64,
    /// Raw text in, each sentence alone, normalised afresh.
    pub per_sentence_text_sentences_per_second: f64,
    pub latency_us_median: f64,
    pub latency_us_p99: f64,
    pub per_sentence_latency_us_median: f64,
    pub text_latency_us_median: f64,
    pub per_sentence_text_latency_us_median: f64,
    /// The model's sizes (what PyTorch's side is built with).
    pub embedding_dim: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
}

/// What `torch_student_bench.py` writes (the fields used here).
#[derive(Serialize, Deserialize, Debug)]
pub struct Torch {
    pub torch: String,
    pub packed: bool,
    pub threads: Option<usize>,
    pub emb: usize,
    pub hid: usize,
    pub best_epoch_s: Option<f64>,
    pub dev_sent_per_s_batch256: f64,
    pub latency_us_median: f64,
}

/// Times serving of the student in `model` over the texts of `data`.
pub fn time_inference(
    model: &Path,
    data: &Path,
    task: &TaskArgs,
    repeat: usize,
) -> Result<Inference> {
    let student = StudentModel::load(model, &Device::Cpu)
        .with_context(|| format!("loading student {}", model.display()))?;
    let predictor = Predictor::new(&student)?;
    let data_set = task.read_texts(data)?;
    let kind = |pair: bool| {
        if pair {
            "sentence pairs"
        } else {
            "single texts"
        }
    };
    let pair = predictor.is_pair();
    ensure!(
        data_set.is_pairs() == pair,
        "{}: the model reads {} but the data has {}",
        data.display(),
        kind(pair),
        kind(data_set.is_pairs()),
    );
    ensure!(repeat > 0, "--repeat must be at least 1");
    let texts = data_set.texts();
    // A pair's second texts (empty for single-text data, and then unused).
    let seconds: Vec<&str> = data_set.text_pairs().unwrap_or_default();
    let ids = predictor.encode_batch(&texts);
    let ids_b = predictor.encode_batch(&seconds);
    let n = ids.len();
    // Sentences per second of the median pass: on a machine shared with other work a pass
    // that lost the CPU midway says nothing about the code, and the median ignores it.
    let per_second = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        f()?; // warm-up: buffers, caches, thread pool
        let mut rates = Vec::with_capacity(repeat);
        for _ in 0..repeat {
            let start = Instant::now();
            f()?;
            rates.push(n as f64 / start.elapsed().as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        Ok(quantile(&rates, 0.5))
    };
    let model_sentences_per_second = per_second(&mut || {
        std::hint::black_box(if pair {
            predictor.logits_pair_flat(&ids, &ids_b)?
        } else {
            predictor.logits_flat(&ids)
        });
        Ok(())
    })?;
    let per_sentence_sentences_per_second = per_second(&mut || {
        std::hint::black_box(if pair {
            predictor.logits_pair_batch_per_sentence(&ids, &ids_b)?
        } else {
            predictor.logits_batch_per_sentence(&ids)
        });
        Ok(())
    })?;
    let text_sentences_per_second = per_second(&mut || {
        std::hint::black_box(if pair {
            predictor.predict_pair_batch(&texts, &seconds)?
        } else {
            predictor.predict_batch(&texts)
        });
        Ok(())
    })?;
    let old_text = |i: usize| -> Result<distill_student::Prediction> {
        let a = predictor.encode_uncached(texts[i]);
        let logits = if pair {
            let b = predictor.encode_uncached(seconds[i]);
            predictor.logits_pair_one_per_sentence(&a, &b)?
        } else {
            predictor.logits_one_per_sentence(&a)
        };
        Ok(predictor.prediction(logits))
    };
    let per_sentence_text_sentences_per_second = per_second(&mut || {
        let out: Vec<_> = (0..n)
            .into_par_iter()
            .with_min_len(64)
            .map(old_text)
            .collect::<Result<_>>()?;
        std::hint::black_box(out);
        Ok(())
    })?;

    // Latency: one sentence at a time, five passes for ids, one for text.
    let mut logits = vec![0.0f32; predictor.num_outputs()];
    let mut one_ids = |i: usize| -> Result<()> {
        if pair {
            std::hint::black_box(predictor.logits_pair(&ids[i], &ids_b[i])?);
        } else {
            predictor.logits_into(&ids[i], &mut logits);
            std::hint::black_box(&logits);
        }
        Ok(())
    };
    let lat = latencies(n, 5, &mut one_ids)?;
    let old_ids = |i: usize| -> Result<()> {
        std::hint::black_box(if pair {
            predictor.logits_pair_one_per_sentence(&ids[i], &ids_b[i])?
        } else {
            predictor.logits_one_per_sentence(&ids[i])
        });
        Ok(())
    };
    let old_lat = latencies(n, 5, &mut { old_ids })?;
    let text = |i: usize| -> Result<()> {
        std::hint::black_box(if pair {
            predictor.predict_pair(texts[i], seconds[i])?
        } else {
            predictor.predict(texts[i])
        });
        Ok(())
    };
    // One untimed pass fills this thread's word cache, as a running server's is.
    for i in 0..n {
        text(i)?;
    }
    let text_lat = latencies(n, 1, &mut { text })?;
    let old_text_lat = latencies(n, 1, &mut |i| {
        old_text(i).map(|p| {
            std::hint::black_box(p);
        })
    })?;
    Ok(Inference {
        sentences: n,
        repeat,
        threads: rayon::current_num_threads(),
        model_sentences_per_second,
        per_sentence_sentences_per_second,
        text_sentences_per_second,
        per_sentence_text_sentences_per_second,
        latency_us_median: quantile(&lat, 0.5),
        latency_us_p99: quantile(&lat, 0.99),
        per_sentence_latency_us_median: quantile(&old_lat, 0.5),
        text_latency_us_median: quantile(&text_lat, 0.5),
        per_sentence_text_latency_us_median: quantile(&old_text_lat, 0.5),
        embedding_dim: student.config.embedding_dim,
        hidden_size: student.config.hidden_size,
        num_layers: student.config.num_layers,
    })
}

/// Microseconds of each call of `f(i)` over `passes` passes of `0..n`, sorted.
fn latencies(n: usize, passes: usize, f: &mut dyn FnMut(usize) -> Result<()>) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n * passes);
    for _ in 0..passes {
        for i in 0..n {
            let t = Instant::now();
            f(i)?;
            out.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

/// The `q` quantile of sorted values (`NaN` for none).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

impl CompareArgs {
    /// Whether a PyTorch comparison was asked for.
    pub fn wanted(&self) -> bool {
        self.compare_pytorch.is_some()
    }

    /// Runs the PyTorch script on `dev` (training `epochs` epochs on `train` first when
    /// `epochs > 0`) with the model's sizes, and reads what it wrote.
    pub fn run(
        &self,
        train: &Path,
        dev: &Path,
        epochs: usize,
        emb: usize,
        hid: usize,
    ) -> Result<Torch> {
        let Some(python) = &self.compare_pytorch else {
            bail!("no --compare-pytorch given");
        };
        ensure!(
            self.torch_script.is_file(),
            "{} not found: run from the repository root or pass --torch-script",
            self.torch_script.display()
        );
        let out =
            std::env::temp_dir().join(format!("distill-torch-bench-{}.json", std::process::id()));
        tracing::info!(python = %python.display(), script = %self.torch_script.display(), "timing PyTorch");
        let output = Command::new(python)
            .arg(&self.torch_script)
            .args([train, dev, out.as_path()])
            .args(["--emb", &emb.to_string(), "--hid", &hid.to_string()])
            .args(["--epochs", &epochs.to_string()])
            .args(["--threads", &self.torch_threads.to_string()])
            .output()
            .with_context(|| format!("running {}", python.display()))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
            bail!(
                "{} {} failed ({}):\n{}",
                python.display(),
                self.torch_script.display(),
                output.status,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        let json = std::fs::read_to_string(&out);
        let _ = std::fs::remove_file(&out);
        let json = json.with_context(|| format!("reading {}", out.display()))?;
        serde_json::from_str(&json).with_context(|| format!("PyTorch's figures: {json}"))
    }
}

/// The serving figures (and PyTorch's, with ratios) as a Markdown table.
pub fn table(i: &Inference, torch: Option<&Torch>, epoch_s: Option<f64>) -> String {
    let mut s = format!(
        "student {}/{} ({} layer{}), {} sentences, median of {} passes, {} thread{}{}\n\n",
        i.embedding_dim,
        i.hidden_size,
        i.num_layers,
        if i.num_layers == 1 { "" } else { "s" },
        i.sentences,
        i.repeat,
        i.threads,
        if i.threads == 1 { "" } else { "s" },
        torch.map_or(String::new(), |t| format!(
            "; PyTorch {} ({}, {}, {}/{}, batches of 256)",
            t.torch,
            match t.threads.unwrap_or(2) {
                1 => "1 thread".to_string(),
                n => format!("{n} threads"),
            },
            if t.packed { "packed" } else { "padded" },
            t.emb,
            t.hid
        )),
    );
    s.push_str("| | batched | per sentence (before) | gain |");
    if torch.is_some() {
        s.push_str(" PyTorch | batched vs PyTorch |");
    }
    s.push('\n');
    s.push_str(if torch.is_some() {
        "|---|---:|---:|---:|---:|---:|\n"
    } else {
        "|---|---:|---:|---:|\n"
    });
    let rate = |v: f64| format!("{v:.0}");
    let us = |v: f64| format!("{v:.2}");
    // (label, new, old, PyTorch, higher is better)
    let rows: Vec<(&str, f64, f64, Option<f64>, bool)> = vec![
        (
            "token ids in, sentences/s",
            i.model_sentences_per_second,
            i.per_sentence_sentences_per_second,
            torch.map(|t| t.dev_sent_per_s_batch256),
            true,
        ),
        (
            "raw text in, sentences/s",
            i.text_sentences_per_second,
            i.per_sentence_text_sentences_per_second,
            None,
            true,
        ),
        (
            "latency, token ids in, median µs",
            i.latency_us_median,
            i.per_sentence_latency_us_median,
            torch.map(|t| t.latency_us_median),
            false,
        ),
        (
            "latency, raw text in, median µs",
            i.text_latency_us_median,
            i.per_sentence_text_latency_us_median,
            None,
            false,
        ),
    ];
    for (label, new, old, theirs, higher) in rows {
        let fmt = if higher { rate } else { us };
        let gain = if higher { new / old } else { old / new };
        s.push_str(&format!(
            "| {label} | {} | {} | {gain:.1}× |",
            fmt(new),
            fmt(old)
        ));
        if torch.is_some() {
            match theirs {
                Some(t) => {
                    let r = if higher { new / t } else { t / new };
                    s.push_str(&format!(" {} | {r:.1}× |", fmt(t)));
                }
                None => s.push_str(" — | |"),
            }
        }
        s.push('\n');
    }
    if let (Some(t), Some(ours)) = (torch, epoch_s) {
        if let Some(theirs) = t.best_epoch_s {
            s.push_str(&format!(
                "| training epoch, best, s | {ours:.3} | | | {theirs:.3} | {:.1}× |\n",
                theirs / ours
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_gains_and_ratios_the_right_way_round() {
        let i = Inference {
            sentences: 872,
            repeat: 2,
            threads: 2,
            model_sentences_per_second: 1_000_000.0,
            per_sentence_sentences_per_second: 200_000.0,
            text_sentences_per_second: 400_000.0,
            per_sentence_text_sentences_per_second: 80_000.0,
            latency_us_median: 2.0,
            latency_us_p99: 4.0,
            per_sentence_latency_us_median: 8.0,
            text_latency_us_median: 2.5,
            per_sentence_text_latency_us_median: 17.5,
            embedding_dim: 16,
            hidden_size: 8,
            num_layers: 1,
        };
        let t = Torch {
            torch: "2.5.1".into(),
            packed: true,
            threads: Some(2),
            emb: 16,
            hid: 8,
            best_epoch_s: Some(4.0),
            dev_sent_per_s_batch256: 25_000.0,
            latency_us_median: 300.0,
        };
        let s = table(&i, Some(&t), Some(0.5));
        assert!(
            s.contains("| token ids in, sentences/s | 1000000 | 200000 | 5.0× | 25000 | 40.0× |"),
            "{s}"
        );
        assert!(
            s.contains(
                "| latency, token ids in, median µs | 2.00 | 8.00 | 4.0× | 300.00 | 150.0× |"
            ),
            "{s}"
        );
        assert!(
            s.contains("| latency, raw text in, median µs | 2.50 | 17.50 | 7.0× | — | |"),
            "{s}"
        );
        assert!(
            s.contains("| training epoch, best, s | 0.500 | | | 4.000 | 8.0× |"),
            "{s}"
        );
        let plain = table(&i, None, None);
        assert!(
            !plain.contains("PyTorch") && plain.contains("| 5.0× |\n"),
            "{plain}"
        );
    }
}
