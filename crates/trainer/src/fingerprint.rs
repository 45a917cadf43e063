//! What a run was trained on, recorded in `last/state.json` so that resuming with other
//! data (a train file, split, vocabulary or logit cache that differs) is refused instead of
//! continuing the old weights on the new data.

use std::fmt;
use std::fs;
use std::path::Path;

use distill_data::{io::sha256_hex, Vocab};
use serde::{Deserialize, Serialize};

use crate::error::io_err;
use crate::Result;

/// Hashes of a run's inputs (SHA-256, hex) and its split settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// The training file's bytes.
    pub train: String,
    pub val_share: f64,
    pub split_seed: u64,
    /// The training rows then the validation rows, as indices into the file.
    pub split: String,
    /// The vocabulary's tokens in id order (catches --max-vocab, --min-freq, tokenizer).
    pub vocab: String,
    /// Teacher logits over the training file.
    pub logits: Option<String>,
    /// The transfer set and its logits.
    pub augment: Option<String>,
    pub augment_logits: Option<String>,
}

/// One input that differs between the recorded run and this one.
#[derive(Clone, Debug, PartialEq)]
pub struct DataChange {
    pub what: &'static str,
    pub old: String,
    pub new: String,
}

impl fmt::Display for DataChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} was {}, now {}", self.what, self.old, self.new)
    }
}

/// SHA-256 of a file's bytes.
pub fn file_sha256(path: &Path) -> Result<String> {
    Ok(sha256_hex(&fs::read(path).map_err(io_err(path))?))
}

/// SHA-256 of the split's row indices (training rows, a separator, validation rows).
pub fn split_sha256(train_rows: &[usize], val_rows: &[usize]) -> String {
    let text = |rows: &[usize]| {
        rows.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    sha256_hex(format!("{}|{}", text(train_rows), text(val_rows)).as_bytes())
}

/// SHA-256 of a vocabulary's tokens in id order.
pub fn vocab_sha256(vocab: &Vocab) -> String {
    sha256_hex(vocab.itos().join("\n").as_bytes())
}

impl DataFingerprint {
    /// What differs from `new`. The split rows and the vocabulary follow from the other
    /// inputs, so they are named only when nothing else explains the difference.
    pub fn changes(&self, new: &DataFingerprint) -> Vec<DataChange> {
        let hash = |h: &str| format!("sha256 {}", &h[..h.len().min(12)]);
        let opt = |h: &Option<String>| h.as_deref().map_or_else(|| "none".into(), hash);
        let change = |what, old: String, new: String| DataChange { what, old, new };
        let inputs = [
            change("the --train file", hash(&self.train), hash(&new.train)),
            change(
                "--val-share",
                self.val_share.to_string(),
                new.val_share.to_string(),
            ),
            change(
                "the split seed",
                self.split_seed.to_string(),
                new.split_seed.to_string(),
            ),
            change("--logits", opt(&self.logits), opt(&new.logits)),
            change("--augment", opt(&self.augment), opt(&new.augment)),
            change(
                "--augment-logits",
                opt(&self.augment_logits),
                opt(&new.augment_logits),
            ),
        ];
        let derived = [
            change("the validation split", hash(&self.split), hash(&new.split)),
            change(
                "the vocabulary (--max-vocab, --min-freq, tokenizer)",
                hash(&self.vocab),
                hash(&new.vocab),
            ),
        ];
        let differs = |c: &DataChange| c.old != c.new;
        let changed: Vec<DataChange> = inputs.into_iter().filter(differs).collect();
        if changed.is_empty() {
            derived.into_iter().filter(differs).collect()
        } else {
            changed
        }
    }
}
