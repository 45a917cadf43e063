//! Softmax over the last dim: `softmax(x)ᵢ = exp(xᵢ − m) / Σⱼ exp(xⱼ − m)`, with `m` the
//! row maximum for numerical range; `(…, n)` → `(…, n)`.
//!
//! [`Mode::Eval`] uses candle's fused kernel, which has no backward. The differentiable
//! path detaches `m`: softmax does not depend on it, so no gradient is lost, and the
//! backward pass skips the max reduction.

use candle_core::{Result, Tensor, D};

use super::Mode;

/// Softmax over the last dim, fused or differentiable as `mode` asks.
pub fn softmax_last_dim(x: &Tensor, mode: Mode) -> Result<Tensor> {
    if !mode.differentiable() {
        return candle_nn::ops::softmax_last_dim(&x.contiguous()?);
    }
    let max = x.max_keepdim(D::Minus1)?.detach();
    let exp = x.broadcast_sub(&max)?.exp()?;
    let sum = exp.sum_keepdim(D::Minus1)?;
    exp.broadcast_div(&sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn both_paths_agree_and_gradients_flow() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::new(&[[1f32, 2., 3.], [-1e3, 0., 5.]], &dev)?)?;
        let fused = softmax_last_dim(&x, Mode::Eval)?;
        let composed = softmax_last_dim(&x, Mode::Grad)?;
        let diff = (&fused - &composed)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-6, "{diff}");
        // d/dx of p₀ (first row) is p₀(δ − p): compare with the closed form.
        let p = composed.to_vec2::<f32>()?;
        let grads = composed.get(0)?.get(0)?.backward()?;
        let g = grads.get(&x).expect("gradient").to_vec2::<f32>()?;
        for j in 0..3 {
            let expected = p[0][0] * (f32::from(j == 0) - p[0][j]);
            assert!((g[0][j] - expected).abs() < 1e-6, "{j}: {} vs {expected}", g[0][j]);
        }
        Ok(())
    }
}
