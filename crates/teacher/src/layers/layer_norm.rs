//! Layer normalisation over the last dim:
//! `y = x̂ · γ + β`, `x̂ = (x − μ) / √(σ² + ε)`, with `μ` and `σ²` the mean and (biased)
//! variance of each row; `x` `(…, h)`, `γ`, `β` `(h)`, `y` `(…, h)`.
//!
//! Backward, per row with `g = ∂L/∂y · γ`:
//! `∂L/∂x = (g − mean(g) − x̂ · mean(g · x̂)) / √(σ² + ε)`, `∂L/∂γ = Σ ∂L/∂y · x̂`,
//! `∂L/∂β = Σ ∂L/∂y` (sums over rows).
//!
//! candle's fused layer norm has no backward (and `candle_nn::LayerNorm` takes it whenever
//! its input is contiguous). On the CPU this module runs its own fused kernels for both
//! passes (two-pass variance, rows spread over the thread pool); elsewhere it uses
//! candle's kernel for inference and [`LayerNorm::forward_diff`], the same formula
//! composed from differentiable tensor ops, when gradients are wanted. The tests check
//! the kernels against that composition.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor, D};
use distill_ops::host;
use rayon::prelude::*;

use super::{sum, Mode};

/// Rows per parallel task.
const ROWS: usize = 64;

/// LayerNorm with affine parameters.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// `weight` (γ) and `bias` (β) of shape `(h)`.
    pub fn new(weight: Tensor, bias: Tensor, eps: f64) -> Self {
        Self { weight, bias, eps }
    }

    /// `(…, h)` → `(…, h)`.
    pub fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let x = x.contiguous()?;
        if x.device().is_cpu() && x.dtype() == DType::F32 {
            let op = LayerNormOp {
                eps: self.eps as f32,
            };
            return if mode.differentiable() {
                x.apply_op3(&self.weight, &self.bias, op)
            } else {
                x.apply_op3_no_bwd(&self.weight, &self.bias, &op)
            };
        }
        if mode.differentiable() {
            self.forward_diff(&x)
        } else {
            candle_nn::ops::layer_norm(&x, &self.weight, &self.bias, self.eps as f32)
        }
    }

    /// The reference path, composed from differentiable tensor ops (any device).
    pub fn forward_diff(&self, x: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centered = x.broadcast_sub(&mean)?;
        let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
        let inv_std = (var + self.eps)?.sqrt()?.recip()?;
        centered
            .broadcast_mul(&inv_std)?
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

/// Mean and `1/√(σ² + ε)` of a row, variance by two passes.
#[inline]
fn moments(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = sum(x) / n;
    let mut acc = [0f32; 8];
    let c = x.chunks_exact(8);
    let tail: f32 = c.remainder().iter().map(|v| (v - mean) * (v - mean)).sum();
    for v in c {
        for i in 0..8 {
            acc[i] += (v[i] - mean) * (v[i] - mean);
        }
    }
    let var = (acc.iter().sum::<f32>() + tail) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

/// Forward kernel: `(x, γ, β)` → `y`.
struct LayerNormOp {
    eps: f32,
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (
            host::slice(s1, l1, self.name())?,
            host::slice(s2, l2, self.name())?,
            host::slice(s3, l3, self.name())?,
        );
        let h = w.len();
        if h == 0 || x.len() % h != 0 || b.len() != h {
            candle_core::bail!(
                "layer norm: input {:?} does not match parameters of size {h}",
                l1.shape()
            )
        }
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(ROWS * h)
            .zip(x.par_chunks(ROWS * h))
            .for_each(|(y, x)| {
                for (y, x) in y.chunks_exact_mut(h).zip(x.chunks_exact(h)) {
                    let (mean, rstd) = moments(x, self.eps);
                    for i in 0..h {
                        y[i] = (x[i] - mean) * rstd * w[i] + b[i];
                    }
                }
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let h = w.elem_count();
        let rows = x.elem_count() / h;
        // One kernel computes all three gradients: rows 0..n are ∂L/∂x, row n is ∂L/∂γ,
        // row n + 1 is ∂L/∂β.
        let all =
            x.apply_op3_no_bwd(w, &grad.contiguous()?, &LayerNormBackward { eps: self.eps })?;
        let dx = all.narrow(0, 0, rows)?.reshape(x.shape())?;
        Ok((Some(dx), Some(all.get(rows)?), Some(all.get(rows + 1)?)))
    }
}

/// Backward kernel: `(x, γ, ∂L/∂y)` → `(n + 2, h)` stacking `∂L/∂x`, `∂L/∂γ`, `∂L/∂β`.
struct LayerNormBackward {
    eps: f32,
}

impl CustomOp3 for LayerNormBackward {
    fn name(&self) -> &'static str {
        "layer-norm-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, dy) = (
            host::slice(s1, l1, self.name())?,
            host::slice(s2, l2, self.name())?,
            host::slice(s3, l3, self.name())?,
        );
        let h = w.len();
        let n = x.len() / h;
        let mut out = vec![0f32; (n + 2) * h];
        let (dx, params) = out.split_at_mut(n * h);
        let (dw, db) = params.split_at_mut(h);
        let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
            .par_chunks_mut(ROWS * h)
            .zip(x.par_chunks(ROWS * h).zip(dy.par_chunks(ROWS * h)))
            .map(|(dx, (x, dy))| {
                let (mut dw, mut db) = (vec![0f32; h], vec![0f32; h]);
                let mut xhat = vec![0f32; h];
                for ((dx, x), dy) in dx
                    .chunks_exact_mut(h)
                    .zip(x.chunks_exact(h))
                    .zip(dy.chunks_exact(h))
                {
                    let (mean, rstd) = moments(x, self.eps);
                    let (mut mean_g, mut mean_gx) = (0f32, 0f32);
                    for i in 0..h {
                        xhat[i] = (x[i] - mean) * rstd;
                        let g = dy[i] * w[i];
                        mean_g += g;
                        mean_gx += g * xhat[i];
                        dw[i] += dy[i] * xhat[i];
                        db[i] += dy[i];
                    }
                    mean_g /= h as f32;
                    mean_gx /= h as f32;
                    for i in 0..h {
                        dx[i] = rstd * (dy[i] * w[i] - mean_g - xhat[i] * mean_gx);
                    }
                }
                (dw, db)
            })
            .collect();
        for (pw, pb) in partials {
            for i in 0..h {
                dw[i] += pw[i];
                db[i] += pb[i];
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((n + 2, h))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn kernels_match_the_composition_forward_and_backward() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(
            &(Tensor::arange(0f32, 600., &dev)?
                .reshape((5, 3, 40))?
                .sin()?
                * 3.)?,
        )?;
        let w = Var::from_tensor(&(Tensor::arange(0f32, 40., &dev)?.cos()? + 1.5)?)?;
        let b = Var::from_tensor(&(Tensor::arange(0f32, 40., &dev)? / 40.)?)?;
        let ln = LayerNorm::new(w.as_tensor().clone(), b.as_tensor().clone(), 1e-12);
        let fused = ln.forward(&x, Mode::Grad)?;
        let composed = ln.forward_diff(&x)?;
        let eval = ln.forward(&x, Mode::Eval)?;
        let max = |t: Tensor| t.abs()?.max_all()?.to_scalar::<f32>();
        assert!(max((&fused - &composed)?)? < 1e-5);
        assert!(max((&eval - &composed)?)? < 1e-5);

        // A loss that weighs every output differently.
        let weights = (Tensor::arange(0f32, 600., &dev)?.reshape((5, 3, 40))? / 100.)?.cos()?;
        let g1 = (fused * &weights)?.sum_all()?.backward()?;
        let g2 = (composed * &weights)?.sum_all()?.backward()?;
        for (name, v) in [
            ("x", x.as_tensor()),
            ("gamma", w.as_tensor()),
            ("beta", b.as_tensor()),
        ] {
            let (a, b) = (g1.get(v).expect("grad"), g2.get(v).expect("grad"));
            assert_eq!(a.dims(), b.dims());
            let err = max((a - b)?)? / max(b.clone())?;
            assert!(err < 1e-4, "{name}: relative error {err}");
        }
        Ok(())
    }
}
