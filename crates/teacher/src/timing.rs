//! `distill teacher eval`'s pass: the metrics of [`crate::evaluate`], the class
//! probabilities of every row, the wall time of the batched pass (its throughput) and,
//! when asked, the median latency of single-example passes, raw text in (tokenising
//! included) as a served teacher would see it.

use std::time::Instant;

use distill_data::{probabilities, Dataset};

use crate::checkpoint::Teacher;
use crate::error::{Error, Result};
use crate::infer::{predict_data_logits, score, Evaluation, InferOptions};

/// What [`evaluate_timed`] measured.
#[derive(Debug, Clone)]
pub struct TimedEvaluation {
    pub evaluation: Evaluation,
    /// Class probabilities `[N][C]` per row, in input order.
    pub probabilities: Vec<Vec<f32>>,
    /// Wall time of the batched pass over every row.
    pub seconds: f64,
    /// Rows per second of that pass.
    pub sentences_per_second: f64,
    /// Median microseconds of a single-example pass, when `latency_samples` > 0.
    pub latency_us_median: Option<f64>,
}

/// Scores `teacher` on labelled `data` in batches of `opts`, timing the pass, then times
/// `latency_samples` single-example passes.
pub fn evaluate_timed(
    teacher: &Teacher,
    data: &Dataset,
    opts: &InferOptions,
    latency_samples: usize,
) -> Result<TimedEvaluation> {
    let gold = data
        .labels()
        .ok_or_else(|| Error::Labels("evaluation needs a label on every row".into()))?;
    let start = Instant::now();
    let logits = predict_data_logits(teacher, data, opts)?;
    let seconds = start.elapsed().as_secs_f64();
    let num_labels = teacher.model.num_labels();
    let evaluation = score(&logits, num_labels, &gold)?;
    let latency_us_median = (latency_samples > 0)
        .then(|| single_example_latency(teacher, data, latency_samples))
        .transpose()?;
    Ok(TimedEvaluation {
        probabilities: logits.chunks(num_labels).map(probabilities).collect(),
        sentences_per_second: evaluation.metrics.n as f64 / seconds.max(1e-9),
        evaluation,
        seconds,
        latency_us_median,
    })
}

/// Median microseconds of one forward pass over a single example (text or pair in, logits
/// out), over the first `n` examples of `data` (cycling when there are fewer).
pub fn single_example_latency(teacher: &Teacher, data: &Dataset, n: usize) -> Result<f64> {
    if data.is_empty() || n == 0 {
        return Err(Error::Setting("no sentences to time".into()));
    }
    let opts = InferOptions {
        batch_size: 1,
        progress: false,
    };
    let mut times = Vec::with_capacity(n);
    for i in (0..data.len()).cycle().take(n) {
        let one = data.subset(&[i]);
        let start = Instant::now();
        std::hint::black_box(predict_data_logits(teacher, &one, &opts)?);
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}
