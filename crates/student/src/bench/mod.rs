//! How fast a student serves, before and after batching, and beside PyTorch's: the harness
//! behind `distill bench --model`.
//!
//! [`time_serving`] measures over a set of texts (`repeat` passes, all cores through rayon;
//! throughput is that of the median pass, latency the median call):
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
//! [`PyTorchBench`] runs `scripts/bench/torch_student_bench.py` (PyTorch's `nn.LSTM` student
//! of the same sizes) on the same file, and [`table`] prints both sides with their ratios.

mod pytorch;
mod table;

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::{Error, Prediction, Predictor, Result, StudentModel};

pub use pytorch::{PyTorchBench, Torch};
pub use table::table;

/// Serving figures of one student (JSON keys as `distill bench --json` has always written
/// them, plus the per-sentence figures).
#[derive(Serialize, Default, Debug, Clone)]
pub struct Serving {
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

/// Times serving of `model` over `texts` (with `seconds`, their second texts, for a pair
/// model; empty otherwise), `repeat` passes for each throughput figure.
pub fn time_serving(
    model: &StudentModel,
    texts: &[&str],
    seconds: &[&str],
    repeat: usize,
) -> Result<Serving> {
    let predictor = &Predictor::new(model)?;
    let pair = predictor.is_pair();
    if repeat == 0 {
        return Err(Error::Config("timing needs at least one pass".into()));
    }
    if pair && seconds.len() != texts.len() {
        return Err(Error::Config(format!(
            "a pair model needs a second text for each of the {} texts, got {}",
            texts.len(),
            seconds.len()
        )));
    }
    let ids = predictor.encode_batch(texts);
    let ids_b = predictor.encode_batch(seconds);
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
            predictor.predict_pair_batch(texts, seconds)?
        } else {
            predictor.predict_batch(texts)
        });
        Ok(())
    })?;
    let old_text = |i: usize| -> Result<Prediction> {
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
    let config = &model.config;
    Ok(Serving {
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
        embedding_dim: config.embedding_dim,
        hidden_size: config.hidden_size,
        num_layers: config.num_layers,
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
