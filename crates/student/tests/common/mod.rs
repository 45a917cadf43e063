//! Helpers shared by the student's integration tests.

use candle_core::Tensor;

/// max|a − b| / max|b|: error relative to the reference's scale.
pub fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shape");
    let max_abs = |t: &Tensor| {
        t.abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    max_abs(&(a - b).unwrap()) / max_abs(b).max(1e-12)
}

/// A safetensors file from the repository's `fixtures/`.
#[allow(dead_code)] // not every test file reads fixtures
pub fn fixture(name: &str) -> std::collections::HashMap<String, Tensor> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name);
    candle_core::safetensors::load(&path, &candle_core::Device::Cpu).expect("fixture loads")
}
