//! Adam with PyTorch's update rule, fused into one pass per parameter, and StepLR.
//!
//! ```text
//! m ← β₁m + (1−β₁)g    v ← β₂v + (1−β₂)g²
//! p ← p − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)
//! ```
//! candle-nn's `Adam` runs about ten tensor ops per parameter per step; on the student's
//! 160k-entry embedding that costs more than the whole forward pass, so the update is one loop
//! over host slices here ([`SliceAdam`], which the fused step also uses). The moments are
//! plain vectors, saved with the checkpoint for resume.

use std::collections::HashMap;

use std::cell::RefCell;

use rayon::prelude::*;

use candle_core::{backprop::GradStore, CpuStorage, InplaceOp2, Layout, Result, Tensor, Var};

/// Adam's hyper-parameters (PyTorch defaults).
#[derive(Clone, Copy, Debug)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
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

/// Adam over named parameters held as plain `f32` slices: the update and the state that a
/// checkpoint saves. [`Adam`] applies it to candle variables, the fused step to its own
/// vectors; both save the same tensors, so a run resumes on either.
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

    /// Counts a step and returns its constants.
    fn begin_step(&mut self) -> Hyper {
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        Hyper {
            b1: c.beta1 as f32,
            b2: c.beta2 as f32,
            one_minus_b1: (1.0 - c.beta1) as f32,
            one_minus_b2: (1.0 - c.beta2) as f32,
            step_size: (c.lr / bc1) as f32,
            inv_sqrt_bc2: (1.0 / bc2.sqrt()) as f32,
            eps: c.eps as f32,
        }
    }

    /// One update of every parameter: `params` yields `(values, gradient)` in the order the
    /// parameters were named.
    ///
    /// # Panics
    /// If a slice's length is not its parameter's size, or the count differs.
    pub fn step<'a>(&mut self, params: impl IntoIterator<Item = (&'a mut [f32], &'a [f32])>) {
        let hp = self.begin_step();
        let mut seen = 0;
        for (slot, (p, g)) in self.slots.iter_mut().zip(params) {
            assert!(
                p.len() == slot.m.len() && g.len() == slot.m.len(),
                "adam: `{}` has {} values and {} gradients, not {}",
                slot.name,
                p.len(),
                g.len(),
                slot.m.len()
            );
            hp.update(p, &mut slot.m, &mut slot.v, g);
            seen += 1;
        }
        assert_eq!(seen, self.slots.len(), "adam: one slice per parameter");
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
        let hp = self.inner.begin_step();
        for (slot, var) in self.inner.slots.iter_mut().zip(&self.vars) {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            if var.device().is_cpu() {
                let op = AdamUpdate {
                    hp,
                    moments: RefCell::new((&mut slot.m, &mut slot.v)),
                };
                var.as_tensor().inplace_op2(&grad.contiguous()?, &op)?;
            } else {
                // Other devices: through the host (correct, not fast).
                let g = grad.flatten_all()?.to_vec1::<f32>()?;
                let mut p = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
                hp.update(&mut p, &mut slot.m, &mut slot.v, &g);
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

/// The per-step constants of the update.
#[derive(Clone, Copy)]
struct Hyper {
    b1: f32,
    b2: f32,
    /// `1 − β` computed in f64 as PyTorch does (in f32, `1 − 0.999` is off by 5e-5).
    one_minus_b1: f32,
    one_minus_b2: f32,
    step_size: f32,
    inv_sqrt_bc2: f32,
    eps: f32,
}

/// Parameters at least this large are updated on all cores: the embedding's four arrays
/// (parameter, gradient, two moments) overflow one core's L2 cache but fit in two.
const PARALLEL_MIN: usize = 1 << 16;

impl Hyper {
    /// One Adam update, split across threads for large parameters.
    fn update(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        if p.len() < PARALLEL_MIN {
            return self.update_serial(p, m, v, g);
        }
        let chunk = p.len().div_ceil(rayon::current_num_threads().max(1));
        p.par_chunks_mut(chunk)
            .zip(m.par_chunks_mut(chunk))
            .zip(v.par_chunks_mut(chunk))
            .zip(g.par_chunks(chunk))
            .for_each(|(((p, m), v), g)| self.update_serial(p, m, v, g));
    }

    fn update_serial(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features were just detected on this CPU.
            return unsafe { self.update_avx2(p, m, v, g) };
        }
        self.update_generic(p, m, v, g)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn update_avx2(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        self.update_generic(p, m, v, g)
    }

    /// The update over equal-length slices (indexed so the loop vectorises).
    #[inline(always)]
    fn update_generic(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        let n = p.len();
        let (m, v, g) = (&mut m[..n], &mut v[..n], &g[..n]);
        for i in 0..n {
            let gi = g[i];
            m[i] = self.b1 * m[i] + self.one_minus_b1 * gi;
            v[i] = self.b2 * v[i] + self.one_minus_b2 * gi * gi;
            p[i] -= self.step_size * m[i] / (v[i].sqrt() * self.inv_sqrt_bc2 + self.eps);
        }
    }
}

/// Adam as an in-place candle op on a CPU parameter: no copies of the parameter or gradient.
struct AdamUpdate<'a> {
    hp: Hyper,
    moments: RefCell<(&'a mut Vec<f32>, &'a mut Vec<f32>)>,
}

impl InplaceOp2 for AdamUpdate<'_> {
    fn name(&self) -> &'static str {
        "adam-update"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let (Some((p0, p1)), Some((g0, g1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("adam-update: parameter and gradient must be contiguous");
        };
        let g = &s2.as_slice::<f32>()?[g0..g1];
        let p = match s1 {
            CpuStorage::F32(p) => &mut p[p0..p1],
            _ => candle_core::bail!("adam-update: f32 parameters only"),
        };
        if g.len() != p.len() {
            candle_core::bail!(
                "adam-update: gradient size {} ≠ parameter size {}",
                g.len(),
                p.len()
            );
        }
        let mut moments = self.moments.borrow_mut();
        let (m, v) = &mut *moments;
        self.hp.update(p, m, v, g);
        Ok(())
    }
}
