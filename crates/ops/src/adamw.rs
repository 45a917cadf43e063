//! AdamW with decoupled weight decay, fused into one pass over host slices.
//!
//! For a parameter `p` with gradient `g` scaled by `s` (a clipping factor; 1 without
//! clipping), at step `t ≥ 1` and learning rate `lr`:
//!
//! ```text
//! g ← s·g
//! m ← β₁m + (1−β₁)g                 v ← β₂v + (1−β₂)g²
//! p ← p·(1 − lr·λ) − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)
//! ```
//!
//! `λ` is the weight decay for a decayed tensor and 0 for an exempt one: the weight-decay
//! mask is one flag per tensor ([`StepRule::new`]'s `decay`). With `λ = 0` this is
//! `torch.optim.Adam`, otherwise `torch.optim.AdamW`.
//!
//! One rule for precision: the values are f32, the step's constants (`1−β`, the bias
//! corrections, `lr/(1−β₁ᵗ)`, `1 − lr·λ`) are computed in f64 and rounded to f32 once, as
//! PyTorch does with the Python floats it hands its kernels (`1 − 0.999` computed in f32 is
//! off by 5e-5). With `s = 1` and `λ = 0` the scaling and decay multiply by exactly 1.
//!
//! Modes: [`StepRule::dense`] updates a whole tensor; [`StepRule::rows`] takes a gradient
//! known on some rows of a `(rows, width)` table, every other row's gradient being zero,
//! and still moves every row (momentum and decay), so it equals `dense` with the zeros
//! written out; [`crate::lazy::LazyRows`] defers the zero-gradient rows. [`reference_step`]
//! is the plain f64 composition they are tested against.

use rayon::prelude::*;

use crate::error::{check_len, Error, Result};

/// β₁, β₂, ε and the decoupled weight decay λ (`torch.optim.AdamW`'s defaults, as
/// transformers uses them; λ = 0 is Adam).
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

/// The constants of one step for one tensor, rounded to f32 (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepRule {
    pub(crate) b1: f32,
    pub(crate) b2: f32,
    one_minus_b1: f32,
    one_minus_b2: f32,
    /// `lr / (1 − β₁ᵗ)`.
    pub(crate) step_size: f32,
    /// `1 / √(1 − β₂ᵗ)`.
    pub(crate) inv_sqrt_bc2: f32,
    pub(crate) eps: f32,
    /// `1 − lr·λ`.
    pub(crate) decay: f32,
    grad_scale: f32,
}

/// Tensors at least this large are updated on all cores: the embedding's four arrays
/// (parameter, gradient, two moments) overflow one core's L2 cache but fit in two.
const PARALLEL_MIN: usize = 1 << 16;

impl StepRule {
    /// Step `t` (1-based) at learning rate `lr`, for a tensor that is decayed (`decay`, by
    /// `config.weight_decay`) or exempt; gradients unscaled.
    pub fn new(config: &AdamWConfig, t: u64, lr: f64, decay: bool) -> Self {
        let t = t.min(i32::MAX as u64) as i32;
        let wd = if decay { config.weight_decay } else { 0.0 };
        Self {
            b1: config.beta1 as f32,
            b2: config.beta2 as f32,
            one_minus_b1: (1.0 - config.beta1) as f32,
            one_minus_b2: (1.0 - config.beta2) as f32,
            step_size: (lr / (1.0 - config.beta1.powi(t))) as f32,
            inv_sqrt_bc2: (1.0 / (1.0 - config.beta2.powi(t)).sqrt()) as f32,
            eps: config.eps as f32,
            decay: (1.0 - lr * wd) as f32,
            grad_scale: 1.0,
        }
    }

    /// The same step with gradients multiplied by `scale` (the clipping factor).
    pub fn with_grad_scale(self, scale: f64) -> Self {
        Self {
            grad_scale: scale as f32,
            ..self
        }
    }

    /// Updates `p`, `m`, `v` in place from the gradient `g`; all four the same length.
    pub fn dense(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) -> Result<()> {
        let n = p.len();
        check_len("first moment", n, m.len())?;
        check_len("second moment", n, v.len())?;
        check_len("gradient", n, g.len())?;
        if n < PARALLEL_MIN {
            self.serial(p, m, v, Some(g));
            return Ok(());
        }
        let chunk = n.div_ceil(rayon::current_num_threads().max(1));
        p.par_chunks_mut(chunk)
            .zip(m.par_chunks_mut(chunk))
            .zip(v.par_chunks_mut(chunk))
            .zip(g.par_chunks(chunk))
            .for_each(|(((p, m), v), g)| self.serial(p, m, v, Some(g)));
        Ok(())
    }

    /// Updates a `(p.len() / width, width)` table whose gradient is `values` on `rows`
    /// (sorted, distinct; `values` is `(rows.len(), width)`) and zero on every other row.
    /// Every row moves, as under [`StepRule::dense`] with the zeros written out.
    pub fn rows(
        &self,
        p: &mut [f32],
        m: &mut [f32],
        v: &mut [f32],
        width: usize,
        rows: &[u32],
        values: &[f32],
    ) -> Result<()> {
        let n = p.len();
        check_len("first moment", n, m.len())?;
        check_len("second moment", n, v.len())?;
        if width == 0 || !n.is_multiple_of(width) {
            return Err(Error::Size {
                what: "table (as whole rows of the width)",
                expected: n.div_ceil(width.max(1)) * width.max(1),
                got: n,
            });
        }
        check_len("sparse gradient", rows.len() * width, values.len())?;
        check_rows(rows, n / width)?;
        if n < PARALLEL_MIN {
            self.rows_block(0, width, p, m, v, rows, values);
            return Ok(());
        }
        let threads = rayon::current_num_threads().max(1);
        let block = (n / width).div_ceil(threads).max(1) * width;
        p.par_chunks_mut(block)
            .zip(m.par_chunks_mut(block).zip(v.par_chunks_mut(block)))
            .enumerate()
            .for_each(|(i, (p, (m, v)))| {
                self.rows_block(i * block / width, width, p, m, v, rows, values)
            });
        Ok(())
    }

    /// One element. `None` is a zero gradient: `β₁m + (1−β₁)·0` is `β₁m` exactly, so both
    /// branches give the same values.
    #[inline(always)]
    fn lane(&self, p: &mut f32, m: &mut f32, v: &mut f32, g: Option<f32>) {
        match g {
            Some(g) => {
                let g = g * self.grad_scale;
                *m = self.b1 * *m + self.one_minus_b1 * g;
                *v = self.b2 * *v + self.one_minus_b2 * g * g;
            }
            None => {
                *m *= self.b1;
                *v *= self.b2;
            }
        }
        *p = *p * self.decay - self.step_size * *m / (v.sqrt() * self.inv_sqrt_bc2 + self.eps);
    }

    /// One thread's update of equal-length slices; `g: None` is a zero gradient.
    pub(crate) fn serial(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: Option<&[f32]>) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features were just detected on this CPU.
            return unsafe { self.serial_avx2(p, m, v, g) };
        }
        self.serial_generic(p, m, v, g)
    }

    /// The default x86-64 target only assumes SSE2; this copy runs 8 lanes wide.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn serial_avx2(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: Option<&[f32]>) {
        self.serial_generic(p, m, v, g)
    }

    /// Indexed loops over re-sliced equal lengths, so that they vectorise.
    #[inline(always)]
    fn serial_generic(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: Option<&[f32]>) {
        let n = p.len();
        let (m, v) = (&mut m[..n], &mut v[..n]);
        match g {
            Some(g) => {
                let g = &g[..n];
                for i in 0..n {
                    self.lane(&mut p[i], &mut m[i], &mut v[i], Some(g[i]));
                }
            }
            None => {
                for i in 0..n {
                    self.lane(&mut p[i], &mut m[i], &mut v[i], None);
                }
            }
        }
    }

    /// Whole rows starting at row `first`; `rows`/`values` are the whole sparse gradient.
    #[allow(clippy::too_many_arguments)]
    fn rows_block(
        &self,
        first: usize,
        width: usize,
        p: &mut [f32],
        m: &mut [f32],
        v: &mut [f32],
        rows: &[u32],
        values: &[f32],
    ) {
        let mut k = rows.partition_point(|&r| (r as usize) < first);
        for (i, ((p, m), v)) in p
            .chunks_exact_mut(width)
            .zip(m.chunks_exact_mut(width))
            .zip(v.chunks_exact_mut(width))
            .enumerate()
        {
            if k < rows.len() && rows[k] as usize == first + i {
                self.serial(p, m, v, Some(&values[k * width..(k + 1) * width]));
                k += 1;
            } else {
                self.serial(p, m, v, None);
            }
        }
    }
}

/// `Ok` when `rows` is strictly increasing and below `table_rows`.
fn check_rows(rows: &[u32], table_rows: usize) -> Result<()> {
    for w in rows.windows(2) {
        if w[1] <= w[0] {
            return Err(Error::RowsUnsorted {
                previous: w[0],
                row: w[1],
            });
        }
    }
    match rows.last() {
        Some(&row) if row as usize >= table_rows => Err(Error::RowOutOfRange {
            row,
            rows: table_rows,
        }),
        _ => Ok(()),
    }
}

/// The update of the module doc written out in f64, one element at a time: the oracle of
/// the fused kernels. `t` is the step (1-based), `decay` the tensor's weight-decay flag.
#[allow(clippy::too_many_arguments)]
pub fn reference_step(
    config: &AdamWConfig,
    t: u64,
    lr: f64,
    decay: bool,
    grad_scale: f64,
    p: &mut [f64],
    m: &mut [f64],
    v: &mut [f64],
    g: &[f64],
) {
    let (b1, b2) = (config.beta1, config.beta2);
    let wd = if decay { config.weight_decay } else { 0.0 };
    let t = t as i32;
    for i in 0..p.len() {
        let g = g[i] * grad_scale;
        m[i] = b1 * m[i] + (1.0 - b1) * g;
        v[i] = b2 * v[i] + (1.0 - b2) * g * g;
        let m_hat = m[i] / (1.0 - b1.powi(t));
        let v_hat = v[i] / (1.0 - b2.powi(t));
        p[i] = p[i] * (1.0 - lr * wd) - lr * m_hat / (v_hat.sqrt() + config.eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    /// Steps the f32 kernel and the f64 oracle side by side, decayed and exempt, with and
    /// without a gradient scale, at sizes below and above the parallel threshold.
    #[test]
    fn dense_follows_the_f64_composition() -> Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let config = AdamWConfig {
            weight_decay: 0.01,
            ..AdamWConfig::default()
        };
        for n in [7, PARALLEL_MIN + 13] {
            for (decay, scale) in [(false, 1.0), (true, 1.0), (true, 0.3)] {
                let p0 = random(n, &mut rng);
                let (mut p, mut m, mut v) = (p0.clone(), vec![0f32; n], vec![0f32; n]);
                let mut p64: Vec<f64> = p0.iter().map(|&x| x as f64).collect();
                let (mut m64, mut v64) = (vec![0f64; n], vec![0f64; n]);
                for t in 1..=5u64 {
                    let lr = 0.01 / t as f64;
                    let g = random(n, &mut rng);
                    let g64: Vec<f64> = g.iter().map(|&x| x as f64).collect();
                    StepRule::new(&config, t, lr, decay)
                        .with_grad_scale(scale)
                        .dense(&mut p, &mut m, &mut v, &g)?;
                    reference_step(
                        &config, t, lr, decay, scale, &mut p64, &mut m64, &mut v64, &g64,
                    );
                }
                let worst = p
                    .iter()
                    .zip(&p64)
                    .map(|(&a, &b)| (a as f64 - b).abs())
                    .fold(0.0, f64::max);
                assert!(worst < 1e-6, "n {n} decay {decay} scale {scale}: {worst}");
            }
        }
        Ok(())
    }

    #[test]
    fn weight_decay_is_decoupled_and_masked() -> Result<()> {
        let config = AdamWConfig {
            weight_decay: 0.5,
            ..AdamWConfig::default()
        };
        // A zero gradient on zero moments: only the decay moves p.
        let (mut p, mut m, mut v) = ([2f32], [0f32], [0f32]);
        StepRule::new(&config, 1, 0.1, true).dense(&mut p, &mut m, &mut v, &[0.0])?;
        assert_eq!(p[0], 2.0 * 0.95);
        let (mut p, mut m, mut v) = ([2f32], [0f32], [0f32]);
        StepRule::new(&config, 1, 0.1, false).dense(&mut p, &mut m, &mut v, &[0.0])?;
        assert_eq!(p[0], 2.0);
        Ok(())
    }

    #[test]
    fn sparse_rows_equal_dense_with_the_zeros_written_out() -> Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let config = AdamWConfig {
            weight_decay: 0.01,
            ..AdamWConfig::default()
        };
        // Small (serial) and large (row blocks across threads, rows split unevenly).
        for (table_rows, width) in [(9usize, 3usize), (PARALLEL_MIN / 5 + 7, 5)] {
            let n = table_rows * width;
            let p0 = random(n, &mut rng);
            let (mut pd, mut md, mut vd) = (p0.clone(), vec![0f32; n], vec![0f32; n]);
            let (mut ps, mut ms, mut vs) = (p0, vec![0f32; n], vec![0f32; n]);
            for t in 1..=4u64 {
                let mut rows: Vec<u32> = (0..table_rows as u32)
                    .filter(|_| rng.gen_bool(0.3))
                    .collect();
                if t == 2 {
                    rows.clear(); // a step where no row has a gradient
                }
                let values = random(rows.len() * width, &mut rng);
                let mut dense = vec![0f32; n];
                for (k, &r) in rows.iter().enumerate() {
                    let r = r as usize;
                    dense[r * width..(r + 1) * width]
                        .copy_from_slice(&values[k * width..(k + 1) * width]);
                }
                let rule = StepRule::new(&config, t, 0.05, true).with_grad_scale(0.7);
                rule.dense(&mut pd, &mut md, &mut vd, &dense)?;
                rule.rows(&mut ps, &mut ms, &mut vs, width, &rows, &values)?;
                assert_eq!(pd, ps, "step {t}: parameters");
                assert_eq!((&md, &vd), (&ms, &vs), "step {t}: moments");
            }
        }
        Ok(())
    }

    #[test]
    fn sizes_and_rows_that_do_not_fit_are_refused() {
        let rule = StepRule::new(&AdamWConfig::default(), 1, 0.1, false);
        let (mut p, mut m, mut v) = (vec![0f32; 6], vec![0f32; 6], vec![0f32; 6]);
        assert!(matches!(
            rule.dense(&mut p, &mut m, &mut v, &[0.0; 5]),
            Err(Error::Size {
                what: "gradient",
                expected: 6,
                got: 5
            })
        ));
        assert!(matches!(
            rule.dense(&mut p, &mut m[..5], &mut v, &[0.0; 6]),
            Err(Error::Size {
                what: "first moment",
                ..
            })
        ));
        assert!(rule.rows(&mut p, &mut m, &mut v, 4, &[], &[]).is_err());
        assert!(rule.rows(&mut p, &mut m, &mut v, 0, &[], &[]).is_err());
        assert_eq!(
            rule.rows(&mut p, &mut m, &mut v, 3, &[2], &[0.0; 3]),
            Err(Error::RowOutOfRange { row: 2, rows: 2 })
        );
        assert_eq!(
            rule.rows(&mut p, &mut m, &mut v, 3, &[1, 0], &[0.0; 6]),
            Err(Error::RowsUnsorted {
                previous: 1,
                row: 0
            })
        );
        assert!(rule
            .rows(&mut p, &mut m, &mut v, 3, &[1], &[0.0; 4])
            .is_err());
        // Nothing was touched by the refused calls.
        assert!(p.iter().chain(&m).chain(&v).all(|&x| x == 0.0));
    }

    /// The f64 `1 − β₂` rounded once is the f32 nearest 0.001; computed in f32 it is not.
    #[test]
    fn one_minus_beta_is_rounded_once() {
        let rule = StepRule::new(&AdamWConfig::default(), 1, 1e-3, false);
        assert_eq!(rule.one_minus_b2, 0.001f32);
        assert_ne!(1.0 - 0.999f32, 0.001f32);
    }
}
