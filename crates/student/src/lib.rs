//! A BiLSTM sentence classifier in candle, built to be fast on a CPU.
//!
//! Token ids `(B, T)` → `embedding` → [`BiLstm`] (right-padded batch, true lengths) → final
//! forward ‖ backward states `(B, 2H)` → dropout → linear → logits `(B, C)`:
//! [`BiLstmClassifier::forward`]. A pair model ([`StudentConfig::pair`]) reads both texts with
//! the one encoder and classifies `[h1; h2; h1⊙h2; |h1−h2|]` through a two-layer head:
//! [`BiLstmClassifier::forward_pair`]. The label names live in the config
//! ([`StudentConfig::label_set`]). The recurrence runs as one fused candle op per layer and
//! direction ([`kernel`]), checked against the plain-op [`reference`](mod@reference). A trained model lives in
//! a folder ([`StudentModel`]) with PyTorch state-dict names, and serves through
//! [`Predictor`], which needs no tensors at all: one sentence with both directions stepped
//! together ([`single`]), many sentences sixteen to a block in SIMD lanes ([`lanes`]).
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use distill_student::{BiLstmClassifier, StudentConfig, StudentPreset};
//! use rand::SeedableRng;
//!
//! let config = StudentConfig::new(&StudentPreset::original(), 100, 2);
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let tensors = BiLstmClassifier::init_tensors(&config, &mut rng, &Device::Cpu)?;
//! let model = BiLstmClassifier::from_tensors(&config, &tensors)?;
//! let ids = Tensor::new(&[[5u32, 7, 9], [4, 1, 1]], &Device::Cpu)?; // 1 = <pad>
//! let logits = model.forward(&ids, &[3, 1], None)?;
//! assert_eq!(logits.dims(), &[2, 2]);
//! # Ok::<(), distill_student::Error>(())
//! ```

mod batch;
pub mod bench;
pub mod bilstm;
pub mod cell;
mod config;
mod error;
mod folder;
pub mod kernel;
pub mod lanes;
mod model;
mod predictor;
pub mod reference;
pub mod single;

pub use bilstm::{BiLstm, BiLstmOutput, Recurrence};
pub use config::{StudentConfig, StudentPreset};
pub use error::{Error, Result};
pub use folder::{StudentModel, CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE};
pub use model::BiLstmClassifier;
pub use predictor::{prediction, probabilities, Prediction, Predictor};
