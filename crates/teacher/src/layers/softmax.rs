//! Softmax over the last dim: `yᵢ = exp(xᵢ − m) / Σⱼ exp(xⱼ − m)`, with `m` the row
//! maximum for numerical range; `(…, n)` → `(…, n)`. Backward: `∂L/∂x = y · (g − Σ g·y)`
//! per row, `g = ∂L/∂y`.
//!
//! candle's fused softmax has no backward. On the CPU this module runs its own kernels
//! for both passes (rows spread over the thread pool); elsewhere inference uses candle's
//! kernel and training [`softmax_diff`], the composition from differentiable ops (with
//! `m` detached: softmax does not depend on it, so no gradient is lost).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor, D};
use distill_ops::host;
use distill_ops::math::exp;
use rayon::prelude::*;

use super::{dot, sum, Mode};

/// Values per parallel task.
const CHUNK: usize = 16 * 1024;

/// Softmax over the last dim, with a backward pass when `mode` is differentiable.
pub fn softmax_last_dim(x: &Tensor, mode: Mode) -> Result<Tensor> {
    let x = x.contiguous()?;
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        return if mode.differentiable() {
            x.apply_op1(Softmax)
        } else {
            x.apply_op1_no_bwd(&Softmax)
        };
    }
    if mode.differentiable() {
        softmax_diff(&x)
    } else {
        candle_nn::ops::softmax_last_dim(&x)
    }
}

/// The reference path, composed from differentiable tensor ops (any device).
pub fn softmax_diff(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let exp = x.broadcast_sub(&max)?.exp()?;
    let sum = exp.sum_keepdim(D::Minus1)?;
    exp.broadcast_div(&sum)
}

fn row_len(l: &Layout) -> Result<usize> {
    match l.dims().last() {
        Some(&n) if n > 0 => Ok(n),
        _ => candle_core::bail!("softmax needs a non-empty last dim"),
    }
}

struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-last-dim"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, n) = (host::slice(s, l, self.name())?, row_len(l)?);
        let mut y = vec![0f32; x.len()];
        let chunk = CHUNK.div_ceil(n) * n;
        y.par_chunks_mut(chunk)
            .zip(x.par_chunks(chunk))
            .for_each(|(y, x)| {
                for (y, x) in y.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
                    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    for (y, &x) in y.iter_mut().zip(x) {
                        *y = exp(x - max);
                    }
                    let inv = 1.0 / sum(y);
                    y.iter_mut().for_each(|y| *y *= inv);
                }
            });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            res.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxBackward)?,
        ))
    }
}

/// `(y, ∂L/∂y)` → `∂L/∂x`.
struct SoftmaxBackward;

impl CustomOp2 for SoftmaxBackward {
    fn name(&self) -> &'static str {
        "softmax-last-dim-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (y, g, n) = (
            host::slice(s1, l1, self.name())?,
            host::slice(s2, l2, self.name())?,
            row_len(l1)?,
        );
        let mut dx = vec![0f32; y.len()];
        let chunk = CHUNK.div_ceil(n) * n;
        dx.par_chunks_mut(chunk)
            .zip(y.par_chunks(chunk).zip(g.par_chunks(chunk)))
            .for_each(|(dx, (y, g))| {
                for ((dx, y), g) in dx
                    .chunks_exact_mut(n)
                    .zip(y.chunks_exact(n))
                    .zip(g.chunks_exact(n))
                {
                    let yg = dot(y, g);
                    for i in 0..n {
                        dx[i] = y[i] * (g[i] - yg);
                    }
                }
            });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn kernels_match_the_composition_forward_and_backward() -> Result<()> {
        let dev = Device::Cpu;
        let mask = Tensor::new(&[0f32, 0., f32::MIN, 0., 0., 0., f32::MIN], &dev)?;
        let x =
            Var::from_tensor(&(Tensor::arange(0f32, 42., &dev)?.reshape((2, 3, 7))?.sin()? * 4.)?)?;
        let masked = x.broadcast_add(&mask)?;
        let fused = softmax_last_dim(&masked, Mode::Grad)?;
        let composed = softmax_diff(&masked)?;
        let max = |t: Tensor| t.abs()?.max_all()?.to_scalar::<f32>();
        assert!(max((&fused - &composed)?)? < 1e-6);
        let weights = Tensor::arange(0f32, 42., &dev)?.reshape((2, 3, 7))?.cos()?;
        let g1 = (fused * &weights)?.sum_all()?.backward()?;
        let g2 = (composed * &weights)?.sum_all()?.backward()?;
        let (a, b) = (g1.get(&x).expect("grad"), g2.get(&x).expect("grad"));
        assert!(max((a - b)?)? < 1e-6);
        // Masked entries get exactly zero probability and gradient.
        assert_eq!(a.get(0)?.get(0)?.get(2)?.to_scalar::<f32>()?, 0.0);
        Ok(())
    }
}
