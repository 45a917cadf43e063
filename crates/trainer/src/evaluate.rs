//! Scoring a student on an [`EncodedSet`]: logits in input order, loss and metrics.

use candle_core::{Device, Tensor};
use distill_data::{metrics, Batcher, Metrics};
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

/// Class probabilities `[N][C]` and predicted labels from logits `[N][C]`: a softmax over
/// C ≥ 2 logits; one logit (a binary cross-entropy model) gives `[1 − σ(z), σ(z)]`.
/// The prediction is the most probable class, the lowest id on a tie.
pub fn scores(logits: &[Vec<f32>]) -> (Vec<Vec<f32>>, Vec<u32>) {
    logits
        .iter()
        .map(|l| {
            // The student crate's probabilities, as its `Predictor` serves them.
            let p = probabilities(l);
            let pred = metrics::predictions(&p, p.len())
                .first()
                .copied()
                .unwrap_or(0);
            (p, pred)
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
    let (probs, _) = scores(&logits);
    let classes = probs
        .first()
        .map_or(model.config().num_outputs.max(2), Vec::len);
    if let Some(bad) = gold.iter().find(|&&g| g as usize >= classes) {
        return Err(crate::Error::Config(format!(
            "label id {bad} is out of range for a model with {classes} classes"
        )));
    }
    let metrics = Metrics::compute(&probs.concat(), classes, &gold);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_class_probabilities() {
        // One logit: [1 − σ(z), σ(z)], label 1 exactly when σ(z) > 0.5.
        let (p, pred) = scores(&[vec![2.0], vec![-0.5], vec![0.0]]);
        let s = 1.0 / (1.0 + (-2.0f32).exp());
        assert!((p[0][1] - s).abs() < 1e-7 && (p[0][0] - (1.0 - s)).abs() < 1e-7);
        assert_eq!(pred, [1, 0, 0]);
        // Three logits: softmax, most probable class.
        let (p, pred) = scores(&[vec![0.0, 3.0, 1.0], vec![2.0, 2.0, -1.0]]);
        let z = 1.0 + 3f32.exp() + 1f32.exp();
        assert!((p[0][1] - 3f32.exp() / z).abs() < 1e-6);
        assert!(p.iter().all(|r| (r.iter().sum::<f32>() - 1.0).abs() < 1e-6));
        assert_eq!(pred, [1, 0]);
    }
}
