//! The fused training step: the BiLSTM student's forward, loss, backward and optimiser
//! update over a whole batch in plain Rust, without a tensor graph.
//!
//! A candle step runs some 80 tensor ops, each allocating and dispatching, on matrices a few
//! dozen wide; the arithmetic of the `original` student is a few MFLOP per batch, so the ops'
//! overhead was most of the time. Here a step is a handful of loops and small matrix products
//! over buffers reused from step to step:
//! - `pack`: the batch packed step by step (rows sorted by length), so each step of the
//!   recurrence is one product over the rows still reading, and no padding is computed;
//! - the small row-major matrix products come from [`distill_ops::gemm`] (register tiles,
//!   AVX-512 / AVX2), which the serving path shares;
//! - `lstm`: one direction of one layer, forward and backward (its cell in AVX2 intrinsics
//!   in `cell_x86`);
//! - `head`: dropout and the linear head (single text, or the siamese pair head);
//! - `loss`: every [`crate::Loss`] and its gradient;
//! - `student`: the whole model over a batch ([`FusedStudent`]) and the step's first part;
//! - `pass`: the forward and backward pass, the two directions of a layer on two threads
//!   when the batch is large enough (the second on a spinning `partner` thread);
//! - `step`: with the optimiser ([`FusedTrainer`]).
//!
//! The candle model is the reference: for the same parameters, batch and dropout draws the
//! loss and every gradient agree to float rounding (tests/fused.rs), and both save the same
//! checkpoint, so a run resumes on either engine.

#[cfg(target_arch = "x86_64")]
mod cell_x86;
mod head;
mod loss;
mod lstm;
mod pack;
mod params;
mod partner;
mod pass;
mod step;
mod student;

pub use params::Params;
pub use step::FusedTrainer;
pub use student::{FusedStudent, Gradients, StepBatch};
