//! Affine layer: `y = x Wᵀ + b` with `W` of shape `(out, in)` (PyTorch's layout) and `b`
//! of shape `(out)`; input `(…, in)`, output `(…, out)`. Backward, with the leading dims
//! flattened to `n` rows and `g = ∂L/∂y` `(n, out)`:
//! `∂L/∂x = g W`, `∂L/∂W = gᵀ x`, `∂L/∂b = Σ_rows g`.
//!
//! On the CPU the layer is one graph node: a custom op that runs one gemm (bias preloaded
//! into the output) forward and three matmuls backward. Composed from candle ops
//! ([`Linear::forward_ops`], used on other devices) the same layer is six nodes —
//! reshape, transpose, matmul, broadcast, add, reshape — and candle's backward pass
//! allocates and accumulates a gradient for each of them.
//!
//! For inference a layer may hold its weight rounded to bf16 ([`Linear::pack_bf16`]): its
//! product then runs on a bf16 kernel ([`super::bf16`]: AMX tiles or AVX512-BF16), without a
//! backward. For mixed-precision training [`Linear::forward_bf16`] is the CPU op's bf16
//! twin: the same three products (forward, `∂x`, `∂W`) in bf16 with the current f32 weight
//! rounded per call, the bias and its gradient in f32.

use std::sync::Arc;

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor,
};
use distill_ops::host;

use super::bf16::{self, PackedBf16, Stored};
use super::Ctx;

/// A dense layer holding PyTorch-layout weights.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
    /// The weight packed in bf16, for inference.
    bf16: Option<Arc<PackedBf16>>,
}

impl Linear {
    /// `weight` `(out, in)`, `bias` `(out)`.
    pub fn new(weight: Tensor, bias: Tensor) -> Self {
        Self {
            weight,
            bias,
            bf16: None,
        }
    }

    /// From now on multiplies in bf16 (inference only: the product has no backward). The
    /// caller checks [`super::bf16::available`].
    pub fn pack_bf16(&mut self) -> Result<()> {
        let (out, k) = self.weight.dims2()?;
        let w = self.weight.flatten_all()?.to_vec1::<f32>()?;
        let b = self.bias.to_vec1::<f32>()?;
        self.bf16 = Some(Arc::new(PackedBf16::pack(&w, &b, out, k)));
        Ok(())
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// `(…, in)` → `(…, out)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if let Some(packed) = &self.bf16 {
            if x.device().is_cpu() && x.dtype() == DType::F32 {
                return x.contiguous()?.apply_op1_no_bwd(&Bf16Op(packed.clone()));
            }
        }
        if x.device().is_cpu() && x.dtype() == DType::F32 {
            x.contiguous()?
                .apply_op3(&self.weight, &self.bias, LinearOp)
        } else {
            self.forward_ops(x)
        }
    }

    /// `x Wᵀ + b` with `x` and `W` rounded to bf16, differentiable: the backward's
    /// `∂x = g W` and `∂W = gᵀ x` also run in bf16 (`g` rounded too), `∂b = Σ g` in f32.
    /// CPU and f32 only, and only where [`bf16::available`]: an error
    /// elsewhere, never a silent f32 product.
    pub fn forward_bf16(&self, x: &Tensor) -> Result<Tensor> {
        if !x.device().is_cpu() || x.dtype() != DType::F32 {
            candle_core::bail!(
                "linear-bf16: needs f32 on the CPU, got {:?} on {:?}",
                x.dtype(),
                x.device()
            )
        }
        if !bf16::available() {
            candle_core::bail!("linear-bf16: this CPU or OS has neither AMX nor AVX512-BF16")
        }
        x.contiguous()?
            .apply_op3(&self.weight, &self.bias, Bf16LinearOp)
    }

    /// [`Linear::forward`], or [`Linear::forward_bf16`] when the pass asks for bf16
    /// products (`ctx.bf16`: mixed-precision training).
    pub fn forward_in(&self, x: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        if ctx.bf16 {
            self.forward_bf16(x)
        } else {
            self.forward(x)
        }
    }

    /// The reference path, composed from candle ops (any device). The leading dims are
    /// flattened so that one 2-D matmul runs rather than a broadcast batched one.
    pub fn forward_ops(&self, x: &Tensor) -> Result<Tensor> {
        let (rows, in_features) = rows_and_width(x.dims())?;
        let y = x
            .reshape((rows, in_features))?
            .matmul(&self.weight.t()?)?
            .broadcast_add(&self.bias)?;
        y.reshape(out_dims(x.dims(), self.weight.dim(0)?))
    }
}

fn rows_and_width(dims: &[usize]) -> Result<(usize, usize)> {
    match dims {
        [] | [.., 0] => candle_core::bail!("linear: input of shape {dims:?}"),
        [.., last] => Ok((dims.iter().product::<usize>() / last, *last)),
    }
}

fn out_dims(dims: &[usize], out: usize) -> Vec<usize> {
    let mut d = dims.to_vec();
    if let Some(last) = d.last_mut() {
        *last = out;
    }
    d
}

/// The host slices and sizes of a linear op's `(x, W, b)`, checked against each other.
struct Operands<'a> {
    x: &'a [f32],
    w: &'a [f32],
    b: &'a [f32],
    /// Rows of `x` (all its dimensions but the last).
    rows: usize,
    /// Input width.
    k: usize,
    /// Output width.
    out: usize,
}

impl<'a> Operands<'a> {
    fn read(
        op: &str,
        (s1, l1): (&'a CpuStorage, &Layout),
        (s2, l2): (&'a CpuStorage, &Layout),
        (s3, l3): (&'a CpuStorage, &Layout),
    ) -> Result<Self> {
        let (x, w, b) = (
            host::slice(s1, l1, op)?,
            host::slice(s2, l2, op)?,
            host::slice(s3, l3, op)?,
        );
        let (rows, k) = rows_and_width(l1.dims())?;
        let (out, w_in) = l2.shape().dims2()?;
        if w_in != k || b.len() != out {
            candle_core::bail!(
                "{op}: input {:?}, weight {:?}, bias {:?}",
                l1.dims(),
                l2.dims(),
                l3.dims()
            )
        }
        Ok(Self {
            x,
            w,
            b,
            rows,
            k,
            out,
        })
    }
}

/// `y += x·Wᵀ` in f32 (gemm): `y` `rows × out`, `x` `rows × k`, `W` `out × k`, row-major.
pub(crate) fn add_x_wt(
    y: &mut [f32],
    x: &[f32],
    w: &[f32],
    (rows, out, k): (usize, usize, usize),
    parallelism: gemm::Parallelism,
) {
    assert!(y.len() == rows * out && x.len() == rows * k && w.len() == out * k);
    // SAFETY: the lengths were just checked: `y` is rows × out (row-major), `x` rows × k,
    // and `w` out × k read as its transpose (k × out: row stride 1, column stride k); gemm
    // reads and writes within those bounds. dst = 1·dst + 1·x·Wᵀ adds to what `y` holds.
    unsafe {
        gemm::gemm(
            rows,
            out,
            k,
            y.as_mut_ptr(),
            1,
            out as isize,
            true,
            x.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            k as isize,
            1,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `(x, W, b)` → `x Wᵀ + b`, with its backward.
struct LinearOp;

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "linear"
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
        let Operands {
            x,
            w,
            b,
            rows,
            k,
            out,
        } = Operands::read(self.name(), (s1, l1), (s2, l2), (s3, l3))?;
        let mut y = Vec::with_capacity(rows * out);
        for _ in 0..rows {
            y.extend_from_slice(b);
        }
        let threads = rayon::current_num_threads();
        // Inside a rayon task (batches labelled in parallel) the cores are already busy:
        // a nested parallel gemm would only add synchronisation.
        let parallelism = if threads > 1 && rayon::current_thread_index().is_none() {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        add_x_wt(&mut y, x, w, (rows, out, k), parallelism);
        Ok((CpuStorage::F32(y), Shape::from(out_dims(l1.dims(), out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (rows, k) = rows_and_width(x.dims())?;
        let out = w.dim(0)?;
        let g = grad.contiguous()?.reshape((rows, out))?;
        let x2 = x.detach().reshape((rows, k))?;
        let dx = g.matmul(&w.detach())?.reshape(x.shape())?;
        let dw = g.t()?.matmul(&x2)?;
        Ok((Some(dx), Some(dw), Some(bias_grad(&g, rows, out)?)))
    }
}

/// `∂b`: the column sums of `g` `(rows, out)`, as a (1 × rows) · (rows × out) product (one
/// gemm instead of a strided reduction).
fn bias_grad(g: &Tensor, rows: usize, out: usize) -> Result<Tensor> {
    Tensor::ones((1, rows), DType::F32, g.device())?
        .matmul(g)?
        .reshape(out)
}

/// `x` → `x Wᵀ + b` in bf16; no backward.
struct Bf16Op(Arc<PackedBf16>);

impl CustomOp1 for Bf16Op {
    fn name(&self) -> &'static str {
        "linear-bf16"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = host::slice(s, l, self.name())?;
        let (rows, k) = rows_and_width(l.dims())?;
        if k != self.0.in_features() {
            candle_core::bail!("linear-bf16: input {:?}, weight {:?}", l.dims(), self.0)
        }
        let y = self.0.forward(x, rows);
        Ok((
            CpuStorage::F32(y),
            Shape::from(out_dims(l.dims(), self.0.out_features())),
        ))
    }
}

/// `(x, W, b)` → `x Wᵀ + b` in bf16, `W` packed per call (it changes every step); the
/// backward mirrors [`LinearOp`]'s with the two large products in bf16 too.
struct Bf16LinearOp;

impl CustomOp3 for Bf16LinearOp {
    fn name(&self) -> &'static str {
        "linear-bf16-train"
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
        let Operands {
            x,
            w,
            b,
            rows,
            k,
            out,
        } = Operands::read(self.name(), (s1, l1), (s2, l2), (s3, l3))?;
        let y = bf16::product(x, Stored::AsIs, w, Stored::AsIs, rows, out, k, Some(b));
        Ok((CpuStorage::F32(y), Shape::from(out_dims(l1.dims(), out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (rows, k) = rows_and_width(x.dims())?;
        let out = w.dim(0)?;
        let g = grad.contiguous()?.reshape((rows, out))?;
        let x2 = x.detach().reshape((rows, k))?;
        // ∂x = g W: W `(out, k)` is the right operand's transpose.
        let dx = g
            .apply_op2_no_bwd(&w.detach().contiguous()?, &Bf16Product(Stored::AsIs))?
            .reshape(x.shape())?;
        // ∂W = gᵀ x: both stored transposed (`g` is `(rows, out)`, `x` `(rows, k)`).
        let dw = g.apply_op2_no_bwd(&x2.contiguous()?, &Bf16Product(Stored::Transposed))?;
        Ok((Some(dx), Some(dw), Some(bias_grad(&g, rows, out)?)))
    }
}

/// `(L, R)` → `A Bᵀ` in bf16, with `R` holding `B` transposed (`(k, n)`) and `L`
/// holding `A` `(m, k)` as is or transposed (`(k, m)`), as the op's [`Stored`] says. No
/// backward (it is one).
struct Bf16Product(Stored);

impl CustomOp2 for Bf16Product {
    fn name(&self) -> &'static str {
        "matmul-bf16"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (a, b) = (
            host::slice(s1, l1, self.name())?,
            host::slice(s2, l2, self.name())?,
        );
        let (m, k) = match (self.0, l1.shape().dims2()?) {
            (Stored::AsIs, (m, k)) | (Stored::Transposed, (k, m)) => (m, k),
        };
        let (b_k, n) = l2.shape().dims2()?;
        if b_k != k {
            candle_core::bail!(
                "{}: left {:?} ({:?}), right {:?}",
                self.name(),
                l1.dims(),
                self.0,
                l2.dims()
            )
        }
        let c = bf16::product(a, self.0, b, Stored::Transposed, m, n, k, None);
        Ok((CpuStorage::F32(c), Shape::from((m, n))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn matches_the_definition_on_3d_input() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::new(&[[1f32, 2.], [0., -1.], [3., 0.5]], &dev)?;
        let b = Tensor::new(&[0.5f32, 0., -1.], &dev)?;
        let x = Tensor::new(&[[[1f32, 1.], [2., 0.]]], &dev)?; // (1, 2, 2)
        let expected = vec![vec![vec![3.5, -1., 2.5], vec![2.5, 0., 5.]]];
        let layer = Linear::new(w, b);
        assert_eq!(layer.forward(&x)?.to_vec3::<f32>()?, expected);
        assert_eq!(layer.forward_ops(&x)?.to_vec3::<f32>()?, expected);
        Ok(())
    }

    #[test]
    fn the_fused_backward_matches_the_composed_one() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::arange(0f32, 60., &dev)?.reshape((2, 5, 6))?.sin()?)?;
        let w = Var::from_tensor(&Tensor::arange(0f32, 24., &dev)?.reshape((4, 6))?.cos()?)?;
        let b = Var::from_tensor(&Tensor::new(&[0.1f32, -0.2, 0.3, 0.4], &dev)?)?;
        let layer = Linear::new(w.as_tensor().clone(), b.as_tensor().clone());
        let weights = Tensor::arange(0f32, 40., &dev)?
            .reshape((2, 5, 4))?
            .sqrt()?;
        let fused = layer.forward(&x)?;
        let composed = layer.forward_ops(&x)?;
        let max = |t: Tensor| t.abs()?.max_all()?.to_scalar::<f32>();
        assert!(max((&fused - &composed)?)? < 1e-5);
        let g1 = (fused * &weights)?.sum_all()?.backward()?;
        let g2 = (composed * &weights)?.sum_all()?.backward()?;
        for v in [x.as_tensor(), w.as_tensor(), b.as_tensor()] {
            let (a, b) = (g1.get(v).expect("grad"), g2.get(v).expect("grad"));
            assert_eq!(a.dims(), b.dims());
            assert!(max((a - b)?)? < 1e-4);
        }
        Ok(())
    }

    #[test]
    fn the_bf16_op_and_its_backward_are_the_products_of_rounded_inputs() -> Result<()> {
        if !bf16::available() {
            eprintln!("skipped: no bf16 kernel (AMX or AVX512-BF16) on this machine");
            return Ok(());
        }
        let dev = Device::Cpu;
        let bf = |t: &Tensor| t.to_dtype(DType::BF16)?.to_dtype(DType::F32);
        let rel = |a: &Tensor, b: &Tensor| -> Result<f32> {
            let d = (a - b)?.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?;
            let s = b.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?;
            Ok(d / s)
        };
        // (batch, positions, in, out): none a multiple of the tiles' 16/32.
        for &(bsz, t, k, out) in &[(2, 5, 6, 4), (3, 11, 70, 45), (4, 9, 96, 200)] {
            let n = (bsz * t * k) as f32;
            let x = Var::from_tensor(&Tensor::arange(0f32, n, &dev)?.reshape((bsz, t, k))?.sin()?)?;
            let w = Var::from_tensor(
                &(Tensor::arange(0f32, (out * k) as f32, &dev)?
                    .reshape((out, k))?
                    .cos()?
                    * 0.2)?,
            )?;
            let b = Var::from_tensor(&Tensor::arange(0f32, out as f32, &dev)?.affine(0.01, -0.1)?)?;
            let layer = Linear::new(w.as_tensor().clone(), b.as_tensor().clone());
            // The upstream gradient `g` of Σ y ∘ weights.
            let weights = Tensor::arange(0f32, (bsz * t * out) as f32, &dev)?
                .reshape((bsz, t, out))?
                .sqrt()?
                .cos()?;
            let exact = layer.forward(&x)?;
            let rounded = layer.forward_bf16(&x)?;
            let (x2, g2) = (x.reshape((bsz * t, k))?, weights.reshape((bsz * t, out))?);
            let oracle = bf(&x2)?
                .matmul(&bf(w.as_tensor())?.t()?)?
                .broadcast_add(b.as_tensor())?
                .reshape((bsz, t, out))?;
            let shape = format!("{bsz}×{t}×{k}→{out}");
            // Only the order of f32 additions differs from the oracle.
            assert!(rel(&rounded, &oracle)? < 1e-5, "{shape} forward");
            assert!(
                rel(&rounded, &exact)? > 0.0,
                "{shape}: the tiles did not run"
            );
            let g1 = (exact * &weights)?.sum_all()?.backward()?;
            let g2b = (rounded * &weights)?.sum_all()?.backward()?;
            let want_dx = bf(&g2)?.matmul(&bf(w.as_tensor())?)?.reshape((bsz, t, k))?;
            let want_dw = bf(&g2)?.t()?.matmul(&bf(&x2)?)?;
            let want_db = g2.sum(0)?;
            for (name, v, oracle) in [
                ("x", x.as_tensor(), &want_dx),
                ("W", w.as_tensor(), &want_dw),
                ("b", b.as_tensor(), &want_db),
            ] {
                let (f32_grad, got) = (g1.get(v).expect("grad"), g2b.get(v).expect("grad"));
                assert_eq!(got.dims(), oracle.dims());
                let e = rel(got, oracle)?;
                assert!(e < 1e-5, "{shape} ∂{name}: {e} from the rounded product");
                // ∂b = Σ g is f32 in both; the products of rounded inputs are not.
                let off = rel(got, f32_grad)?;
                assert_eq!(off > 0.0, name != "b", "{shape} ∂{name}: {off} from f32");
            }
        }
        Ok(())
    }
}
