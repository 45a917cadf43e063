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
//! dozen passes over 22M values per step. On the CPU the update is one fused in-place pass
//! (candle's `InplaceOp2`); other devices use the tensor-op composition.

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, CustomOp1, InplaceOp2, Layout, Shape, Tensor, Var};
use rayon::prelude::*;

use crate::error::Result;

/// AdamW hyperparameters (PyTorch's defaults, weight decay 0.01 as in transformers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

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
                    let (g, rows) = match g {
                        Grad::Dense(g) => (g.contiguous()?, None),
                        Grad::Rows(rows, values) => (values.contiguous()?, Some(rows)),
                    };
                    let kernel = FusedAdamW {
                        rows,
                        m: std::sync::Mutex::new(m),
                        v: std::sync::Mutex::new(v),
                        decay: (1.0 - lr * wd) as f32,
                        beta1: c.beta1 as f32,
                        beta2: c.beta2 as f32,
                        eps: c.eps as f32,
                        step_size: (lr / bc1) as f32,
                        inv_sqrt_bc2: (1.0 / bc2.sqrt()) as f32,
                        grad_scale: grad_scale as f32,
                    };
                    slot.var.as_tensor().inplace_op2(&g, &kernel)?;
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
/// [`crate::layers::WordRows`]); every other row's gradient is zero.
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
        let Some((start, end)) = l.contiguous_offsets() else {
            candle_core::bail!("sum-of-squares needs a contiguous tensor")
        };
        let x = &s.as_slice::<f32>()?[start..end];
        let sum: f64 = x
            .chunks(4096)
            .map(|c| c.iter().map(|v| v * v).sum::<f32>() as f64)
            .sum();
        Ok((CpuStorage::F32(vec![sum as f32]), Shape::from(())))
    }
}

/// The fused AdamW update of one parameter (see the module doc), in place. With `rows`,
/// the gradient holds only those rows of the parameter (the others' gradient is zero).
struct FusedAdamW<'a> {
    rows: Option<&'a [u32]>,
    m: std::sync::Mutex<&'a mut Vec<f32>>,
    v: std::sync::Mutex<&'a mut Vec<f32>>,
    decay: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    step_size: f32,
    inv_sqrt_bc2: f32,
    grad_scale: f32,
}

impl FusedAdamW<'_> {
    #[inline]
    fn update(&self, p: &mut [f32], g: Option<&[f32]>, m: &mut [f32], v: &mut [f32]) {
        let (b1, b2) = (self.beta1, self.beta2);
        match g {
            Some(g) => {
                for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                    let g = g * self.grad_scale;
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    *p = *p * self.decay
                        - self.step_size * *m / (v.sqrt() * self.inv_sqrt_bc2 + self.eps);
                }
            }
            None => {
                for ((p, m), v) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()) {
                    *m *= b1;
                    *v *= b2;
                    *p = *p * self.decay
                        - self.step_size * *m / (v.sqrt() * self.inv_sqrt_bc2 + self.eps);
                }
            }
        }
    }

    /// Updates a block of whole rows starting at row `first`; `grad` is the full gradient
    /// (dense) or the sparse rows' values.
    fn update_block(
        &self,
        first: usize,
        width: usize,
        p: &mut [f32],
        grad: &[f32],
        m: &mut [f32],
        v: &mut [f32],
    ) {
        let Some(rows) = self.rows else {
            let start = first * width;
            return self.update(p, Some(&grad[start..start + p.len()]), m, v);
        };
        let last = first + p.len() / width;
        let mut k = rows.partition_point(|&r| (r as usize) < first);
        for r in first..last {
            let range = (r - first) * width..(r - first + 1) * width;
            let g = if k < rows.len() && rows[k] as usize == r {
                k += 1;
                Some(&grad[(k - 1) * width..k * width])
            } else {
                None
            };
            self.update(
                &mut p[range.clone()],
                g,
                &mut m[range.clone()],
                &mut v[range],
            );
        }
    }
}

impl InplaceOp2 for FusedAdamW<'_> {
    fn name(&self) -> &'static str {
        "fused-adamw"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (Some((p0, p1)), Some((g0, g1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("fused-adamw needs contiguous tensors")
        };
        let CpuStorage::F32(p) = s1 else {
            candle_core::bail!("fused-adamw needs f32 parameters")
        };
        let p = &mut p[p0..p1];
        let g = &s2.as_slice::<f32>()?[g0..g1];
        let mut m = self
            .m
            .lock()
            .map_err(|_| candle_core::Error::Msg("poisoned".into()))?;
        let mut v = self
            .v
            .lock()
            .map_err(|_| candle_core::Error::Msg("poisoned".into()))?;
        let width = match self.rows {
            None => 1,
            Some(rows) => {
                let width = l1.dims().last().copied().unwrap_or(1).max(1);
                if rows.len() * width != g.len()
                    || rows.iter().any(|&r| r as usize * width >= p.len())
                {
                    candle_core::bail!("fused-adamw: sparse rows do not fit the parameter")
                }
                width
            }
        };
        if (self.rows.is_none() && p.len() != g.len()) || p.len() != m.len() || p.len() != v.len() {
            candle_core::bail!("fused-adamw: parameter, gradient and state sizes differ")
        }
        // Whole rows per task, about 64k values each.
        let block = (65_536 / width).max(1) * width;
        p.par_chunks_mut(block)
            .zip(m.par_chunks_mut(block).zip(v.par_chunks_mut(block)))
            .enumerate()
            .for_each(|(i, (p, (m, v)))| self.update_block(i * block / width, width, p, g, m, v));
        Ok(())
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
