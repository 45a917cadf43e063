//! Data for candle-distill: everything between a text file and a padded batch
//! of ids, plus the file formats the other crates share.
//!
//! The word path of the student runs
//! [`Dataset`] → [`Normalizer`] → [`Vocab`] → [`Batcher`]:
//! a `Dataset` reads sentences and labels from a GLUE-style TSV (or CSV) file,
//! a `Normalizer` turns each sentence into word tokens (the original
//! tutorial's punctuation removal, number spelling and Snowball stemming, or
//! plain lower-casing), a `Vocab` maps tokens to ids (`<unk>` = 0,
//! `<pad>` = 1), and a `Batcher` pads id sequences into [`Batch`]es, bucketed
//! by length for training.
//!
//! A [`TextEncoder`] bundles the tokenization (those words, or the teacher's WordPiece
//! tokens) with the vocabulary: it is how a saved student reads text. Serving reads words
//! through a bounded [`WordCache`] so each distinct word is normalised once.
//!
//! Around that path: [`split`] makes seeded stratified train/validation
//! splits, [`logits`] stores teacher logits next to the fingerprint of the
//! data they belong to, [`metrics`] computes accuracy, per-class and macro F1,
//! the confusion matrix and average precision over C classes as scikit-learn
//! does, [`epoch`] is the per-epoch record of `metrics.jsonl` that training and
//! fine-tuning write, [`eval`] what an evaluation writes (JSON, class probabilities,
//! a table), and [`io`] writes files atomically.
//!
//! ```
//! use distill_data::{Batcher, Dataset, Normalizer, Vocab, VocabBuilder};
//!
//! let data = Dataset::from_texts(vec![
//!     "it 's a charming and often affecting journey . ".into(),
//!     "in exactly 89 minutes , most of which passed slowly".into(),
//! ]);
//! let norm = Normalizer::original();
//! let tokens: Vec<Vec<String>> = data.texts().iter().map(|t| norm.tokens(t)).collect();
//! assert_eq!(tokens[0], ["it", "s", "a", "charm", "and", "often", "affect", "journey"]);
//! assert_eq!(tokens[1][2], "eighty-nin");
//!
//! let vocab = VocabBuilder::default().build(tokens.iter().map(Vec::as_slice));
//! let ids: Vec<Vec<u32>> = tokens.iter().map(|t| vocab.encode(t)).collect();
//! assert_eq!(vocab.id("never seen"), Vocab::UNK);
//!
//! let batches = Batcher::new(2).shuffle(true).seed(7).batches(&ids, 0);
//! assert_eq!(batches.len(), 1);
//! let b = &batches[0];
//! assert_eq!((b.batch, b.time), (2, 9));
//! assert_eq!(b.ids.len(), b.batch * b.time);
//! // The shorter row is padded.
//! let short = b.lengths.iter().position(|&l| l == 8).unwrap();
//! assert_eq!(b.row(short)[8], Vocab::PAD);
//! ```

pub mod augment;
pub mod batch;
pub mod dataset;
pub mod epoch;
pub mod error;
pub mod eval;
pub mod io;
pub mod logits;
pub mod metrics;
pub mod normalize;
pub mod numwords;
pub mod pr;
pub mod run_folder;
pub mod shard;
pub mod spans;
pub mod split;
mod table;
pub mod task;
pub mod text;
pub mod vocab;
pub mod word_cache;

pub use augment::{distinct_words, Augmenter, Substitutes, MASK};
pub use batch::{padding_share, Batch, Batcher};
pub use dataset::{Dataset, Example, LabelSet};
pub use epoch::EpochRecord;
pub use error::{Error, Result};
pub use eval::EvalRecord;
pub use io::{sha256_hex, write_atomic};
pub use logits::{LogitsMeta, TeacherLogits};
pub use metrics::{average_precision, pr_curve, probabilities, ClassMetrics, Metrics};
pub use normalize::{Normalizer, MASK_TOKEN};
pub use numwords::number_to_words;
pub use run_folder::RunFolder;
pub use spans::SpanGroups;
pub use split::{
    sentence_split_indices, stratified_split, stratified_split_indices, stratified_subset, ValSplit,
};
#[cfg(feature = "clap")]
pub use task::TaskArgs;
pub use task::{Format, TaskSpec};
pub use text::{TextEncoder, Tokenization};
pub use vocab::{Vocab, VocabBuilder};
pub use word_cache::WordCache;
