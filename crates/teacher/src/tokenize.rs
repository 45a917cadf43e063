//! The teacher's WordPiece tokenizer and dynamic padding.
//!
//! A teacher folder's `tokenizer.json` is used as is (its fixed padding switched off; we
//! pad per batch), or, when there is only a `vocab.txt`, a BERT tokenizer is built from it
//! as transformers' `BertTokenizerFast` would: BERT normaliser (lower-casing per
//! `tokenizer_config.json`'s `do_lower_case`, default true), BERT pre-tokeniser, WordPiece
//! with `##` continuations, `[CLS] … [SEP]` around each sentence. Sequences are truncated
//! to `max_len` tokens, specials included.
//!
//! [`pad_batch`] turns token id lists into `ids` `(B, T)` u32 and `mask` `(B, T)` u32
//! (1 for tokens, 0 for padding), `T` the longest sequence of the batch.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{Tokenizer, TruncationParams};

use crate::error::{Error, Result};
use crate::source::TokenizerFile;

/// A loaded teacher tokenizer.
#[derive(Clone)]
pub struct TeacherTokenizer {
    inner: Tokenizer,
    /// The `tokenizer.json` text as read, written back unchanged when saving.
    original_json: Option<String>,
    path: PathBuf,
    max_len: usize,
    pad_id: u32,
}

impl std::fmt::Debug for TeacherTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeacherTokenizer")
            .field("path", &self.path)
            .field("max_len", &self.max_len)
            .finish()
    }
}

impl TeacherTokenizer {
    /// Loads `file`; `tokenizer_config` (when present) supplies `do_lower_case` for a
    /// tokenizer built from `vocab.txt`.
    pub fn load(
        file: &TokenizerFile,
        tokenizer_config: Option<&Path>,
        max_len: usize,
    ) -> Result<Self> {
        if max_len < 2 {
            return Err(Error::Setting(format!(
                "max_len {max_len} leaves no room for [CLS] and [SEP]"
            )));
        }
        let (mut inner, original_json, path) = match file {
            TokenizerFile::Json(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
                let inner = Tokenizer::from_bytes(text.as_bytes()).map_err(|e| tok_err(path, e))?;
                (inner, Some(text), path.clone())
            }
            TokenizerFile::Vocab(path) => {
                let lowercase = read_lowercase(tokenizer_config)?;
                (from_vocab(path, lowercase)?, None, path.clone())
            }
        };
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..Default::default()
            }))
            .map_err(|e| tok_err(&path, e))?;
        let pad_id = inner.token_to_id("[PAD]").unwrap_or(0);
        Ok(Self {
            inner,
            original_json,
            path,
            max_len,
            pad_id,
        })
    }

    /// Token ids of one sentence, `[CLS]` and `[SEP]` included.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode_fast(text, true)
            .map_err(|e| tok_err(&self.path, e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// WordPiece ids of `text` alone, without `[CLS]` and `[SEP]`.
    pub fn encode_pieces(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| tok_err(&self.path, e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The id of `token` in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Token ids of many sentences, in input order (encoded in parallel).
    pub fn encode_all<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings = self
            .inner
            .encode_batch_fast(inputs, true)
            .map_err(|e| tok_err(&self.path, e))?;
        Ok(encodings
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The `tokenizer.json` to write into a checkpoint: the original text when there was
    /// one, else the built tokenizer serialised.
    pub fn to_json(&self) -> Result<String> {
        match &self.original_json {
            Some(text) => Ok(text.clone()),
            None => self
                .inner
                .to_string(true)
                .map_err(|e| tok_err(&self.path, e)),
        }
    }
}

/// Pads `seqs` to the longest: `ids` `(B, T)` u32 (padded with `pad_id`) and `mask`
/// `(B, T)` u32.
pub fn pad_batch(
    seqs: &[&[u32]],
    pad_id: u32,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let b = seqs.len();
    let t = seqs.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
    let mut ids = vec![pad_id; b * t];
    let mut mask = vec![0u32; b * t];
    for (row, seq) in seqs.iter().enumerate() {
        ids[row * t..row * t + seq.len()].copy_from_slice(seq);
        mask[row * t..row * t + seq.len()].fill(1);
    }
    Ok((
        Tensor::from_vec(ids, (b, t), device)?,
        Tensor::from_vec(mask, (b, t), device)?,
    ))
}

fn tok_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Tokenizer {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn read_lowercase(tokenizer_config: Option<&Path>) -> Result<bool> {
    let Some(path) = tokenizer_config else {
        return Ok(true);
    };
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(json
        .get("do_lower_case")
        .and_then(|v| v.as_bool())
        .unwrap_or(true))
}

/// A BERT WordPiece tokenizer from a `vocab.txt`, as `BertTokenizerFast` builds it.
fn from_vocab(path: &Path, lowercase: bool) -> Result<Tokenizer> {
    let vocab = path
        .to_str()
        .ok_or_else(|| tok_err(path, "path is not valid UTF-8"))?;
    let model = WordPiece::from_file(vocab)
        .unk_token("[UNK]".into())
        .continuing_subword_prefix("##".into())
        .build()
        .map_err(|e| tok_err(path, e))?;
    let mut tok = Tokenizer::new(model);
    let id = |t: &str| {
        tok.token_to_id(t)
            .ok_or_else(|| tok_err(path, format!("vocabulary has no {t} token")))
    };
    let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
    tok.with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase)))
        .map_err(|e| tok_err(path, e))?;
    tok.with_pre_tokenizer(Some(BertPreTokenizer))
        .with_post_processor(Some(BertProcessing::new(
            ("[SEP]".into(), sep),
            ("[CLS]".into(), cls),
        )))
        .with_decoder(Some(WordPieceDecoder::default()));
    Ok(tok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_to_the_longest_with_a_mask() -> candle_core::Result<()> {
        let (ids, mask) = pad_batch(&[&[101, 7, 102], &[101, 102]], 0, &Device::Cpu)?;
        assert_eq!(
            ids.to_vec2::<u32>()?,
            vec![vec![101, 7, 102], vec![101, 102, 0]]
        );
        assert_eq!(mask.to_vec2::<u32>()?, vec![vec![1, 1, 1], vec![1, 1, 0]]);
        Ok(())
    }

    #[test]
    fn builds_a_wordpiece_tokenizer_from_a_vocab() {
        let dir = tempfile::tempdir().unwrap();
        let vocab = dir.path().join("vocab.txt");
        let words = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s", "!",
        ];
        std::fs::write(&vocab, words.join("\n")).unwrap();
        let tok = TeacherTokenizer::load(&TokenizerFile::Vocab(vocab), None, 6).unwrap();
        assert_eq!(tok.encode("Hello worlds!").unwrap(), vec![2, 5, 6, 7, 8, 3]);
        assert_eq!(
            tok.encode("hello hello hello hello hello").unwrap().len(),
            6,
            "truncated"
        );
        assert_eq!(tok.encode("").unwrap(), vec![2, 3]);
        assert_eq!(tok.encode("zebra").unwrap(), vec![2, 1, 3]);
    }
}
