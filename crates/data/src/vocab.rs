//! The word vocabulary: token ↔ id, built as torchtext's legacy `build_vocab`
//! does. Special tokens come first (`<unk>` = 0, `<pad>` = 1, then any extra
//! ones), then words by descending frequency, ties in alphabetical order;
//! `max_size` counts words only, and words rarer than `min_freq` are left out.
//!
//! On disk a vocabulary is a JSON object (`vocab.json` in a model folder):
//! `{"format": "candle-distill-vocab/1", "itos": ["<unk>", "<pad>", …],
//! "specials": ["<unk>", "<pad>"]}`, where `itos[id]` is the token of `id`
//! and `specials` is a prefix of `itos`.

use crate::error::{Error, Result};
use crate::io::write_atomic;
use std::collections::HashMap;
use std::path::Path;

/// The `format` value written in `vocab.json`.
pub const VOCAB_FORMAT: &str = "candle-distill-vocab/1";

/// Token ↔ id mapping. Unknown tokens map to [`Vocab::UNK`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocab {
    itos: Vec<String>,
    stoi: HashMap<String, u32>,
    specials: usize,
}

/// Options for building a [`Vocab`] from tokenised sentences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VocabBuilder {
    /// Most words kept, not counting specials (default 10 000).
    pub max_size: usize,
    /// Fewest occurrences for a word to be kept (default 1).
    pub min_freq: usize,
    /// Special tokens, first in the vocabulary. `<unk>` and `<pad>` are always
    /// ids 0 and 1; any others listed here follow them in this order.
    pub specials: Vec<String>,
}

impl Default for VocabBuilder {
    fn default() -> Self {
        VocabBuilder {
            max_size: 10_000,
            min_freq: 1,
            specials: vec![Vocab::UNK_TOKEN.into(), Vocab::PAD_TOKEN.into()],
        }
    }
}

impl VocabBuilder {
    /// Counts the tokens of `sentences` and builds the vocabulary.
    pub fn build<'a, I: IntoIterator<Item = &'a [String]>>(&self, sentences: I) -> Vocab {
        let mut specials = vec![Vocab::UNK_TOKEN.to_string(), Vocab::PAD_TOKEN.to_string()];
        for s in &self.specials {
            if !specials.contains(s) {
                specials.push(s.clone());
            }
        }
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for sentence in sentences {
            for tok in sentence {
                *counts.entry(tok.as_str()).or_insert(0) += 1;
            }
        }
        let min_freq = self.min_freq.max(1);
        let mut words: Vec<(&str, usize)> = counts
            .into_iter()
            .filter(|(w, c)| *c >= min_freq && !specials.iter().any(|s| s == w))
            .collect();
        words.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        words.truncate(self.max_size);
        let n_specials = specials.len();
        let itos = specials
            .into_iter()
            .chain(words.into_iter().map(|(w, _)| w.to_string()))
            .collect();
        Vocab::from_parts(itos, n_specials)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct VocabFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<String>,
    itos: Vec<String>,
    specials: Vec<String>,
}

impl Vocab {
    /// Id of the unknown-word token `<unk>`.
    pub const UNK: u32 = 0;
    /// Id of the padding token `<pad>`.
    pub const PAD: u32 = 1;
    /// The unknown-word token.
    pub const UNK_TOKEN: &'static str = "<unk>";
    /// The padding token.
    pub const PAD_TOKEN: &'static str = "<pad>";

    fn from_parts(itos: Vec<String>, specials: usize) -> Vocab {
        let stoi = itos
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        Vocab {
            itos,
            stoi,
            specials,
        }
    }

    /// Number of tokens, specials included.
    pub fn len(&self) -> usize {
        self.itos.len()
    }

    /// Always false: `<unk>` and `<pad>` are always present.
    pub fn is_empty(&self) -> bool {
        self.itos.is_empty()
    }

    /// Id of `token`, [`Vocab::UNK`] if it is not in the vocabulary.
    pub fn id(&self, token: &str) -> u32 {
        self.stoi.get(token).copied().unwrap_or(Self::UNK)
    }

    /// Token with id `id`.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.itos.get(id as usize).map(String::as_str)
    }

    /// Whether `token` has its own id.
    pub fn contains(&self, token: &str) -> bool {
        self.stoi.contains_key(token)
    }

    /// Ids of `tokens`.
    pub fn encode(&self, tokens: &[String]) -> Vec<u32> {
        tokens.iter().map(|t| self.id(t)).collect()
    }

    /// All tokens in id order.
    pub fn itos(&self) -> &[String] {
        &self.itos
    }

    /// The special tokens (a prefix of [`Vocab::itos`]).
    pub fn specials(&self) -> &[String] {
        &self.itos[..self.specials]
    }

    /// Writes the vocabulary as JSON (see the module docs), atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let file = VocabFile {
            format: Some(VOCAB_FORMAT.into()),
            itos: self.itos.clone(),
            specials: self.specials().to_vec(),
        };
        let json = serde_json::to_vec_pretty(&file)
            .map_err(|e| Error::format(path, format!("cannot encode vocabulary: {e}")))?;
        write_atomic(path, &json).map_err(|e| Error::io("write", path, e))
    }

    /// Reads a vocabulary written by [`Vocab::save`] (a file without `format`
    /// is accepted). Checks that ids 0 and 1 are `<unk>` and `<pad>`, that
    /// `specials` is a prefix of `itos` and that no token repeats.
    pub fn load(path: &Path) -> Result<Vocab> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        let file: VocabFile = serde_json::from_slice(&bytes).map_err(|e| {
            Error::format(
                path,
                format!("not a vocabulary file (expected JSON with `itos` and `specials`): {e}"),
            )
        })?;
        let bad = |reason: String| Err(Error::format(path, reason));
        if let Some(f) = &file.format {
            if f != VOCAB_FORMAT {
                return bad(format!(
                    "unknown vocabulary format `{f}`, expected `{VOCAB_FORMAT}`"
                ));
            }
        }
        if file.itos.first().map(String::as_str) != Some(Self::UNK_TOKEN)
            || file.itos.get(1).map(String::as_str) != Some(Self::PAD_TOKEN)
        {
            return bad("`itos` must start with \"<unk>\", \"<pad>\"".into());
        }
        if !file.itos.starts_with(&file.specials) || file.specials.len() < 2 {
            return bad(
                "`specials` must be a prefix of `itos` starting with \"<unk>\", \"<pad>\"".into(),
            );
        }
        let vocab = Vocab::from_parts(file.itos, file.specials.len());
        if vocab.stoi.len() != vocab.itos.len() {
            let mut seen = std::collections::HashSet::new();
            let dup = vocab.itos.iter().find(|t| !seen.insert(t.as_str()));
            return bad(format!(
                "token {:?} appears more than once in `itos`",
                dup.map_or("", |s| s)
            ));
        }
        Ok(vocab)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sents(s: &[&str]) -> Vec<Vec<String>> {
        s.iter()
            .map(|l| l.split_whitespace().map(String::from).collect())
            .collect()
    }

    fn build(b: &VocabBuilder, s: &[Vec<String>]) -> Vocab {
        b.build(s.iter().map(Vec::as_slice))
    }

    #[test]
    fn specials_first_then_frequency_then_alphabet() {
        let s = sents(&["b a c a", "c d a <pad>", "e"]);
        let v = build(&VocabBuilder::default(), &s);
        assert_eq!(v.itos(), ["<unk>", "<pad>", "a", "c", "b", "d", "e"]);
        assert_eq!(v.id("<unk>"), Vocab::UNK);
        assert_eq!(v.id("<pad>"), Vocab::PAD);
        assert_eq!(v.id("c"), 3);
        assert_eq!(v.id("zzz"), Vocab::UNK);
        assert_eq!(v.token(4), Some("b"));
        assert_eq!(v.token(99), None);
        assert!(v.contains("e") && !v.contains("f"));
        assert_eq!(v.encode(&s[1]), vec![3, 5, 2, 1]);
    }

    #[test]
    fn max_size_counts_words_only_and_min_freq_filters() {
        let s = sents(&["a a a b b c d d"]);
        let b = VocabBuilder {
            max_size: 2,
            specials: vec!["<unk>".into(), "<pad>".into(), "<mask>".into()],
            ..VocabBuilder::default()
        };
        let v = build(&b, &s);
        assert_eq!(v.itos(), ["<unk>", "<pad>", "<mask>", "a", "b"]);
        assert_eq!(v.specials(), ["<unk>", "<pad>", "<mask>"]);
        let b = VocabBuilder {
            min_freq: 2,
            ..VocabBuilder::default()
        };
        assert_eq!(build(&b, &s).itos(), ["<unk>", "<pad>", "a", "b", "d"]);
        // Extra specials given without the standard ones still follow them.
        let b = VocabBuilder {
            specials: vec!["<mask>".into()],
            ..VocabBuilder::default()
        };
        assert_eq!(&build(&b, &s).itos()[..3], ["<unk>", "<pad>", "<mask>"]);
    }

    #[test]
    fn save_load_round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vocab.json");
        let v = build(&VocabBuilder::default(), &sents(&["x y y z"]));
        v.save(&path).unwrap();
        let back = Vocab::load(&path).unwrap();
        assert_eq!(back, v);

        let cases = [
            ("not json", "not a vocabulary file"),
            (
                r#"{"itos": ["a", "<pad>"], "specials": []}"#,
                "must start with",
            ),
            (
                r#"{"itos": ["<unk>", "<pad>", "a", "a"], "specials": ["<unk>", "<pad>"]}"#,
                "more than once",
            ),
            (
                r#"{"itos": ["<unk>", "<pad>"], "specials": ["<pad>"]}"#,
                "prefix",
            ),
            (
                r#"{"format": "x/9", "itos": ["<unk>", "<pad>"], "specials": []}"#,
                "unknown vocabulary format",
            ),
        ];
        for (content, reason) in cases {
            std::fs::write(&path, content).unwrap();
            let e = Vocab::load(&path).unwrap_err().to_string();
            assert!(e.contains("vocab.json") && e.contains(reason), "{e}");
        }
        let e = Vocab::load(&dir.path().join("missing.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.json"), "{e}");
    }
}
