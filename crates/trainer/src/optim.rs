//! Adam with PyTorch's update rule over candle variables, and StepLR.
//!
//! ```text
//! m ← β₁m + (1−β₁)g    v ← β₂v + (1−β₂)g²
//! p ← p − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)
//! ```
//! candle-nn's `Adam` runs about ten tensor ops per parameter per step; on the student's
//! 160k-entry embedding that costs more than the whole forward pass, so the update is
//! `distill_ops`' fused AdamW kernel (weight decay 0) run in place on each parameter's
//! storage. This module keeps the candle side: variables, names, and the moments as plain
//! vectors saved with the checkpoint for resume ([`SliceAdam`], which the fused step uses on
//! its own vectors).

use std::collections::HashMap;

use candle_core::{backprop::GradStore, Result, Tensor, Var};
use distill_ops::adamw::{AdamWConfig, StepRule};
use distill_ops::host;

/// Adam's hyper-parameters (PyTorch defaults).
#[derive(Clone, Copy, Debug)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl AdamConfig {
    /// The shared update rule's hyper-parameters: Adam is AdamW without weight decay.
    pub fn rule(&self) -> AdamWConfig {
        AdamWConfig {
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: 0.0,
        }
    }
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// One named parameter's moments.
struct Moments {
    name: String,
    m: Vec<f32>,
    v: Vec<f32>,
}

/// Adam over named parameters held as plain `f32` slices: the moments, the step count and
/// the checkpoint names. [`Adam`] applies it to candle variables, the fused step
/// ([`crate::fused`]) to its own vectors; both save the same tensors, so a run resumes on
/// either.
pub struct SliceAdam {
    config: AdamConfig,
    slots: Vec<Moments>,
    step: u64,
}

impl SliceAdam {
    /// Zero moments for parameters of these names and sizes.
    pub fn new(params: impl IntoIterator<Item = (String, usize)>, config: AdamConfig) -> Self {
        let slots = params
            .into_iter()
            .map(|(name, n)| Moments {
                name,
                m: vec![0.0; n],
                v: vec![0.0; n],
            })
            .collect();
        Self {
            config,
            slots,
            step: 0,
        }
    }

    /// Current learning rate.
    pub fn lr(&self) -> f64 {
        self.config.lr
    }

    /// Sets the learning rate (the scheduler's job).
    pub fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Counts a step and returns its rule (no weight decay).
    fn begin_step(&mut self) -> StepRule {
        self.step += 1;
        StepRule::new(&self.config.rule(), self.step, self.config.lr, false)
    }

    /// One update of every parameter: `params` yields `(values, gradient)` in the order the
    /// parameters were named; a size mismatch is an error.
    pub fn step<'a>(
        &mut self,
        params: impl IntoIterator<Item = (&'a mut [f32], &'a [f32])>,
    ) -> Result<()> {
        let rule = self.begin_step();
        let mut seen = 0;
        for (slot, (p, g)) in self.slots.iter_mut().zip(params) {
            rule.dense(p, &mut slot.m, &mut slot.v, g)
                .map_err(|e| candle_core::Error::Msg(format!("adam `{}`: {e}", slot.name)))?;
            seen += 1;
        }
        if seen != self.slots.len() {
            candle_core::bail!("adam: {seen} tensors for {} parameters", self.slots.len());
        }
        Ok(())
    }

    /// [`SliceAdam::step`] with every tensor cut in two: `run` is given one call for the
    /// first halves and one for the second halves (to run on two threads). Same result.
    pub fn step_in_two<'a>(
        &mut self,
        params: impl IntoIterator<Item = (&'a mut [f32], &'a [f32])>,
        run: impl FnOnce(&mut (dyn FnMut() + Send), &mut (dyn FnMut() + Send)),
    ) -> Result<()> {
        /// One tensor's half: values, first and second moments, gradient.
        type Share<'a> = (&'a mut [f32], &'a mut [f32], &'a mut [f32], &'a [f32]);
        let rule = self.begin_step();
        let count = self.slots.len();
        let (mut first, mut second): (Vec<Share>, Vec<Share>) =
            (Vec::with_capacity(count), Vec::with_capacity(count));
        for (slot, (p, g)) in self.slots.iter_mut().zip(params) {
            let n = slot.m.len();
            if p.len() != n || g.len() != n {
                candle_core::bail!(
                    "adam `{}`: {} values and {} gradients for {n} moments",
                    slot.name,
                    p.len(),
                    g.len()
                );
            }
            let (p0, p1) = p.split_at_mut(n / 2);
            let (m0, m1) = slot.m.split_at_mut(n / 2);
            let (v0, v1) = slot.v.split_at_mut(n / 2);
            let (g0, g1) = g.split_at(n / 2);
            first.push((p0, m0, v0, g0));
            second.push((p1, m1, v1, g1));
        }
        if first.len() != count {
            candle_core::bail!("adam: {} tensors for {count} parameters", first.len());
        }
        let update = |parts: &mut Vec<Share>| {
            for (p, m, v, g) in parts.iter_mut() {
                // Cannot fail: every length was checked above.
                let _ = rule.dense(p, m, v, g);
            }
        };
        run(&mut || update(&mut first), &mut || update(&mut second));
        Ok(())
    }

    /// Moments and step count, as tensors named `m.<param>`, `v.<param>`, `step`, `lr`.
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        let dev = candle_core::Device::Cpu;
        let mut out = HashMap::new();
        for s in &self.slots {
            out.insert(
                format!("m.{}", s.name),
                Tensor::from_slice(&s.m, s.m.len(), &dev)?,
            );
            out.insert(
                format!("v.{}", s.name),
                Tensor::from_slice(&s.v, s.v.len(), &dev)?,
            );
        }
        out.insert("step".into(), Tensor::new(&[self.step as f64], &dev)?);
        out.insert("lr".into(), Tensor::new(&[self.config.lr], &dev)?);
        Ok(out)
    }

    /// Restores what [`SliceAdam::state`] saved.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let get = |k: &str| {
            state
                .get(k)
                .ok_or_else(|| candle_core::Error::Msg(format!("optimizer state lacks `{k}`")))
        };
        for s in &mut self.slots {
            let m = get(&format!("m.{}", s.name))?.to_vec1::<f32>()?;
            let v = get(&format!("v.{}", s.name))?.to_vec1::<f32>()?;
            if m.len() != s.m.len() || v.len() != s.v.len() {
                candle_core::bail!("optimizer state for `{}` has the wrong size", s.name);
            }
            s.m = m;
            s.v = v;
        }
        let scalar =
            |k: &str| {
                get(k)?.to_vec1::<f64>()?.first().copied().ok_or_else(|| {
                    candle_core::Error::Msg(format!("optimizer state `{k}` is empty"))
                })
            };
        self.step = scalar("step")? as u64;
        self.config.lr = scalar("lr")?;
        Ok(())
    }
}

/// Adam over a fixed list of named candle variables.
pub struct Adam {
    inner: SliceAdam,
    vars: Vec<Var>,
}

impl Adam {
    /// Starts with zero moments.
    pub fn new(vars: Vec<(String, Var)>, config: AdamConfig) -> Self {
        let inner = SliceAdam::new(
            vars.iter().map(|(n, v)| (n.clone(), v.elem_count())),
            config,
        );
        Self {
            inner,
            vars: vars.into_iter().map(|(_, v)| v).collect(),
        }
    }

    /// Current learning rate.
    pub fn lr(&self) -> f64 {
        self.inner.lr()
    }

    /// Sets the learning rate (the scheduler's job).
    pub fn set_lr(&mut self, lr: f64) {
        self.inner.set_lr(lr);
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.inner.steps()
    }

    /// Applies one update from `grads`; variables without a gradient are left alone.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        let rule = self.inner.begin_step();
        for (slot, var) in self.inner.slots.iter_mut().zip(&self.vars) {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            let (m, v) = (&mut slot.m, &mut slot.v);
            if var.device().is_cpu() {
                // In place on the parameter's storage: no copies of it or of the gradient.
                host::in_place_with(var.as_tensor(), &grad.contiguous()?, "adam", |p, g| {
                    Ok(rule.dense(p, m, v, g)?)
                })?;
            } else {
                // Other devices: through the host (correct, not fast).
                let g = grad.flatten_all()?.to_vec1::<f32>()?;
                let mut p = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
                rule.dense(&mut p, m, v, &g)?;
                let shape = var.shape().clone();
                var.set(&Tensor::from_vec(p, shape, var.device())?)?;
            }
        }
        Ok(())
    }

    /// Moments and step count, as tensors named `m.<param>`, `v.<param>`, `step`.
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        self.inner.state()
    }

    /// Restores what [`Adam::state`] saved.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        self.inner.load_state(state)
    }
}

/// PyTorch's `StepLR`: multiply the learning rate by `gamma` every `step_size` epochs.
#[derive(Clone, Copy, Debug)]
pub struct StepLr {
    pub base_lr: f64,
    pub gamma: f64,
    pub step_size: usize,
}

impl StepLr {
    /// Learning rate during epoch `epoch` (0-based).
    pub fn lr_at(&self, epoch: usize) -> f64 {
        self.base_lr * self.gamma.powi((epoch / self.step_size.max(1)) as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tensors of odd and even sizes (one of a single value), three steps.
    fn run(split: Option<bool>) -> (Vec<Vec<f32>>, HashMap<String, Tensor>) {
        let sizes = [7usize, 1, 64];
        let mut adam = SliceAdam::new(
            sizes.iter().enumerate().map(|(i, &n)| (format!("p{i}"), n)),
            AdamConfig::default(),
        );
        let mut params: Vec<Vec<f32>> = sizes
            .iter()
            .map(|&n| (0..n).map(|i| (i as f32 * 0.37).sin()).collect())
            .collect();
        for step in 0..3 {
            let grads: Vec<Vec<f32>> = sizes
                .iter()
                .map(|&n| (0..n).map(|i| ((i + step) as f32 * 1.3).cos()).collect())
                .collect();
            let pairs = params
                .iter_mut()
                .zip(&grads)
                .map(|(p, g)| (p.as_mut_slice(), g.as_slice()));
            match split {
                None => adam.step(pairs).unwrap(),
                Some(in_order) => adam
                    .step_in_two(pairs, |a, b| {
                        if in_order {
                            a();
                            b();
                        } else {
                            b();
                            a();
                        }
                    })
                    .unwrap(),
            }
        }
        (params, adam.state().unwrap())
    }

    #[test]
    fn the_update_in_two_halves_equals_the_whole_update() {
        let (whole, state) = run(None);
        for in_order in [true, false] {
            let (halves, halves_state) = run(Some(in_order));
            assert_eq!(whole, halves);
            for (name, t) in &state {
                let values = |t: &Tensor| {
                    t.to_dtype(candle_core::DType::F64)
                        .unwrap()
                        .to_vec1::<f64>()
                        .unwrap()
                };
                assert_eq!(values(t), values(&halves_state[name]), "{name}");
            }
        }
    }

    #[test]
    fn a_gradient_of_the_wrong_size_is_refused() {
        let mut adam = SliceAdam::new([("w".to_string(), 4)], AdamConfig::default());
        let mut p = vec![0.0f32; 4];
        let err = adam
            .step_in_two([(&mut p[..], &[1.0f32; 3][..])], |a, b| {
                a();
                b();
            })
            .unwrap_err();
        assert!(err.to_string().contains("adam `w`"), "{err}");
        assert_eq!(p, [0.0; 4], "nothing moved");
    }
}
