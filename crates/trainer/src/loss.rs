//! Training losses over a batch of logits `(B, C)`: the baseline and the distillation family.
//!
//! With gold labels `y` (some rows may have none: augmented sentences), teacher logits `t`
//! and student logits `s`:
//! - `ce`: `CE(s, y)`; `bce`: one logit, `BCEWithLogits(s, y)`.
//! - `distill`: `a·CE(s, y) + (1−a)·MSE(s, t)` (Tang et al. 2019).
//! - `weighted-mse`: `a·CE(s, y) + (1−a)·mean_i w_i·MSE_i(s, t)`, `w_i = exp(k·log p_t(y_i))`
//!   (the teacher's predicted label where `y_i` is missing), down-weighting examples the
//!   teacher gets wrong.
//! - `kl`: `a·CE(s, y) + (1−a)·T²·KL(softmax(t/T) ‖ softmax(s/T))` (Hinton et al.).
//!
//! CE terms average over the labelled rows only (zero if none); teacher terms over all rows.

use candle_core::{DType, Result, Tensor, D};
use candle_nn::ops::log_softmax;
use distill_data::metrics::argmax;
use serde::{Deserialize, Serialize};

/// Which loss a run trains with, and its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Loss {
    Ce,
    Bce,
    Distill { alpha: f64 },
    WeightedMse { alpha: f64, k: f64 },
    Kl { alpha: f64, temperature: f64 },
}

impl Loss {
    /// Number of logits the student must output for this loss over `num_labels`
    /// classes: one per class, or a single logit for BCE.
    pub fn num_outputs(&self, num_labels: usize) -> usize {
        if matches!(self, Loss::Bce) {
            1
        } else {
            num_labels
        }
    }

    /// Refuses a loss that cannot classify `labels`: BCE needs exactly two.
    pub fn check_labels(&self, labels: &distill_data::LabelSet) -> crate::Result<()> {
        if matches!(self, Loss::Bce) && labels.len() != 2 {
            return Err(crate::Error::Config(format!(
                "--loss bce needs exactly two labels, and this task has {} ({}); use ce",
                labels.len(),
                labels.names().join(", ")
            )));
        }
        Ok(())
    }

    /// Refuses hyper-parameters that make the loss NaN or meaningless: `alpha` outside
    /// [0, 1], a `temperature` that is not finite and > 0, a non-finite `k`.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |name, value, reason| {
            Err(crate::Error::InvalidSetting {
                name,
                value,
                reason,
            })
        };
        let alpha = match *self {
            Loss::Ce | Loss::Bce => return Ok(()),
            Loss::Distill { alpha } => alpha,
            Loss::WeightedMse { alpha, k } => {
                if !k.is_finite() {
                    return bad("k", k, "must be finite");
                }
                alpha
            }
            Loss::Kl { alpha, temperature } => {
                if !(temperature.is_finite() && temperature > 0.0) {
                    return bad("temperature", temperature, "must be finite and > 0");
                }
                alpha
            }
        };
        if !(0.0..=1.0).contains(&alpha) {
            return bad("alpha", alpha, "must be in [0, 1]");
        }
        Ok(())
    }

    /// Whether the loss needs teacher logits.
    pub fn needs_teacher(&self) -> bool {
        !matches!(self, Loss::Ce | Loss::Bce)
    }

    /// The loss of a batch. `labels[i]` is `None` for unlabelled rows; `teacher` is `(B, C)`.
    pub fn compute(
        &self,
        logits: &Tensor,
        labels: &[Option<u32>],
        teacher: Option<&Tensor>,
    ) -> Result<Tensor> {
        let teacher = || {
            teacher.ok_or_else(|| candle_core::Error::Msg("this loss needs teacher logits".into()))
        };
        match *self {
            Loss::Ce => cross_entropy(logits, labels),
            Loss::Bce => bce_with_logits(logits, labels),
            Loss::Distill { alpha } => blend(
                alpha,
                cross_entropy(logits, labels)?,
                mse(logits, teacher()?)?,
            ),
            Loss::WeightedMse { alpha, k } => blend(
                alpha,
                cross_entropy(logits, labels)?,
                weighted_mse(logits, teacher()?, labels, k)?,
            ),
            Loss::Kl { alpha, temperature } => blend(
                alpha,
                cross_entropy(logits, labels)?,
                kl(logits, teacher()?, temperature)?,
            ),
        }
    }
}

fn blend(alpha: f64, hard: Tensor, soft: Tensor) -> Result<Tensor> {
    (hard * alpha)? + (soft * (1.0 - alpha))?
}

/// Rows with a label, and those labels, as tensors.
fn labelled(logits: &Tensor, labels: &[Option<u32>]) -> Result<Option<(Tensor, Tensor)>> {
    let (rows, ys): (Vec<u32>, Vec<u32>) = labels
        .iter()
        .enumerate()
        .filter_map(|(i, y)| y.map(|y| (i as u32, y)))
        .unzip();
    if rows.is_empty() {
        return Ok(None);
    }
    let dev = logits.device();
    let ys = Tensor::new(ys, dev)?;
    if rows.len() == labels.len() {
        return Ok(Some((logits.clone(), ys)));
    }
    Ok(Some((
        logits.index_select(&Tensor::new(rows, dev)?, 0)?,
        ys,
    )))
}

/// Mean cross-entropy over labelled rows (0 when there are none).
pub fn cross_entropy(logits: &Tensor, labels: &[Option<u32>]) -> Result<Tensor> {
    match labelled(logits, labels)? {
        Some((s, y)) => candle_nn::loss::cross_entropy(&s, &y),
        None => Tensor::new(0f32, logits.device()),
    }
}

/// Mean BCE-with-logits over labelled rows of a `(B, 1)` output, in the stable form
/// `max(z, 0) − z·y + log(1 + e^{−|z|})`.
pub fn bce_with_logits(logits: &Tensor, labels: &[Option<u32>]) -> Result<Tensor> {
    let Some((z, y)) = labelled(logits, labels)? else {
        return Tensor::new(0f32, logits.device());
    };
    let z = z.flatten_all()?;
    let y = y.to_dtype(DType::F32)?;
    let pos = z.relu()?;
    let soft = (z.abs()?.neg()?.exp()? + 1.0)?.log()?;
    ((pos - (&z * &y)?)? + soft)?.mean_all()
}

/// Mean squared error over all elements, as PyTorch's `MSELoss()`.
pub fn mse(logits: &Tensor, teacher: &Tensor) -> Result<Tensor> {
    (logits - teacher)?.sqr()?.mean_all()
}

/// Per-example MSE weighted by the teacher's probability of the gold label to the power `k`.
pub fn weighted_mse(
    logits: &Tensor,
    teacher: &Tensor,
    labels: &[Option<u32>],
    k: f64,
) -> Result<Tensor> {
    if teacher.dims() != logits.dims() {
        return Err(candle_core::Error::Msg(format!(
            "teacher logits of shape {:?} do not match the student's {:?}",
            teacher.dims(),
            logits.dims()
        )));
    }
    let log_p = log_softmax(teacher, D::Minus1)?.to_vec2::<f32>()?;
    let weights = log_p
        .iter()
        .zip(labels)
        .map(|(row, y)| {
            let target = y.map(|y| y as usize).unwrap_or_else(|| argmax(row));
            let log_p = row.get(target).ok_or_else(|| {
                candle_core::Error::Msg(format!(
                    "label {target} is out of range for {} teacher logits per row",
                    row.len()
                ))
            })?;
            Ok((k as f32 * log_p).exp())
        })
        .collect::<Result<Vec<f32>>>()?;
    let w = Tensor::new(weights, logits.device())?;
    let per_example = (logits - teacher)?.sqr()?.mean(D::Minus1)?;
    (per_example * w)?.mean_all()
}

/// `T²·KL(softmax(t/T) ‖ softmax(s/T))`, averaged over the batch.
pub fn kl(logits: &Tensor, teacher: &Tensor, temperature: f64) -> Result<Tensor> {
    let log_q = log_softmax(&(logits / temperature)?, D::Minus1)?;
    let log_p = log_softmax(&(teacher / temperature)?, D::Minus1)?;
    let p = log_p.exp()?;
    let b = logits.dim(0)? as f64;
    (p * (log_p - log_q)?)?.sum_all()? * (temperature * temperature / b)
}
