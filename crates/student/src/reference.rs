//! The plain candle-op LSTM recurrence: the reference the fused [`crate::kernel`] is tested
//! against, and the path used on devices the kernel does not cover (CUDA, Metal).
//!
//! Same contract as [`crate::kernel::LstmSeqOp`]: `xg` `(B, T, 4H)`, `w_hh` `(4H, H)` →
//! `(B, T + 2, H)` with outputs, final `h`, final `c`. Variable lengths are handled with a
//! per-step mask `m_t = [t < len]`: a padded step keeps the state (`s = m·s_new + (1−m)·s`)
//! and outputs zero, so right-padding never reaches a final state in either direction.

use candle_core::{DType, Result, Tensor, D};

fn sigmoid(x: &Tensor) -> Result<Tensor> {
    // Composed from differentiable primitives on purpose.
    (x.neg()?.exp()? + 1.0)?.recip()
}

/// Runs one direction of one layer with one candle op per gate per step.
pub fn lstm_direction(
    xg: &Tensor,
    w_hh: &Tensor,
    lengths: &[usize],
    reverse: bool,
) -> Result<Tensor> {
    let (b, t, g4) = xg.dims3()?;
    let h = g4 / 4;
    let dev = xg.device();
    let w_t = w_hh.t()?;
    let mut hs = Tensor::zeros((b, h), DType::F32, dev)?;
    let mut cs = Tensor::zeros((b, h), DType::F32, dev)?;
    let mut outs: Vec<Option<Tensor>> = vec![None; t];
    let steps: Vec<usize> = if reverse {
        (0..t).rev().collect()
    } else {
        (0..t).collect()
    };
    for step in steps {
        let mask: Vec<f32> = lengths
            .iter()
            .map(|&l| if step < l { 1.0 } else { 0.0 })
            .collect();
        let m = Tensor::from_vec(mask, (b, 1), dev)?;
        let keep = (1.0 - &m)?;
        let z = (xg.narrow(1, step, 1)?.squeeze(1)? + hs.matmul(&w_t)?)?;
        let i = sigmoid(&z.narrow(D::Minus1, 0, h)?)?;
        let f = sigmoid(&z.narrow(D::Minus1, h, h)?)?;
        let g = z.narrow(D::Minus1, 2 * h, h)?.tanh()?;
        let o = sigmoid(&z.narrow(D::Minus1, 3 * h, h)?)?;
        let c_new = ((f * &cs)? + (i * g)?)?;
        let h_new = (o * c_new.tanh()?)?;
        cs = (c_new.broadcast_mul(&m)? + cs.broadcast_mul(&keep)?)?;
        hs = (h_new.broadcast_mul(&m)? + hs.broadcast_mul(&keep)?)?;
        outs[step] = Some(h_new.broadcast_mul(&m)?);
    }
    let mut rows: Vec<Tensor> = outs.into_iter().flatten().collect();
    rows.push(hs);
    rows.push(cs);
    Tensor::stack(&rows, 1)
}
