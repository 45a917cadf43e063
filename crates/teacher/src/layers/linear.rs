//! Affine layer: `y = x Wᵀ + b` with `W` of shape `(out, in)` (PyTorch's layout) and `b`
//! of shape `(out)`; input `(…, in)`, output `(…, out)`.
//!
//! The leading dims are flattened so that one 2-D matmul runs instead of a broadcast
//! batched one: candle would otherwise run one small gemm per batch row, and the
//! backward pass would have to sum `W`'s gradient over the broadcast dim.

use candle_core::{Result, Tensor};

/// A dense layer holding PyTorch-layout weights.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    /// `weight` `(out, in)`, `bias` `(out)`.
    pub fn new(weight: Tensor, bias: Tensor) -> Self {
        Self { weight, bias }
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// `(…, in)` → `(…, out)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        let (rows, in_features) = match dims {
            [] => candle_core::bail!("linear: scalar input"),
            [.., last] => (x.elem_count() / last.max(&1), *last),
        };
        let out_features = self.weight.dim(0)?;
        let y = x
            .reshape((rows, in_features))?
            .matmul(&self.weight.t()?)?
            .broadcast_add(&self.bias)?;
        let mut out_dims = dims.to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = out_features;
        }
        y.reshape(out_dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_the_definition_on_3d_input() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::new(&[[1f32, 2.], [0., -1.], [3., 0.5]], &dev)?;
        let b = Tensor::new(&[0.5f32, 0., -1.], &dev)?;
        let x = Tensor::new(&[[[1f32, 1.], [2., 0.]]], &dev)?; // (1, 2, 2)
        let y = Linear::new(w, b).forward(&x)?;
        assert_eq!(y.dims(), &[1, 2, 3]);
        assert_eq!(
            y.to_vec3::<f32>()?,
            vec![vec![vec![3.5, -1., 2.5], vec![2.5, 0., 5.]]]
        );
        Ok(())
    }
}
