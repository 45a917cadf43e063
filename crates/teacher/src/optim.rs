//! AdamW with decoupled weight decay for part of the parameters, global-norm gradient
//! clipping and the linear warm-up/decay schedule, as transformers' `Trainer` uses them.
//!
//! For each parameter `p` with gradient `g` (already scaled by the clipping factor
//! `min(1, max_norm / ‖g‖₂)`, the norm taken over all gradients), at step `t ≥ 1`:
//!
//! ```text
//! p ← p · (1 − lr·λ)                       (λ = weight decay; 0 for biases and LayerNorm weights)
//! m ← β₁ m + (1 − β₁) g
//! v ← β₂ v + (1 − β₂) g²
//! p ← p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
//! ```
//!
//! This is `torch.optim.AdamW`. candle-nn's `AdamW` decays every variable, so it cannot
//! exempt biases and LayerNorm weights; and composing the update from tensor ops costs a
//! dozen passes over 22M values per step. On the CPU the update is `distill_ops`' fused
//! AdamW kernel, run in place on each parameter's storage (candle's `InplaceOp2`; the word
//! embeddings through its sparse-row mode); other devices use the tensor-op composition.

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor, Var};
use distill_ops::adamw::StepRule;
use distill_ops::host;

use crate::error::Result;

/// AdamW hyperparameters: `torch.optim.AdamW`'s defaults (weight decay 0.01, as in
/// transformers).
pub use distill_ops::adamw::AdamWConfig;

/// The moment estimates of one parameter.
enum Moments {
    /// Host vectors updated in place by the fused kernel.
    Host { m: Vec<f32>, v: Vec<f32> },
    /// Device tensors, updated by tensor ops.
    Device { m: Tensor, v: Tensor },
}

struct Slot {
    var: Var,
    decay: bool,
    moments: Moments,
}

/// AdamW over named variables; names decide which ones are decayed.
pub struct AdamW {
    cfg: AdamWConfig,
    slots: Vec<Slot>,
    step: u64,
}

/// transformers' rule: no weight decay for biases and LayerNorm weights.
pub fn decays(name: &str) -> bool {
    !(name.ends_with(".bias") || name.contains("LayerNorm."))
}

impl AdamW {
    /// An optimiser over `params` (name, variable); state starts at zero.
    pub fn new<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a Var)>,
        cfg: AdamWConfig,
    ) -> Result<Self> {
        let slots = params
            .into_iter()
            .map(|(name, var)| {
                let moments = if var.device().is_cpu() {
                    let n = var.elem_count();
                    Moments::Host {
                        m: vec![0.0; n],
                        v: vec![0.0; n],
                    }
                } else {
                    Moments::Device {
                        m: var.zeros_like()?,
                        v: var.zeros_like()?,
                    }
                };
                Ok(Slot {
                    var: var.clone(),
                    decay: decays(name),
                    moments,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            cfg,
            slots,
            step: 0,
        })
    }

    /// Number of decayed and exempt parameter tensors.
    pub fn group_sizes(&self) -> (usize, usize) {
        let decayed = self.slots.iter().filter(|s| s.decay).count();
        (decayed, self.slots.len() - decayed)
    }

    /// The global L2 norm of the gradients of the optimised variables.
    pub fn grad_norm(&self, grads: &GradStore, sparse: Option<&SparseGrad>) -> Result<f64> {
        let mut total = 0f64;
        for slot in &self.slots {
            let g = match gradient(&slot.var, grads, sparse) {
                None => None,
                Some(Grad::Dense(g)) => Some(g),
                Some(Grad::Rows(_, values)) => Some(values),
            };
            if let Some(g) = g {
                let sq = if g.device().is_cpu() {
                    g.apply_op1_no_bwd(&SumOfSquares)?
                } else {
                    g.sqr()?.sum_all()?
                };
                total += sq.to_scalar::<f32>()? as f64;
            }
        }
        Ok(total.sqrt())
    }

    /// One update at learning rate `lr`, with gradients scaled by `grad_scale` (the
    /// clipping factor). Variables without a gradient are left alone, as in PyTorch.
    pub fn step(
        &mut self,
        grads: &GradStore,
        lr: f64,
        grad_scale: f64,
        sparse: Option<&SparseGrad>,
    ) -> Result<()> {
        self.step += 1;
        let c = self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.step as i32);
        let bc2 = 1.0 - c.beta2.powi(self.step as i32);
        for slot in &mut self.slots {
            let Some(g) = gradient(&slot.var, grads, sparse) else {
                continue;
            };
            let wd = if slot.decay { c.weight_decay } else { 0.0 };
            match &mut slot.moments {
                Moments::Host { m, v } => {
                    let rule =
                        StepRule::new(&c, self.step, lr, slot.decay).with_grad_scale(grad_scale);
                    // In place on the parameter's storage; the word embeddings through the
                    // sparse-row mode (every row moves, only some have a gradient).
                    let param = slot.var.as_tensor();
                    let width = param.dims().last().copied().unwrap_or(1);
                    let (g, rows) = match g {
                        Grad::Dense(g) => (g.contiguous()?, None),
                        Grad::Rows(rows, values) => (values.contiguous()?, Some(rows)),
                    };
                    host::in_place_with(param, &g, "fused-adamw", |p, g| {
                        Ok(match rows {
                            None => rule.dense(p, m, v, g),
                            Some(rows) => rule.rows(p, m, v, width, rows, g),
                        }?)
                    })?;
                }
                Moments::Device { m, v } => {
                    let g = match g {
                        Grad::Dense(g) => (g * grad_scale)?,
                        Grad::Rows(rows, values) => {
                            let index = Tensor::new(rows, values.device())?;
                            (slot.var.zeros_like()?.index_add(&index, values, 0)? * grad_scale)?
                        }
                    };
                    *m = ((&*m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
                    *v = ((&*v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
                    let denom = ((v.sqrt()? / bc2.sqrt())? + c.eps)?;
                    let p = (slot.var.as_tensor() * (1.0 - lr * wd))?;
                    let p = (p - ((&*m / denom)? * (lr / bc1))?)?;
                    slot.var.set(&p)?;
                }
            }
        }
        Ok(())
    }
}

/// A gradient known only on some rows of a matrix parameter (the word embeddings, see
/// [`crate::WordRows`]); every other row's gradient is zero.
#[derive(Debug, Clone, Copy)]
pub struct SparseGrad<'a> {
    /// The parameter, `(rows, width)`.
    pub var: &'a Var,
    /// Sorted, distinct row indices.
    pub rows: &'a [u32],
    /// `(rows.len(), width)`.
    pub values: &'a Tensor,
}

enum Grad<'a> {
    Dense(&'a Tensor),
    Rows(&'a [u32], &'a Tensor),
}

fn gradient<'a>(
    var: &Var,
    grads: &'a GradStore,
    sparse: Option<&SparseGrad<'a>>,
) -> Option<Grad<'a>> {
    match sparse {
        Some(s) if s.var.as_tensor().id() == var.as_tensor().id() => {
            Some(Grad::Rows(s.rows, s.values))
        }
        _ => grads.get(var.as_tensor()).map(Grad::Dense),
    }
}

/// Clipping factor for a gradient norm: `min(1, max_norm / (norm + 1e-6))` (PyTorch's).
pub fn clip_factor(norm: f64, max_norm: f64) -> f64 {
    (max_norm / (norm + 1e-6)).min(1.0)
}

/// Linear warm-up from 0 to the peak over `warmup` steps, then linear decay to 0 at
/// `total` (transformers' `get_linear_schedule_with_warmup`); `step` counts from 0.
#[derive(Debug, Clone, Copy)]
pub struct LinearSchedule {
    pub peak: f64,
    pub warmup: usize,
    pub total: usize,
}

impl LinearSchedule {
    /// `warmup = ⌈ratio · total⌉`, as transformers computes it.
    pub fn with_ratio(peak: f64, ratio: f64, total: usize) -> Self {
        Self {
            peak,
            warmup: (ratio * total as f64).ceil() as usize,
            total,
        }
    }

    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup {
            self.peak * step as f64 / self.warmup.max(1) as f64
        } else {
            let left = self.total.saturating_sub(step) as f64;
            self.peak * (left / self.total.saturating_sub(self.warmup).max(1) as f64).max(0.0)
        }
    }
}

/// `Σ x²` of a contiguous f32 tensor, as a scalar.
struct SumOfSquares;

impl CustomOp1 for SumOfSquares {
    fn name(&self) -> &'static str {
        "sum-of-squares"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = host::slice(s, l, self.name())?;
        let sum: f64 = x
            .chunks(4096)
            .map(|c| c.iter().map(|v| v * v).sum::<f32>() as f64)
            .sum();
        Ok((CpuStorage::F32(vec![sum as f32]), Shape::from(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn fused_update_is_torch_adamw() -> Result<()> {
        let p0 = [0.5f32, -1.0, 2.0];
        let g = [0.1f32, -0.2, 0.0];
        let w = Var::from_slice(&p0, 3, &Device::Cpu)?;
        let b = Var::from_slice(&p0, 3, &Device::Cpu)?;
        let mut opt = AdamW::new(
            [("layer.weight", &w), ("layer.bias", &b)],
            AdamWConfig::default(),
        )?;
        assert_eq!(opt.group_sizes(), (1, 1));
        let (lr, scale) = (0.01, 0.5);
        for step in 1..=2 {
            let loss = ((w.as_tensor() * Tensor::new(&g, &Device::Cpu)?)?.sum_all()?
                + (b.as_tensor() * Tensor::new(&g, &Device::Cpu)?)?.sum_all()?)?;
            let grads = loss.backward()?;
            opt.step(&grads, lr, scale, None)?;
            // Reference, in f64, after `step` identical steps.
            let (b1, b2, eps, wd) = (0.9f64, 0.999f64, 1e-8, 0.01);
            let mut expected = [[0f64; 3]; 2];
            for (k, decay) in [(0, wd), (1, 0.0)] {
                for i in 0..3 {
                    let (mut p, mut m, mut v) = (p0[i] as f64, 0.0, 0.0);
                    for t in 1..=step {
                        let gi = g[i] as f64 * scale;
                        p *= 1.0 - lr * decay;
                        m = b1 * m + (1.0 - b1) * gi;
                        v = b2 * v + (1.0 - b2) * gi * gi;
                        let denom = v.sqrt() / (1.0 - b2.powi(t)).sqrt() + eps;
                        p -= lr / (1.0 - b1.powi(t)) * m / denom;
                    }
                    expected[k][i] = p;
                }
            }
            for (k, var) in [(0, &w), (1, &b)] {
                let got = var.as_tensor().to_vec1::<f32>()?;
                for i in 0..3 {
                    assert!(
                        (got[i] as f64 - expected[k][i]).abs() < 1e-6,
                        "step {step} {k} {i}: {} vs {}",
                        got[i],
                        expected[k][i]
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn sparse_rows_update_like_the_dense_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let init = Tensor::arange(0f32, 12., &dev)?.reshape((4, 3))?;
        let (dense_var, sparse_var) = (Var::from_tensor(&init)?, Var::from_tensor(&init)?);
        let mut dense_opt = AdamW::new([("w", &dense_var)], AdamWConfig::default())?;
        let mut sparse_opt = AdamW::new([("w", &sparse_var)], AdamWConfig::default())?;
        let rows = [1u32, 3];
        let values = Tensor::new(&[[0.5f32, -1., 2.], [0.1, 0.2, 0.3]], &dev)?;
        let full = init
            .zeros_like()?
            .index_add(&Tensor::new(&rows, &dev)?, &values, 0)?;
        for step in 0..3 {
            // The dense gradient of Σ w·full is `full`.
            let grads = (dense_var.as_tensor() * &full)?.sum_all()?.backward()?;
            let empty = (sparse_var.as_tensor().detach() * 0.)?
                .sum_all()?
                .backward()?;
            let sparse = SparseGrad {
                var: &sparse_var,
                rows: &rows,
                values: &values,
            };
            let (n1, n2) = (
                dense_opt.grad_norm(&grads, None)?,
                sparse_opt.grad_norm(&empty, Some(&sparse))?,
            );
            assert!((n1 - n2).abs() < 1e-6, "{n1} vs {n2}");
            // After the first step, rows without gradient still move (momentum, decay).
            dense_opt.step(&grads, 0.1, 0.7, None)?;
            sparse_opt.step(&empty, 0.1, 0.7, Some(&sparse))?;
            let diff = (dense_var.as_tensor() - sparse_var.as_tensor())?
                .abs()?
                .max_all()?
                .to_scalar::<f32>()?;
            assert!(diff < 1e-6, "step {step}: {diff}");
        }
        Ok(())
    }

    #[test]
    fn grad_norm_and_clipping() -> Result<()> {
        let w = Var::from_slice(&[1f32, 2.0], 2, &Device::Cpu)?;
        let opt = AdamW::new([("w", &w)], AdamWConfig::default())?;
        let grads = (w.as_tensor() * Tensor::new(&[3f32, 4.0], &Device::Cpu)?)?
            .sum_all()?
            .backward()?;
        let norm = opt.grad_norm(&grads, None)?;
        assert!((norm - 5.0).abs() < 1e-6);
        assert!((clip_factor(norm, 1.0) - 0.2).abs() < 1e-6);
        assert_eq!(clip_factor(0.5, 1.0), 1.0);
        Ok(())
    }

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        let s = LinearSchedule::with_ratio(1.0, 0.06, 100);
        assert_eq!(s.warmup, 6);
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(3) - 0.5).abs() < 1e-12);
        assert_eq!(s.lr(6), 1.0);
        assert!((s.lr(53) - 0.5).abs() < 1e-12);
        assert_eq!(s.lr(100), 0.0);
        assert!(decays("bert.encoder.layer.0.attention.self.query.weight"));
        assert!(decays("bert.embeddings.word_embeddings.weight"));
        assert!(!decays("bert.encoder.layer.0.output.LayerNorm.weight"));
        assert!(!decays("classifier.bias"));
    }
}
