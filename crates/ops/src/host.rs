//! Contiguous `f32` views of candle CPU storage, for the `cpu_fwd` of custom ops
//! (`CustomOp1..3`) that hand the slice kernels their data, and [`in_place`] /
//! [`in_place_with`], which run a slice kernel on a tensor's own storage (no copy; how the
//! optimisers update parameters).
//!
//! A tensor's storage may be larger than the tensor (a narrow, a view): the layout's
//! contiguous offsets pick its range, and a strided layout is refused (callers make their
//! inputs `contiguous()` first). Only here does the crate touch candle (feature `candle`),
//! so the kernels stay usable from plain `Vec<f32>` code.

use std::cell::RefCell;

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, InplaceOp1, InplaceOp2, Layout, Result, Tensor};

impl From<crate::Error> for candle_core::Error {
    fn from(e: crate::Error) -> Self {
        candle_core::Error::wrap(e)
    }
}

/// The values of a contiguous f32 tensor; `op` names the kernel in the error.
pub fn slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => bail!("{op} needs contiguous tensors"),
    }
}

/// [`slice()`] for writing in place.
pub fn slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout, op: &str) -> Result<&'a mut [f32]> {
    let Some((a, b)) = l.contiguous_offsets() else {
        bail!("{op} needs contiguous tensors")
    };
    match s {
        CpuStorage::F32(data) => Ok(&mut data[a..b]),
        other => bail!("{op} needs f32 values, got {:?}", other.dtype()),
    }
}

/// Runs `f` on the values of `t` in place: a contiguous f32 tensor on the CPU (other
/// devices: candle's error naming `name`).
pub fn in_place<F>(t: &Tensor, name: &'static str, f: F) -> Result<()>
where
    F: FnMut(&mut [f32]) -> Result<()>,
{
    t.inplace_op1(&InPlace {
        name,
        f: RefCell::new(f),
    })
}

/// Runs `f(values of t, values of other)` with `t` written in place (a parameter and its
/// gradient): both contiguous f32 tensors on the CPU.
pub fn in_place_with<F>(t: &Tensor, other: &Tensor, name: &'static str, f: F) -> Result<()>
where
    F: FnMut(&mut [f32], &[f32]) -> Result<()>,
{
    t.inplace_op2(
        other,
        &InPlace {
            name,
            f: RefCell::new(f),
        },
    )
}

/// The closure of [`in_place`] or [`in_place_with`] as a candle in-place op.
struct InPlace<F> {
    name: &'static str,
    f: RefCell<F>,
}

impl<F: FnMut(&mut [f32]) -> Result<()>> InplaceOp1 for InPlace<F> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> Result<()> {
        (self.f.borrow_mut())(slice_mut(s, l, self.name)?)
    }
}

impl<F: FnMut(&mut [f32], &[f32]) -> Result<()>> InplaceOp2 for InPlace<F> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let other = slice(s2, l2, self.name)?;
        (self.f.borrow_mut())(slice_mut(s1, l1, self.name)?, other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn views_cover_exactly_the_tensor() -> Result<()> {
        let all = Tensor::arange(0f32, 12., &Device::Cpu)?.reshape((3, 4))?;
        // Rows 1..3 of a contiguous matrix: contiguous, at an offset into the storage.
        let rows = all.narrow(0, 1, 2)?;
        in_place(&rows, "double", |x| {
            x.iter_mut().for_each(|v| *v *= 2.0);
            Ok(())
        })?;
        assert_eq!(
            all.flatten_all()?.to_vec1::<f32>()?,
            [0., 1., 2., 3., 8., 10., 12., 14., 16., 18., 20., 22.]
        );
        let step = Tensor::new(&[1f32, -1., 0.5, 0.], &Device::Cpu)?;
        in_place_with(&all.narrow(0, 0, 1)?, &step, "add", |x, s| {
            x.iter_mut().zip(s).for_each(|(x, s)| *x += s);
            Ok(())
        })?;
        assert_eq!(all.get(0)?.to_vec1::<f32>()?, [1., 0., 2.5, 3.]);
        Ok(())
    }

    #[test]
    fn strided_and_non_f32_tensors_and_kernel_errors_are_refused() -> Result<()> {
        let nothing = |_: &mut [f32]| Ok(());
        let t = Tensor::arange(0f32, 6., &Device::Cpu)?
            .reshape((2, 3))?
            .t()?;
        let err = in_place(&t, "double", nothing).unwrap_err().to_string();
        assert!(err.contains("double needs contiguous tensors"), "{err}");
        let ints = Tensor::arange(0u32, 4, &Device::Cpu)?;
        let err = in_place(&ints, "double", nothing).unwrap_err().to_string();
        assert!(err.contains("double needs f32 values"), "{err}");
        let ok = Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu)?;
        let err = in_place_with(&ok, &t, "add", |_, _| Ok(())).unwrap_err();
        assert!(
            err.to_string().contains("add needs contiguous tensors"),
            "{err}"
        );
        // A kernel's own error comes back as a candle error with its message.
        let err = in_place(&ok, "fail", |_| {
            Err(crate::Error::RowRepeated { row: 7 }.into())
        })
        .unwrap_err();
        assert!(err.to_string().contains("row 7 is given twice"), "{err}");
        Ok(())
    }
}
