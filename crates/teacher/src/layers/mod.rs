//! The building blocks of the BERT encoder that candle lacks for training.
//!
//! candle's fused layer norm and softmax kernels have no backward pass (gradients
//! silently stop at them), and candle-transformers' BERT dropout is a no-op. Each block
//! here therefore has two paths, chosen by [`Mode`]: the fused kernels for inference
//! ([`Mode::Eval`]) and compositions of differentiable tensor ops, with real dropout in
//! [`Mode::Train`], whenever gradients are wanted.
//!
//! | module | block | shapes |
//! | --- | --- | --- |
//! | [`linear`] | `y = x Wᵀ + b` | `(…, in)` → `(…, out)` |
//! | [`layer_norm`] | `y = (x − μ) / √(σ² + ε) · γ + β` over the last dim | `(…, h)` → `(…, h)` |
//! | [`softmax`] | `softmax(x)` over the last dim | `(…, n)` → `(…, n)` |
//! | [`attention`] | `softmax(Q Kᵀ/√d + mask) V` per head | `(B, T, H)` → `(B, T, H)` |
//! | [`gelu`] | `x · Φ(x)`, fast and differentiable | any |
//! | [`dropout`] | `y = x · m / (1 − p)`, `m ~ Bernoulli(1 − p)` | any |

pub mod attention;
pub mod bf16;
pub mod dropout;
pub mod gelu;
pub mod layer_norm;
pub mod linear;
pub mod softmax;

pub use dropout::Dropout;
pub use layer_norm::LayerNorm;
pub use linear::Linear;

use rand_chacha::ChaCha8Rng;

pub(crate) use distill_ops::math::dot;

/// `Σ aᵢ`, vectorised like [`dot`].
#[inline]
pub(crate) fn sum(a: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let c = a.chunks_exact(8);
    let tail: f32 = c.remainder().iter().sum();
    for x in c {
        for i in 0..8 {
            acc[i] += x[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// How a forward pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Inference: fused kernels, no dropout, no backward.
    Eval,
    /// Differentiable ops without dropout (deterministic gradients, as in the parity tests).
    Grad,
    /// Training: differentiable ops and dropout.
    Train,
}

impl Mode {
    /// Whether the pass must be differentiable.
    pub fn differentiable(self) -> bool {
        self != Mode::Eval
    }
}

/// The state a forward pass threads through the layers: the mode, the dropout RNG and,
/// when the word-embedding gradient is to be kept sparse, the rows it touched.
pub struct Ctx<'a> {
    pub mode: Mode,
    pub(crate) rng: &'a mut ChaCha8Rng,
    /// Ask the embeddings for a sparse word-embedding gradient ([`WordRows`]).
    pub(crate) sparse_words: bool,
    pub(crate) word_rows: Option<WordRows>,
    /// The encoder's products run in bf16 on AMX tiles ([`Linear::forward_bf16`]):
    /// mixed-precision training.
    pub(crate) bf16: bool,
}

impl<'a> Ctx<'a> {
    pub fn new(mode: Mode, rng: &'a mut ChaCha8Rng) -> Self {
        Self {
            mode,
            rng,
            sparse_words: false,
            word_rows: None,
            bf16: false,
        }
    }
}

/// The word-embedding rows a differentiable forward pass looked up, as a leaf variable:
/// the table's gradient is `leaf`'s gradient on `rows` (sorted, distinct) and zero on
/// every other row. Training takes it instead of a dense `(vocab, hidden)` gradient, which
/// would be mostly zeros and cost several passes over 47 MB per step for MiniLM.
#[derive(Debug, Clone)]
pub struct WordRows {
    pub rows: Vec<u32>,
    /// `(rows.len(), hidden)`.
    pub leaf: candle_core::Var,
}
