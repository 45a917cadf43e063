//! Inference over a data set: raw logits in input order, the logit cache, and evaluation.
//!
//! Rows (sentences, or sentence pairs with their token type ids) are tokenised, sorted by
//! token count within windows of [`SORT_WINDOW`] rows and run in batches of similar length
//! (little padding, so little wasted work), then the rows are put back in input order:
//! `logits` is `[N, C]` row-major with row `i` for row `i`. Evaluation turns logits
//! into `p = softmax(logits)`, predictions `argmax p`, scores `p₁` (the positive class)
//! and the mean cross-entropy `−log p_y`.

use distill_data::shard::{Shard, ShardInfo};
use distill_data::{Dataset, LogitsMeta, Metrics, TeacherLogits};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::checkpoint::Teacher;
use crate::error::{Error, Result};
use crate::layers::Mode;
use crate::tokenize::{pair_texts, Encoded};

/// Rows sorted by length together. A batch never crosses a window, so a shard cut at window
/// boundaries (`distill_data::shard`) batches every row exactly as a whole run does, and the
/// merged shards equal the whole run bit for bit. 4,096 rows sort as well as all of them.
pub const SORT_WINDOW: usize = 4096;

/// Settings of a pass over a data set.
#[derive(Debug, Clone, Copy)]
pub struct InferOptions {
    /// Sentences per forward pass.
    pub batch_size: usize,
    /// Show a progress bar on stderr (hidden when stderr is not a terminal).
    pub progress: bool,
}

impl Default for InferOptions {
    fn default() -> Self {
        Self {
            batch_size: 64,
            progress: true,
        }
    }
}

/// The outcome of [`evaluate`].
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub metrics: Metrics,
    /// Mean cross-entropy.
    pub loss: f64,
}

/// Logits `[N, C]` (row-major, input order) for single sentences `texts`.
pub fn predict_logits<S: AsRef<str> + Sync>(
    teacher: &Teacher,
    texts: &[S],
    opts: &InferOptions,
) -> Result<Vec<f32>> {
    check_options(opts)?;
    let encoded = Encoded {
        ids: teacher.tokenizer.encode_all(texts)?,
        type_ids: None,
    };
    predict_encoded(teacher, &encoded, opts)
}

/// Logits `[N, C]` (row-major, input order) for the sentence pairs
/// `(firsts[i], seconds[i])`.
pub fn predict_pair_logits<S: AsRef<str> + Sync>(
    teacher: &Teacher,
    firsts: &[S],
    seconds: &[S],
    opts: &InferOptions,
) -> Result<Vec<f32>> {
    check_options(opts)?;
    let encoded = teacher.tokenizer.encode_pairs(firsts, seconds)?;
    predict_encoded(teacher, &encoded, opts)
}

/// Logits `[N, C]` (row-major, input order) for the rows of `data`: sentences or sentence
/// pairs, as its examples are.
pub fn predict_data_logits(
    teacher: &Teacher,
    data: &Dataset,
    opts: &InferOptions,
) -> Result<Vec<f32>> {
    check_options(opts)?;
    predict_encoded(teacher, &teacher.tokenizer.encode_data(data)?, opts)
}

fn check_options(opts: &InferOptions) -> Result<()> {
    if opts.batch_size == 0 {
        return Err(Error::Setting("batch size must be positive".into()));
    }
    Ok(())
}

/// Logits `[N, C]` (row-major, input order) for tokenised rows.
pub fn predict_encoded(
    teacher: &Teacher,
    encoded: &Encoded,
    opts: &InferOptions,
) -> Result<Vec<f32>> {
    check_options(opts)?;
    let c = teacher.model.num_labels();
    let ids = &encoded.ids;
    if let Some(types) = &encoded.type_ids {
        let same =
            types.len() == ids.len() && types.iter().zip(ids).all(|(t, i)| t.len() == i.len());
        if !same {
            return Err(Error::Setting(
                "token type ids do not match the token ids row for row".into(),
            ));
        }
    }
    let mut order: Vec<usize> = (0..ids.len()).collect();
    for window in order.chunks_mut(SORT_WINDOW) {
        window.sort_by_key(|&i| ids[i].len());
    }
    let bar = progress_bar(ids.len() as u64, "labelling", opts.progress);
    let device = teacher.device();
    let run = |chunk: &[usize]| -> Result<Vec<Vec<f32>>> {
        let batch = encoded.batch(chunk, teacher.tokenizer.pad_id(), device)?;
        let rows = teacher
            .model
            .forward_typed(&batch.ids, batch.type_ids.as_ref(), &batch.mask, Mode::Eval)?
            .to_vec2::<f32>()?;
        bar.inc(chunk.len() as u64);
        Ok(rows)
    };
    let chunks: Vec<&[usize]> = order
        .chunks(SORT_WINDOW)
        .flat_map(|window| window.chunks(opts.batch_size))
        .collect();
    // On the CPU one batch per core, each single-threaded, beats every batch spread over
    // all cores: no synchronisation inside the ~40 small gemms of a forward pass.
    let rows: Vec<Vec<Vec<f32>>> = if device.is_cpu() {
        chunks.into_par_iter().map(run).collect::<Result<_>>()?
    } else {
        chunks.into_iter().map(run).collect::<Result<_>>()?
    };
    let mut out = vec![0f32; ids.len() * c];
    for (&i, row) in order.iter().zip(rows.into_iter().flatten()) {
        out[i * c..(i + 1) * c].copy_from_slice(&row);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// The logit cache for `data`: raw logits with the teacher's identity, its label names
/// and the data's fingerprint. Empty data is an error.
pub fn label(teacher: &Teacher, data: &Dataset, opts: &InferOptions) -> Result<TeacherLogits> {
    let start = std::time::Instant::now();
    let logits = predict_data_logits(teacher, data, opts)?;
    let seconds = start.elapsed().as_secs_f64();
    tracing::info!(
        sentences = data.len(),
        seconds = format!("{seconds:.1}"),
        per_second = format!("{:.0}", data.len() as f64 / seconds.max(1e-9)),
        "labelled"
    );
    let meta = label_meta(teacher, data)?;
    Ok(TeacherLogits::new(
        logits,
        teacher.model.num_labels(),
        meta,
    )?)
}

/// A cache's provenance: the teacher, its label names and the whole data set.
fn label_meta(teacher: &Teacher, data: &Dataset) -> Result<LogitsMeta> {
    Ok(LogitsMeta {
        teacher: teacher.source.name(),
        teacher_sha256: teacher.sha256()?,
        labels: teacher.labels().to_vec(),
        data_sha256: data.fingerprint(),
        count: data.len(),
        shard: None,
        precision: teacher.precision().name().to_string(),
    })
}

/// The logits of one shard of `data` (see `distill_data::shard`): its rows only, with the
/// whole file's fingerprint and the shard's place, for `distill logits merge`.
pub fn label_shard(
    teacher: &Teacher,
    data: &Dataset,
    shard: Shard,
    opts: &InferOptions,
) -> Result<TeacherLogits> {
    let rows = shard.rows(data.len(), SORT_WINDOW);
    let texts = data.texts();
    let logits = match pair_texts(data)? {
        None => predict_logits(teacher, &texts[rows.clone()], opts)?,
        Some(seconds) => {
            predict_pair_logits(teacher, &texts[rows.clone()], &seconds[rows.clone()], opts)?
        }
    };
    let whole = label_meta(teacher, data)?;
    let meta = LogitsMeta {
        count: rows.len(),
        shard: Some(ShardInfo {
            shard,
            rows,
            total: data.len(),
            window: SORT_WINDOW,
        }),
        ..whole
    };
    Ok(TeacherLogits::new(
        logits,
        teacher.model.num_labels(),
        meta,
    )?)
}

/// Accuracy, AP, F1 and loss of the teacher on labelled `data`.
pub fn evaluate(teacher: &Teacher, data: &Dataset, opts: &InferOptions) -> Result<Evaluation> {
    let labels = data
        .labels()
        .ok_or_else(|| Error::Labels("evaluation needs labelled data".into()))?;
    let logits = predict_data_logits(teacher, data, opts)?;
    score(&logits, teacher.model.num_labels(), &labels)
}

/// Metrics and mean cross-entropy of row-major `logits` `[N, C]` against `labels`.
pub fn score(logits: &[f32], num_labels: usize, labels: &[u32]) -> Result<Evaluation> {
    if labels.is_empty() {
        return Err(Error::Labels("no examples to evaluate".into()));
    }
    if let Some(bad) = labels.iter().find(|&&l| l as usize >= num_labels) {
        return Err(Error::Labels(format!(
            "label id {bad} is out of range for a classifier with {num_labels} outputs"
        )));
    }
    if logits.len() != labels.len() * num_labels {
        return Err(Error::Labels(format!(
            "{} logits for {} labels and {num_labels} outputs",
            logits.len(),
            labels.len()
        )));
    }
    let mut probs = Vec::with_capacity(logits.len());
    let mut loss = 0f64;
    for (row, &y) in logits.chunks(num_labels).zip(labels) {
        let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let sum: f64 = row.iter().map(|&v| ((v - max) as f64).exp()).sum();
        let log_p = |k: usize| (row[k] - max) as f64 - sum.ln();
        loss -= log_p(y as usize);
        probs.extend((0..num_labels).map(|k| log_p(k).exp() as f32));
    }
    Ok(Evaluation {
        metrics: Metrics::compute(&probs, num_labels, labels),
        loss: loss / labels.len() as f64,
    })
}

pub(crate) fn progress_bar(len: u64, what: &str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.set_message(what.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_logits_like_sklearn_and_torch() {
        // Two confident right answers and one wrong: acc 2/3.
        let logits = [2.0f32, -1.0, -0.5, 1.5, 3.0, 0.0];
        let eval = score(&logits, 2, &[0, 1, 1]).unwrap();
        assert!((eval.metrics.acc - 2.0 / 3.0).abs() < 1e-12);
        let ce = |l: [f32; 2], y: usize| -> f64 {
            let lse = ((l[0] as f64).exp() + (l[1] as f64).exp()).ln();
            lse - l[y] as f64
        };
        let expected = (ce([2.0, -1.0], 0) + ce([-0.5, 1.5], 1) + ce([3.0, 0.0], 1)) / 3.0;
        assert!(
            (eval.loss - expected).abs() < 1e-9,
            "{} vs {expected}",
            eval.loss
        );
        assert!(score(&logits, 2, &[0, 1, 2]).is_err());
    }
}
