//! Scoring a student on an [`EncodedSet`]: logits in input order, loss and metrics.

use candle_core::{Device, Tensor};
use distill_data::{Batcher, Metrics};
use distill_student::{probabilities, BiLstmClassifier};
use serde::{Deserialize, Serialize};

use crate::{EncodedSet, Loss, Result};

/// What an evaluation reports (keys as in `metrics.jsonl`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Evaluation {
    pub loss: f64,
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// Logits `[N][C]` for every sentence (or pair), in input order. Batches are formed in length
/// order so padding stays small.
pub fn predict_logits(
    model: &BiLstmClassifier,
    set: &EncodedSet,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let max_len = model.config().max_len;
    let mut out = vec![Vec::new(); set.len()];
    for batch in set.sorted_batches(&Batcher::new(batch_size).max_len(max_len)) {
        let ids = Tensor::from_vec(batch.ids, (batch.lengths.len(), batch.time), device)?;
        let x = model.embed(&ids)?;
        let logits = if batch.pair {
            model.forward_embedded_pair(&x, &batch.lengths, None)?
        } else {
            model.forward_embedded(&x, &batch.lengths, None)?
        }
        .to_vec2::<f32>()?;
        for (row, l) in batch.indices.iter().zip(logits) {
            out[*row] = l;
        }
    }
    Ok(out)
}

/// Predicted labels and P(label 1) from logits (one logit: sigmoid; two: softmax).
pub fn scores(logits: &[Vec<f32>]) -> (Vec<f32>, Vec<u32>) {
    logits
        .iter()
        .map(|l| {
            let p = probabilities(l).get(1).copied().unwrap_or(f32::NAN);
            (p, u32::from(p > 0.5))
        })
        .unzip()
}

/// Loss (as trained) and metrics of `model` on `set`, which must be fully labelled.
pub fn evaluate(
    model: &BiLstmClassifier,
    set: &EncodedSet,
    loss: &Loss,
    device: &Device,
) -> Result<Evaluation> {
    let logits = predict_logits(model, set, 256, device)?;
    let gold = set
        .gold()
        .ok_or_else(|| crate::Error::Config("evaluation needs a label on every sentence".into()))?;
    let (p, preds) = scores(&logits);
    let metrics = Metrics::compute(&p, &preds, &gold);
    let c = logits.first().map_or(model.config().num_outputs, Vec::len);
    let flat: Vec<f32> = logits.concat();
    let value = if set.is_empty() {
        0.0
    } else {
        let l = Tensor::from_vec(flat, (set.len(), c), device)?;
        let teacher = match &set.teacher {
            Some(t) => Some(Tensor::from_slice(t, (set.len(), set.num_labels), device)?),
            None => None,
        };
        let loss = if loss.needs_teacher() && teacher.is_none() {
            Loss::Ce
        } else {
            *loss
        };
        loss.compute(&l, &set.labels, teacher.as_ref())?
            .to_scalar::<f32>()? as f64
    };
    Ok(Evaluation {
        loss: value,
        metrics,
    })
}
