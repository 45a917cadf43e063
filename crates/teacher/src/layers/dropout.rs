//! Inverted dropout: in [`Mode::Train`], `y = x · m / (1 − p)` with `m ~ Bernoulli(1 − p)`
//! drawn from the forward pass's seeded RNG; the identity otherwise. Same shape in and
//! out.
//!
//! The mask is [`distill_ops::dropout::keep_mask`], drawn on the host from a ChaCha stream,
//! so that a run is reproducible from its seed on any device (candle's CPU `rand` cannot be
//! seeded).

use candle_core::{Result, Tensor};
use distill_ops::dropout::keep_mask;

use super::{Ctx, Mode};

/// Dropout with probability `p`.
#[derive(Debug, Clone, Copy)]
pub struct Dropout {
    p: f64,
}

impl Dropout {
    pub fn new(p: f64) -> Self {
        Self { p }
    }

    pub fn p(&self) -> f64 {
        self.p
    }

    /// Applies dropout in training mode, returns `x` unchanged otherwise.
    pub fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        if ctx.mode != Mode::Train || self.p <= 0.0 {
            return Ok(x.clone());
        }
        let mask = keep_mask(x.elem_count(), self.p as f32, ctx.rng);
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x * mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn drops_about_p_and_keeps_the_mean() -> Result<()> {
        let x = Tensor::ones((100, 100), candle_core::DType::F32, &Device::Cpu)?;
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let y = Dropout::new(0.1).forward(&x, &mut Ctx::new(Mode::Train, &mut rng))?;
        let values = y.flatten_all()?.to_vec1::<f32>()?;
        let zeros = values.iter().filter(|&&v| v == 0.0).count();
        assert!((800..1200).contains(&zeros), "{zeros} of 10000 dropped");
        let mean = values.iter().sum::<f32>() / 10_000.0;
        assert!((mean - 1.0).abs() < 0.05, "{mean}");
        let same = Dropout::new(0.1).forward(&x, &mut Ctx::new(Mode::Grad, &mut rng))?;
        assert_eq!(same.sum_all()?.to_scalar::<f32>()?, 10_000.0);
        Ok(())
    }
}
