//! The teacher's WordPiece tokenizer and dynamic padding.
//!
//! A teacher folder's `tokenizer.json` is used as is (its fixed padding switched off; we
//! pad per batch), or, when there is only a `vocab.txt`, a BERT tokenizer is built from it
//! as transformers' `BertTokenizerFast` would: BERT normaliser (lower-casing per
//! `tokenizer_config.json`'s `do_lower_case`, default true), BERT pre-tokeniser, WordPiece
//! with `##` continuations, `[CLS] … [SEP]` around each sentence. Sequences are truncated
//! to `max_len` tokens, specials included.
//!
//! Sentence pairs are read as transformers' `BertForSequenceClassification` reads them:
//! `[CLS] a [SEP] b [SEP]`, token type 0 for `[CLS] a [SEP]` and 1 for `b [SEP]`; a pair
//! too long is cut `longest_first` as the `tokenizers` library does (the longer text
//! loses tokens until the two are as long; when both must be cut, the first keeps
//! `⌊k/2⌋` of the `k` tokens left for text, the second `⌈k/2⌉`).
//!
//! [`pad_batch`] turns token id lists into `ids` `(B, T)` u32 and `mask` `(B, T)` u32
//! (1 for tokens, 0 for padding), `T` the longest sequence of the batch; [`Encoded::batch`]
//! does the same for rows of a data set, with token type ids `(B, T)` for pairs.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use distill_data::Dataset;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{PostProcessor, Tokenizer, TruncationParams};

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

    /// Token ids and token type ids of the pair `(a, b)`: `[CLS] a [SEP] b [SEP]`, types
    /// 0 up to the first `[SEP]` and 1 after it, truncated `longest_first`.
    pub fn encode_pair(&self, a: &str, b: &str) -> Result<(Vec<u32>, Vec<u32>)> {
        self.check_pairs()?;
        let enc = self
            .inner
            .encode_fast((a, b), true)
            .map_err(|e| tok_err(&self.path, e))?;
        Ok((enc.get_ids().to_vec(), enc.get_type_ids().to_vec()))
    }

    /// Token ids and type ids of the pairs `(firsts[i], seconds[i])`, in input order
    /// (encoded in parallel).
    pub fn encode_pairs<S: AsRef<str> + Sync>(
        &self,
        firsts: &[S],
        seconds: &[S],
    ) -> Result<Encoded> {
        if firsts.len() != seconds.len() {
            return Err(Error::Setting(format!(
                "{} first texts but {} second texts",
                firsts.len(),
                seconds.len()
            )));
        }
        self.check_pairs()?;
        let inputs: Vec<(&str, &str)> = firsts
            .iter()
            .zip(seconds)
            .map(|(a, b)| (a.as_ref(), b.as_ref()))
            .collect();
        let encodings = self
            .inner
            .encode_batch_fast(inputs, true)
            .map_err(|e| tok_err(&self.path, e))?;
        let (ids, types) = encodings
            .into_iter()
            .map(|e| (e.get_ids().to_vec(), e.get_type_ids().to_vec()))
            .unzip();
        Ok(Encoded {
            ids,
            type_ids: Some(types),
        })
    }

    /// The rows of `data`: single sentences, or sentence pairs when its examples are pairs
    /// (a data set mixing the two is an error).
    pub fn encode_data(&self, data: &Dataset) -> Result<Encoded> {
        match pair_texts(data)? {
            None => Ok(Encoded {
                ids: self.encode_all(&data.texts())?,
                type_ids: None,
            }),
            Some(seconds) => self.encode_pairs(&data.texts(), &seconds),
        }
    }

    /// Pairs need a post-processor that adds the specials (a `tokenizer.json` may have none).
    fn check_pairs(&self) -> Result<()> {
        match self.inner.get_post_processor() {
            Some(p) if p.added_tokens(true) > 0 => Ok(()),
            _ => Err(tok_err(
                &self.path,
                "no post-processor adds [CLS] and [SEP] to sentence pairs",
            )),
        }
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

/// The second texts of `data` when its examples are sentence pairs, `None` when they are
/// single sentences; a mix is an error.
pub fn pair_texts(data: &Dataset) -> Result<Option<Vec<&str>>> {
    if !data.examples.iter().any(|e| e.text_pair.is_some()) {
        return Ok(None);
    }
    data.text_pairs().map(Some).ok_or_else(|| {
        let source = data
            .source
            .as_ref()
            .map_or_else(|| "the data".to_string(), |p| p.display().to_string());
        Error::Setting(format!(
            "{source} mixes single sentences and sentence pairs"
        ))
    })
}

/// Rows of a data set as token ids, with token type ids when they are sentence pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoded {
    /// Token ids per row, specials included.
    pub ids: Vec<Vec<u32>>,
    /// Token type ids per row, as long as its ids; `None` for single sentences (all 0).
    pub type_ids: Option<Vec<Vec<u32>>>,
}

/// A padded batch: `ids`, `mask` and (pairs only) `type_ids`, all `(B, T)` u32.
#[derive(Debug, Clone)]
pub struct Batch {
    pub ids: Tensor,
    /// `None` for single sentences: the model then adds type 0 everywhere.
    pub type_ids: Option<Tensor>,
    pub mask: Tensor,
}

impl Encoded {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether the rows are sentence pairs.
    pub fn is_pairs(&self) -> bool {
        self.type_ids.is_some()
    }

    /// The rows at `rows`, padded to the longest of them (ids with `pad_id`, type ids with 0
    /// as transformers pads them).
    pub fn batch(
        &self,
        rows: &[usize],
        pad_id: u32,
        device: &Device,
    ) -> candle_core::Result<Batch> {
        let seqs: Vec<&[u32]> = rows.iter().map(|&i| self.ids[i].as_slice()).collect();
        let (ids, mask) = pad_batch(&seqs, pad_id, device)?;
        let type_ids = match &self.type_ids {
            None => None,
            Some(types) => {
                let seqs: Vec<&[u32]> = rows.iter().map(|&i| types[i].as_slice()).collect();
                Some(pad_batch(&seqs, 0, device)?.0)
            }
        };
        Ok(Batch {
            ids,
            type_ids,
            mask,
        })
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

    #[test]
    fn encodes_pairs_with_type_ids_and_longest_first_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let vocab = dir.path().join("vocab.txt");
        let words = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s", "!",
        ];
        std::fs::write(&vocab, words.join("\n")).unwrap();
        let load =
            |n| TeacherTokenizer::load(&TokenizerFile::Vocab(vocab.clone()), None, n).unwrap();
        let (ids, types) = load(16).encode_pair("hello world", "worlds!").unwrap();
        assert_eq!(ids, vec![2, 5, 6, 3, 6, 7, 8, 3]);
        assert_eq!(types, vec![0, 0, 0, 0, 1, 1, 1, 1]);
        // 6 tokens leave 3 for text: the longer second text loses its surplus first, then
        // both are cut, the second keeping the odd token.
        let (ids, types) = load(6).encode_pair("hello world", "worlds!").unwrap();
        assert_eq!(ids, vec![2, 5, 3, 6, 7, 3]);
        assert_eq!(types, vec![0, 0, 0, 1, 1, 1]);
        // A longer first text alone is cut.
        let (ids, _) = load(6).encode_pair("hello world hello", "!").unwrap();
        assert_eq!(ids, vec![2, 5, 6, 3, 8, 3]);
        let (ids, types) = load(8).encode_pair("hello", "").unwrap();
        assert_eq!((ids, types), (vec![2, 5, 3, 3], vec![0, 0, 0, 1]));
    }
}
