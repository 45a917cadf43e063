//! Helpers shared by the teacher's integration tests.

use candle_core::Tensor;

/// Largest `|a − b|` over all elements.
pub fn tensor_max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}
