//! Training and evaluating candle-distill students.
//!
//! [`StudentRun`] reads a training file, splits off validation, builds the `Vocab` (over
//! words, or the teacher's WordPieces) and encodes both parts into [`EncodedSet`]s (attaching [`distill_data::TeacherLogits`] when
//! distilling); [`train`] runs epochs of [`optim::Adam`] with [`optim::StepLr`] on a
//! [`Loss`], keeping the best model by validation loss; [`evaluate`] scores a model.
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
mod error;
mod evaluate;
mod fingerprint;
mod init_embeddings;
mod loss;
pub mod optim;
pub mod row_adam;
mod run;
mod train;

pub use encoded::EncodedSet;
pub use error::{Error, Result};
pub use evaluate::{evaluate, predict_logits, scores, Evaluation};
pub use fingerprint::{DataChange, DataFingerprint};
pub use init_embeddings::{BoxError, InitEmbeddings};
pub use loss::{bce_with_logits, cross_entropy, kl, mse, weighted_mse, Loss};
pub use run::{Augmentation, StudentRun, MASK_TOKEN};
pub use train::{train, EmbeddingTable, EpochRecord, TrainConfig, TrainOutcome};
