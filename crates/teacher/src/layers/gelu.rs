//! GELU with the exact normal CDF, `gelu(x) = x · Φ(x) = ½ x (1 + erf(x / √2))`, and its
//! derivative `gelu'(x) = Φ(x) + x · φ(x)`, `φ(x) = exp(−x²/2) / √(2π)`; any shape.
//!
//! candle's `gelu_erf` calls libm's scalar `erf` per element, which costs as much as the
//! feed-forward matmuls on this CPU, and its backward is a chain of eight tensor ops. Here
//! `erf` is the rational approximation used by Eigen and XLA (x·P(x²)/Q(x²) on
//! [−4, 4], absolute error below 1e-6 in f32) and `exp` is [`distill_ops::math::exp`], both
//! plain arithmetic that the compiler vectorises; forward and
//! backward are one pass each, spread over candle's thread pool. Other devices keep
//! candle's ops.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use distill_ops::host;
use distill_ops::math::exp;
use rayon::prelude::*;

/// Elements per parallel task.
const CHUNK: usize = 16 * 1024;

/// `gelu(x)` with a backward pass.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        x.apply_op1(Gelu)
    } else {
        x.gelu_erf()
    }
}

/// `erf(x)` for f32, absolute error < 1e-6.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_6e-3;
    p = x2 * p + -1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329e-3;
    q = x2 * q + -1.426_474e-2;
    x * p / q
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / √(2π).
const INV_SQRT_2PI: f32 = 0.398_942_3;

fn map(s: &CpuStorage, l: &Layout, f: impl Fn(f32) -> f32 + Sync) -> Result<(CpuStorage, Shape)> {
    let x = host::slice(s, l, "gelu")?;
    let mut y = vec![0f32; x.len()];
    let run = |y: &mut [f32], x: &[f32]| apply(&f, y, x);
    // Inside a rayon task (batches run in parallel) the cores are already busy.
    if x.len() <= CHUNK || rayon::current_thread_index().is_some() {
        run(&mut y, x);
    } else {
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| run(y, x));
    }
    Ok((CpuStorage::F32(y), l.shape().clone()))
}

/// `y = f(x)` elementwise. Slices in, slices out, so the loop vectorises (collecting an
/// iterator instead, through rayon's `flat_map_iter`, made fine-tuning steps 10 % slower);
/// the default x86-64 target only assumes SSE2, so a copy compiled for AVX2 + FMA runs
/// where the CPU has them.
fn apply<F: Fn(f32) -> f32>(f: &F, y: &mut [f32], x: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the features were just detected on this CPU.
        return unsafe { apply_avx2(f, y, x) };
    }
    apply_generic(f, y, x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn apply_avx2<F: Fn(f32) -> f32>(f: &F, y: &mut [f32], x: &[f32]) {
    apply_generic(f, y, x)
}

#[inline(always)]
fn apply_generic<F: Fn(f32) -> f32>(f: &F, y: &mut [f32], x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = f(x);
    }
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu-erf"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        map(s, l, |x| 0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2)))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let slope = arg.contiguous()?.apply_op1_no_bwd(&GeluSlope)?;
        Ok(Some(grad_res.mul(&slope)?))
    }
}

/// `gelu'(x)`, for the backward pass.
struct GeluSlope;

impl CustomOp1 for GeluSlope {
    fn name(&self) -> &'static str {
        "gelu-erf-slope"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        map(s, l, |x| {
            let cdf = 0.5 * (1.0 + erf(x * FRAC_1_SQRT_2));
            cdf + x * INV_SQRT_2PI * exp(-0.5 * x * x)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn erf_is_accurate() {
        for i in -4000..=4000 {
            let x = i as f32 / 500.0;
            let want = libm_erf(x as f64);
            assert!(
                (erf(x) as f64 - want).abs() < 1e-6,
                "erf({x}) = {} vs {want}",
                erf(x)
            );
        }
    }

    /// erf in f64 by its Taylor series (|x| ≤ 3) or continued fraction, for reference.
    fn libm_erf(x: f64) -> f64 {
        if x.abs() > 3.0 {
            // erfc(x) ≈ exp(−x²)/(x√π) · (1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶))
            let t = 1.0 / (2.0 * x * x);
            let erfc = (-x * x).exp() / (x.abs() * std::f64::consts::PI.sqrt())
                * (1.0 - t + 3.0 * t * t - 15.0 * t * t * t);
            return x.signum() * (1.0 - erfc);
        }
        let (mut term, mut sum, mut n) = (x, x, 0.0);
        while term.abs() > 1e-17 {
            n += 1.0;
            term *= -x * x / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn matches_candle_forward_and_backward() -> Result<()> {
        let x = Var::from_tensor(&(Tensor::arange(-600f32, 600., &Device::Cpu)? / 70.)?)?;
        let ours = gelu_erf(&x)?;
        let theirs = x.gelu_erf()?;
        let diff = (&ours - &theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-6, "forward differs by {diff}");
        let g1 = ours.sqr()?.sum_all()?.backward()?;
        let g2 = theirs.sqr()?.sum_all()?.backward()?;
        let (g1, g2) = (g1.get(&x).expect("grad"), g2.get(&x).expect("grad"));
        let diff = (g1 - g2)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-4, "backward differs by {diff}");
        Ok(())
    }
}
