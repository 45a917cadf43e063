//! Every [`Loss`] of a batch and its gradient with respect to the logits, on slices.
//!
//! Logits `s` `(B, C)`, teacher logits `t` `(B, C)`, labels `y` (some rows unlabelled); `L` is
//! the set of labelled rows. The values are those of [`crate::loss`] (the candle reference);
//! the gradients, written into `ds` `(B, C)`:
//! ```text
//! ce            (1/|L|)·Σ_{i∈L} −log softmax(s_i)[y_i]    ds_i = (softmax(s_i) − onehot(y_i))/|L|
//! bce  (C = 1)  (1/|L|)·Σ_{i∈L} BCE(s_i, y_i)             ds_i = (σ(s_i) − y_i)/|L|
//! mse           mean (s − t)²                             ds = 2(s − t)/(B·C)
//! weighted mse  (1/B)·Σ_i w_i·mean_c (s_ic − t_ic)²       ds_i = 2·w_i·(s_i − t_i)/(B·C)
//!               w_i = exp(k·log softmax(t_i)[y_i or argmax t_i])
//! kl            (T²/B)·Σ_i KL(softmax(t_i/T) ‖ softmax(s_i/T))   ds_i = (T/B)·(q_i − p_i)
//! blends        a·hard + (1 − a)·soft, and so their gradients
//! ```
//! Unlabelled rows take only the teacher term; with no labelled row the hard term is 0.
//! Sums run in f64; the value returned is the f32 loss widened.

use distill_data::metrics::argmax;

use crate::{Error, Loss, Result};

/// The loss of `logits` `(rows, c)` and its gradient in `grad` (same shape).
pub fn loss_and_grad(
    loss: &Loss,
    logits: &[f32],
    c: usize,
    labels: &[Option<u32>],
    teacher: Option<&[f32]>,
    grad: &mut [f32],
) -> Result<f64> {
    let rows = labels.len();
    if logits.len() != rows * c || grad.len() != rows * c {
        return Err(Error::Config(format!(
            "loss: {} logits and {rows} labels do not make rows of {c}",
            logits.len()
        )));
    }
    if let Some(&bad) = labels.iter().flatten().find(|&&y| y as usize >= c.max(2)) {
        return Err(Error::Config(format!(
            "label {bad} is out of range for {c} outputs"
        )));
    }
    let teacher = || -> Result<&[f32]> {
        let t = teacher.ok_or_else(|| Error::Config("this loss needs teacher logits".into()))?;
        if t.len() != rows * c {
            return Err(Error::Config(format!(
                "teacher logits of {} values do not match the student's {rows}×{c}",
                t.len()
            )));
        }
        Ok(t)
    };
    grad.fill(0.0);
    let value = match *loss {
        Loss::Ce => cross_entropy(logits, c, labels, 1.0, grad),
        Loss::Bce => bce(logits, c, labels, grad)?,
        Loss::Distill { alpha } => {
            let t = teacher()?;
            alpha * cross_entropy(logits, c, labels, alpha, grad)
                + (1.0 - alpha) * mse(logits, t, None, 1.0 - alpha, grad)
        }
        Loss::WeightedMse { alpha, k } => {
            let t = teacher()?;
            let w = weights(t, c, labels, k);
            alpha * cross_entropy(logits, c, labels, alpha, grad)
                + (1.0 - alpha) * mse(logits, t, Some(&w), 1.0 - alpha, grad)
        }
        Loss::Kl { alpha, temperature } => {
            let t = teacher()?;
            alpha * cross_entropy(logits, c, labels, alpha, grad)
                + (1.0 - alpha) * kl(logits, t, c, temperature, 1.0 - alpha, grad)
        }
    };
    Ok(value as f32 as f64)
}

/// Mean CE over labelled rows; adds `scale ×` its gradient to `grad`.
fn cross_entropy(s: &[f32], c: usize, labels: &[Option<u32>], scale: f64, grad: &mut [f32]) -> f64 {
    let labelled = labels.iter().flatten().count();
    if labelled == 0 {
        return 0.0;
    }
    let n = labelled as f64;
    let mut total = 0.0;
    let mut p = vec![0.0f64; c];
    for (i, y) in labels.iter().enumerate() {
        let Some(y) = *y else { continue };
        let row = &s[i * c..(i + 1) * c];
        let lse = log_softmax_into(row, 1.0, &mut p);
        total += lse - row[y as usize] as f64;
        for (j, g) in grad[i * c..(i + 1) * c].iter_mut().enumerate() {
            let target = if j == y as usize { 1.0 } else { 0.0 };
            *g += (scale * (p[j] - target) / n) as f32;
        }
    }
    total / n
}

/// Mean BCE-with-logits over labelled rows of a one-logit output.
fn bce(z: &[f32], c: usize, labels: &[Option<u32>], grad: &mut [f32]) -> Result<f64> {
    if c != 1 {
        return Err(Error::Config(format!(
            "bce reads one logit per row, the student has {c}"
        )));
    }
    let n = labels.iter().flatten().count();
    if n == 0 {
        return Ok(0.0);
    }
    let mut total = 0.0;
    for (i, y) in labels.iter().enumerate() {
        let Some(y) = *y else { continue };
        let (z, y) = (z[i] as f64, y as f64);
        total += z.max(0.0) - z * y + (-z.abs()).exp().ln_1p();
        grad[i] += ((sigmoid(z) - y) / n as f64) as f32;
    }
    Ok(total / n as f64)
}

/// (Weighted) mean squared error over all elements; adds `scale ×` its gradient.
fn mse(s: &[f32], t: &[f32], weights: Option<&[f64]>, scale: f64, grad: &mut [f32]) -> f64 {
    let n = s.len();
    if n == 0 {
        return f64::NAN; // the mean of nothing, as the reference
    }
    let c = n / weights.map_or(1, |w| w.len().max(1));
    let mut total = 0.0;
    for (e, ((&si, &ti), g)) in s.iter().zip(t).zip(grad.iter_mut()).enumerate() {
        let w = weights.map_or(1.0, |w| w[e / c]);
        let d = si as f64 - ti as f64;
        total += w * d * d;
        *g += (scale * 2.0 * w * d / n as f64) as f32;
    }
    total / n as f64
}

/// The weighted-MSE weights `exp(k·log p_t(target))`, the target being the label or, for an
/// unlabelled row, the teacher's first most likely class.
fn weights(t: &[f32], c: usize, labels: &[Option<u32>], k: f64) -> Vec<f64> {
    let mut p = vec![0.0f64; c];
    labels
        .iter()
        .enumerate()
        .map(|(i, y)| {
            let row = &t[i * c..(i + 1) * c];
            let target = y.map_or_else(|| argmax(row), |y| y as usize);
            let lse = log_softmax_into(row, 1.0, &mut p);
            let log_p = (row[target] as f64) - lse;
            // In f32 as the reference computes it.
            (k as f32 * log_p as f32).exp() as f64
        })
        .collect()
}

/// `T²·KL(softmax(t/T) ‖ softmax(s/T))` over the batch; adds `scale ×` its gradient.
fn kl(s: &[f32], t: &[f32], c: usize, temperature: f64, scale: f64, grad: &mut [f32]) -> f64 {
    let rows = s.len() / c.max(1);
    let (mut q, mut p) = (vec![0.0f64; c], vec![0.0f64; c]);
    let mut total = 0.0;
    for i in 0..rows {
        let r = i * c..(i + 1) * c;
        let lse_q = log_softmax_into(&s[r.clone()], temperature, &mut q);
        let lse_p = log_softmax_into(&t[r.clone()], temperature, &mut p);
        for j in 0..c {
            let log_q = s[i * c + j] as f64 / temperature - lse_q;
            let log_p = t[i * c + j] as f64 / temperature - lse_p;
            total += p[j] * (log_p - log_q);
            grad[i * c + j] += (scale * temperature * (q[j] - p[j]) / rows as f64) as f32;
        }
    }
    total * temperature * temperature / rows as f64
}

/// Writes `softmax(row/T)` into `p` and returns `logsumexp(row/T)`.
fn log_softmax_into(row: &[f32], temperature: f64, p: &mut [f64]) -> f64 {
    let max = row
        .iter()
        .map(|&v| v as f64 / temperature)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for (pj, &v) in p.iter_mut().zip(row) {
        *pj = (v as f64 / temperature - max).exp();
        sum += *pj;
    }
    p.iter_mut().for_each(|x| *x /= sum);
    max + sum.ln()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}
