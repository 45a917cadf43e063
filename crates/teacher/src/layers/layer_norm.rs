//! Layer normalisation over the last dim:
//! `y = (x − μ) / √(σ² + ε) · γ + β`, with `μ` and `σ²` the mean and (biased) variance of
//! each row; `x` `(…, h)`, `γ`, `β` `(h)`, `y` `(…, h)`.
//!
//! [`Mode::Eval`] uses candle's fused kernel; the other modes compose the same formula from
//! differentiable ops, since the fused kernel has no backward (and `candle_nn::LayerNorm`
//! takes that kernel whenever its input is contiguous).

use candle_core::{Result, Tensor, D};

use super::Mode;

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
        if mode.differentiable() {
            self.forward_diff(x)
        } else {
            candle_nn::ops::layer_norm(&x.contiguous()?, &self.weight, &self.bias, self.eps as f32)
        }
    }

    /// The composed, differentiable path.
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn both_paths_agree_and_the_composed_one_has_gradients() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&(Tensor::arange(0f32, 24., &dev)?.reshape((2, 3, 4))?.sqr()? / 7.)?)?;
        let w = Var::from_tensor(&Tensor::new(&[1f32, 0.5, -2., 3.], &dev)?)?;
        let b = Tensor::new(&[0.1f32, 0.2, 0.3, 0.4], &dev)?;
        let ln = LayerNorm::new(w.as_tensor().clone(), b, 1e-12);
        let fused = ln.forward(&x, Mode::Eval)?;
        let composed = ln.forward(&x, Mode::Grad)?;
        let diff = (fused - &composed)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-4, "fused and composed differ by {diff}");

        let grads = composed.sqr()?.sum_all()?.backward()?;
        let gx = grads.get(&x).expect("gradient reaches the input");
        let gw = grads.get(&w).expect("gradient reaches gamma");
        assert!(gx.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        assert!(gw.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        // A normalised row is shift invariant, so its gradient sums to zero.
        let row_sums = gx.sum(D::Minus1)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(row_sums < 1e-3, "{row_sums}");
        Ok(())
    }
}
