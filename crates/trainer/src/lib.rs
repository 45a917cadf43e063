//! Training and evaluating candle-distill students.
//!
//! [`StudentRun`] reads a training file, splits off validation, builds the `Vocab` (over
//! words, or the teacher's WordPieces) and encodes both parts into [`EncodedSet`]s (attaching [`distill_data::TeacherLogits`] when
//! distilling); [`train`] runs epochs of Adam with [`optim::StepLr`] on a [`Loss`], keeping
//! the best model by validation loss; [`evaluate`] scores a model. A step runs on one of two
//! [`Engine`]s: on the CPU the hand-written [`fused`] step (forward, loss, backward and
//! update of the whole batch without a tensor graph), elsewhere a candle graph, the
//! reference the fused step is tested against.
//!
//! ```no_run
//! use distill_trainer::{Loss, StudentRun};
//! let mut run = StudentRun::new("assets/sst2/train.tsv".into(), "runs/baseline".into());
//! run.train.epochs = 10;
//! run.train.loss = Loss::Ce;
//! let outcome = run.run(&candle_core::Device::Cpu)?;
//! println!("best epoch {}", outcome.best_epoch);
//! # Ok::<(), distill_trainer::Error>(())
//! ```

mod encoded;
mod engine;
mod error;
mod evaluate;
mod fingerprint;
pub mod fused;
mod init_embeddings;
mod loss;
pub mod optim;
pub mod row_adam;
mod run;
mod train;

pub use distill_data::EpochRecord;
pub use encoded::EncodedSet;
pub use engine::Engine;
pub use error::{Error, Result};
pub use evaluate::{evaluate, predict_logits, scores, Evaluation};
pub use fingerprint::{DataChange, DataFingerprint};
pub use init_embeddings::{BoxError, InitEmbeddings};
pub use loss::{bce_with_logits, cross_entropy, kl, mse, weighted_mse, Loss};
pub use run::{Augmentation, StudentRun, MASK_TOKEN};
pub use train::{train, EmbeddingTable, TrainConfig, TrainOutcome};
