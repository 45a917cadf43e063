//! The numerics that the student, the trainer and the teacher share, on plain `f32` slices
//! (no tensors, no model code), each beside the plain composition it is tested against.
//!
//! - [`adamw`]: one AdamW update rule ([`adamw::StepRule`]) over a dense tensor, or over a
//!   table whose gradient touches some rows (every row still moves); [`lazy::LazyRows`]
//!   applies the same rule to a table lazily, a row at a time when it is touched.
//! - [`math`]: branch-free `exp`, `sigmoid` and `tanh` that vectorise; the dot product.
//! - [`gemm`]: products of small row-major matrices in register tiles (the fused training
//!   step's, and the serving path's projections of layers above the first).
//! - [`softmax`]: the masked, scaled softmax of a row of attention scores.
//! - [`dropout`]: the seeded inverted-dropout keep-mask.
//! - `host` (feature `candle`): contiguous `&[f32]` views of candle CPU storage, for custom
//!   ops that hand these kernels their slices, and in-place runs of a kernel on a tensor.
//!
//! ```
//! use distill_ops::adamw::{AdamWConfig, StepRule};
//! let (mut p, mut m, mut v) = (vec![1.0f32; 4], vec![0.0; 4], vec![0.0; 4]);
//! let g = [0.5f32, -0.5, 0.0, 1.0];
//! // Step 1 at lr 0.1 of a tensor exempt from weight decay (`false`).
//! StepRule::new(&AdamWConfig::default(), 1, 0.1, false).dense(&mut p, &mut m, &mut v, &g)?;
//! assert!(p[0] < 1.0 && p[1] > 1.0 && p[2] == 1.0);
//! # Ok::<(), distill_ops::Error>(())
//! ```

pub mod adamw;
pub mod dropout;
mod error;
pub mod gemm;
#[cfg(feature = "candle")]
pub mod host;
pub mod lazy;
pub mod math;
pub mod softmax;

pub use error::{Error, Result};
