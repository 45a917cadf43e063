//! One fine-tuning step: forward in training mode, cross-entropy, backward, clipping,
//! AdamW. On the CPU the batch runs as [`CPU_PARTS`] parts, one per rayon worker, and their
//! gradients are summed: each part's small products then run whole on one core, where the
//! whole batch on both cores split every product and synchronised after each (a third of
//! the cores' peak; the labelling path gained the same way).

use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::Tensor;
use rayon::prelude::*;

use crate::checkpoint::Teacher;
use crate::error::Result;
use crate::layers::Mode;
use crate::model::WORD_EMBEDDINGS;
use crate::optim::{clip_factor, AdamW, SparseGrad};
use crate::tokenize::Batch;

/// Parts a CPU step splits its batch into. Fixed, not the thread count, so that a seed
/// gives the same teacher on any machine.
pub const CPU_PARTS: usize = 2;

/// One part of a step's batch: its padded inputs and labels.
pub struct StepPart {
    pub inputs: Batch,
    pub labels: Vec<u32>,
}

/// The word-embedding table's gradient on some rows: sorted, distinct row ids and their
/// `(rows, hidden)` values.
pub type RowGradients = (Vec<u32>, Tensor);

/// A step's gradients, summed over its parts as if the batch had run whole.
pub struct StepGradients {
    /// Mean cross-entropy over the batch.
    pub loss: f64,
    /// Gradients of every variable but the word-embedding table.
    pub dense: GradStore,
    /// The word-embedding table's gradient on the rows the batch used.
    pub words: Option<RowGradients>,
}

/// The batch's rows `indices` cut into `parts` interleaved parts (rows of similar length
/// land in every part, so the parts cost about the same); fewer when the batch is small.
pub fn split_rows(indices: &[usize], parts: usize) -> Vec<Vec<usize>> {
    let parts = parts.clamp(1, indices.len().max(1));
    (0..parts)
        .map(|p| indices.iter().skip(p).step_by(parts).copied().collect())
        .collect()
}

/// Forward and backward over `parts` in `mode`, concurrently when there are several. A
/// single part draws dropout from the model's shared stream; several draw one seed each
/// from it ([`crate::BertClassifier::dropout_seeds`]).
pub fn step_gradients(teacher: &Teacher, parts: &[StepPart], mode: Mode) -> Result<StepGradients> {
    let total: usize = parts.iter().map(|p| p.labels.len()).sum();
    let run =
        |part: &StepPart, seed: Option<u64>| -> Result<(f64, GradStore, Option<RowGradients>)> {
            let (ids, types, mask) = (
                &part.inputs.ids,
                part.inputs.type_ids.as_ref(),
                &part.inputs.mask,
            );
            let (logits, words) = match seed {
                None => teacher.model.forward_sparse(ids, types, mask, mode)?,
                Some(seed) => teacher
                    .model
                    .forward_sparse_seeded(ids, types, mask, mode, seed)?,
            };
            let ys = Tensor::new(part.labels.as_slice(), teacher.device())?;
            let mut loss = candle_nn::loss::cross_entropy(&logits, &ys)?;
            if part.labels.len() != total {
                // Each part's mean, weighted by its share: the sum is the batch's mean.
                loss = (loss * (part.labels.len() as f64 / total as f64))?;
            }
            let grads = loss.backward()?;
            let words = match words {
                Some(w) => grads.get(w.leaf.as_tensor()).map(|g| (w.rows, g.clone())),
                None => None,
            };
            Ok((loss.to_scalar::<f32>()? as f64, grads, words))
        };
    let mut results = if parts.len() == 1 {
        vec![run(&parts[0], None)?]
    } else {
        let seeds = teacher.model.dropout_seeds(parts.len());
        parts
            .par_iter()
            .zip(seeds)
            .map(|(part, seed)| run(part, Some(seed)))
            .collect::<Result<Vec<_>>>()?
    };
    let (mut loss, mut dense, first_words) = results.remove(0);
    let mut words: Vec<RowGradients> = first_words.into_iter().collect();
    for (part_loss, grads, part_words) in results {
        loss += part_loss;
        for (_, var) in teacher.model.params().iter() {
            if let Some(g) = grads.get(var.as_tensor()) {
                let sum = match dense.get(var.as_tensor()) {
                    Some(d) => (d + g)?,
                    None => g.clone(),
                };
                dense.insert(var.as_tensor(), sum);
            }
        }
        words.extend(part_words);
    }
    let words = match words.len() {
        0 => None,
        1 => words.pop(),
        _ => Some(merge_rows(&words)?),
    };
    Ok(StepGradients { loss, dense, words })
}

/// Row gradients of several parts as one: the union of their rows, sorted, with the
/// values of a row that several parts used summed.
fn merge_rows(parts: &[RowGradients]) -> Result<RowGradients> {
    let width = parts[0].1.dim(1)?;
    let mut sums: BTreeMap<u32, Vec<f32>> = BTreeMap::new();
    for (rows, values) in parts {
        let values = values.flatten_all()?.to_vec1::<f32>()?;
        for (&row, v) in rows.iter().zip(values.chunks_exact(width)) {
            let sum = sums.entry(row).or_insert_with(|| vec![0.0; width]);
            sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
        }
    }
    let rows: Vec<u32> = sums.keys().copied().collect();
    let values: Vec<f32> = sums.into_values().flatten().collect();
    let values = Tensor::from_vec(values, (rows.len(), width), parts[0].1.device())?;
    Ok((rows, values))
}

/// One optimisation step over `parts` (see the module doc): clipping to `max_grad_norm`,
/// AdamW at `lr`. Returns the batch's loss.
pub fn train_step_parts(
    teacher: &Teacher,
    opt: &mut AdamW,
    parts: &[StepPart],
    lr: f64,
    max_grad_norm: f64,
) -> Result<f64> {
    let g = step_gradients(teacher, parts, Mode::Train)?;
    let table = teacher.model.params().var(WORD_EMBEDDINGS)?;
    let sparse = g.words.as_ref().map(|(rows, values)| SparseGrad {
        var: table,
        rows,
        values,
    });
    let factor = clip_factor(opt.grad_norm(&g.dense, sparse.as_ref())?, max_grad_norm);
    opt.step(&g.dense, lr, factor, sparse.as_ref())?;
    Ok(g.loss)
}

/// One optimisation step on a whole padded batch with its labels (one part). Returns the
/// batch loss.
pub fn train_step(
    teacher: &Teacher,
    opt: &mut AdamW,
    batch: &Batch,
    labels: &[u32],
    lr: f64,
    max_grad_norm: f64,
) -> Result<f64> {
    let part = StepPart {
        inputs: batch.clone(),
        labels: labels.to_vec(),
    };
    train_step_parts(teacher, opt, &[part], lr, max_grad_norm)
}
