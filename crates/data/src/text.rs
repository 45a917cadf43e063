//! How a student reads text: a [`Tokenization`] splits a sentence into token strings, a
//! [`Vocab`] maps them to ids. Together they are a [`TextEncoder`], saved in a student's
//! folder as `vocab.json` (and, for WordPiece, the teacher's `tokenizer.json`).
//!
//! Two tokenizations: `words`, the original tutorial's word [`Normalizer`]; and
//! `wordpiece`, the teacher's own WordPiece tokenizer (`tokenizer.json`, special tokens
//! left out), so that a student can read the same sub-words as its teacher.

use std::path::Path;

#[cfg(feature = "wordpiece")]
use crate::augment::MASK;
use crate::error::{Error, Result};
use crate::normalize::{Normalizer, MASK_TOKEN};
use crate::vocab::Vocab;

/// File name of a WordPiece tokenizer inside a model folder.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// File name of the vocabulary inside a model folder.
pub const VOCAB_FILE: &str = "vocab.json";

/// Splits sentences into token strings.
#[derive(Clone, Debug)]
pub enum Tokenization {
    /// Word tokens from the [`Normalizer`].
    Words(Normalizer),
    /// WordPiece tokens from a Hugging Face `tokenizer.json`.
    #[cfg(feature = "wordpiece")]
    WordPiece(Box<tokenizers::Tokenizer>),
}

impl Tokenization {
    /// Reads a Hugging Face `tokenizer.json`.
    #[cfg(feature = "wordpiece")]
    pub fn wordpiece(path: &Path) -> Result<Self> {
        let mut tok = tokenizers::Tokenizer::from_file(path).map_err(|e| Error::Format {
            path: path.to_path_buf(),
            reason: format!("not a tokenizer.json: {e}"),
        })?;
        // A saved teacher tokenizer may pad or truncate to a fixed length: the student
        // wants each sentence's own tokens (it truncates to its `max_len` itself).
        tok.with_padding(None);
        tok.with_truncation(None).map_err(|e| Error::Format {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(Self::WordPiece(Box::new(tok)))
    }

    /// The name stored in a student's `config.json`: `words` or `wordpiece`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Words(_) => "words",
            #[cfg(feature = "wordpiece")]
            Self::WordPiece(_) => "wordpiece",
        }
    }

    /// Token strings of `text`. A sentence the tokenizer cannot read (never seen with
    /// BERT's tokenizers) reads as empty, like an empty sentence.
    pub fn tokens(&self, text: &str) -> Vec<String> {
        match self {
            Self::Words(n) => n.tokens(text),
            #[cfg(feature = "wordpiece")]
            Self::WordPiece(t) => t
                .encode(text, false)
                .map(|e| e.get_tokens().to_vec())
                .unwrap_or_default(),
        }
    }

    /// The token that the augmentation's [`MASK`](crate::augment::MASK) becomes.
    pub fn mask_token(&self) -> &'static str {
        match self {
            Self::Words(_) => MASK_TOKEN,
            // BERT's tokenizer keeps `[MASK]` whole: it is one of its special tokens.
            #[cfg(feature = "wordpiece")]
            Self::WordPiece(_) => MASK,
        }
    }
}

/// Text to token ids: a tokenization and a vocabulary.
#[derive(Clone, Debug)]
pub struct TextEncoder {
    pub tokenization: Tokenization,
    pub vocab: Vocab,
}

impl TextEncoder {
    pub fn new(tokenization: Tokenization, vocab: Vocab) -> Self {
        Self {
            tokenization,
            vocab,
        }
    }

    /// Ids of `text` (unknown tokens are [`Vocab::UNK`]).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.vocab.encode(&self.tokenization.tokens(text))
    }

    /// Writes `vocab.json` (and `tokenizer.json` for WordPiece) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.vocab.save(&dir.join(VOCAB_FILE))?;
        #[cfg(feature = "wordpiece")]
        if let Tokenization::WordPiece(t) = &self.tokenization {
            let path = dir.join(TOKENIZER_FILE);
            let json = t.to_string(false).map_err(|e| Error::Format {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            crate::io::write_atomic(&path, json.as_bytes()).map_err(|error| Error::Io {
                action: "write",
                path: path.clone(),
                error,
            })?;
        }
        Ok(())
    }

    /// Reads what [`TextEncoder::save`] wrote; `name` and `normalize` come from the
    /// model's config.
    pub fn load(dir: &Path, name: &str, normalize: bool) -> Result<Self> {
        let tokenization = match name {
            "words" => Tokenization::Words(Normalizer::new(normalize)),
            #[cfg(feature = "wordpiece")]
            "wordpiece" => Tokenization::wordpiece(&dir.join(TOKENIZER_FILE))?,
            #[cfg(not(feature = "wordpiece"))]
            "wordpiece" => {
                return Err(Error::Format {
                    path: dir.to_path_buf(),
                    reason: "a WordPiece student, and distill-data was built without its \
                             `wordpiece` feature"
                        .into(),
                })
            }
            other => {
                return Err(Error::Format {
                    path: dir.to_path_buf(),
                    reason: format!("unknown tokenizer `{other}` (known: words, wordpiece)"),
                })
            }
        };
        Ok(Self::new(tokenization, Vocab::load(&dir.join(VOCAB_FILE))?))
    }
}
