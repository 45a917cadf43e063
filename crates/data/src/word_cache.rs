//! A bounded raw-word → token-id cache for the `words` tokenization.
//!
//! The word path maps each whitespace-separated word on its own ([`Normalizer::word`]:
//! punctuation, number spelling, lower-casing, Snowball stemming; then [`crate::Vocab::id`]), so a
//! sentence's ids are its words' ids in order and a word's id can be remembered. Stemming is
//! the expensive part of reading text and a corpus repeats a few thousand words, so
//! [`TextEncoder::encode_into`] looks each word up here first and normalises it only on a
//! miss. The answer is the same with or without the cache: it stores what the uncached path
//! computes for the same word.
//!
//! Bounds: at most [`WordCache::capacity`] words are held; when a new word arrives at a full
//! cache, the cache is emptied and refills from there (frequent words come back at once,
//! so a change of vocabulary is followed; memory never grows past the bound). Words longer
//! than [`WordCache::MAX_WORD_BYTES`] bytes are never stored. The cache is a plain value
//! (`&mut`), not shared: a server keeps one per thread, so a lookup takes no lock.
//! Hashing is seeded per cache, so crafted input cannot choose colliding words.

use std::collections::HashMap;

use crate::text::{TextEncoder, Tokenization};
use crate::Normalizer;

/// Marks a word that normalises to nothing (it contributes no token).
const DROPPED: u32 = u32::MAX;

/// Raw word → token id (see the module docs).
#[derive(Clone, Debug)]
pub struct WordCache {
    map: HashMap<Box<str>, u32, foldhash::fast::RandomState>,
    capacity: usize,
}

impl Default for WordCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl WordCache {
    /// Words held by [`WordCache::default`]: SST-2's training set has about 16,000 distinct
    /// raw words, so 65,536 hold a typical English corpus's working set (a few MB).
    pub const DEFAULT_CAPACITY: usize = 1 << 16;
    /// Longer words are normalised every time instead of being stored.
    pub const MAX_WORD_BYTES: usize = 64;

    /// An empty cache holding at most `capacity` words (`0`: caches nothing).
    pub fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::default(),
            capacity,
        }
    }

    /// Most words held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Words held now.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no word is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Forgets every word.
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// The id of `word` (`None`: it normalises to nothing), from the cache or computed and
    /// remembered.
    fn id(&mut self, normalizer: &Normalizer, encoder: &TextEncoder, word: &str) -> Option<u32> {
        let id = match self.map.get(word) {
            Some(&id) => id,
            None => {
                let id = normalizer
                    .word(word)
                    .map_or(DROPPED, |t| encoder.vocab.id(&t));
                if self.capacity > 0 && word.len() <= Self::MAX_WORD_BYTES {
                    if self.map.len() >= self.capacity {
                        self.map.clear();
                    }
                    self.map.insert(word.into(), id);
                }
                id
            }
        };
        (id != DROPPED).then_some(id)
    }
}

impl TextEncoder {
    /// Appends the ids of `text` to `out`, at most `limit` of them: the first `limit` ids of
    /// [`TextEncoder::encode`], through `cache` for the `words` tokenization (WordPiece reads
    /// the whole text with its tokenizer and does not use the cache).
    pub fn encode_into(&self, text: &str, cache: &mut WordCache, limit: usize, out: &mut Vec<u32>) {
        match &self.tokenization {
            Tokenization::Words(normalizer) => {
                let start = out.len();
                for word in crate::normalize::words(text) {
                    if out.len() - start >= limit {
                        break;
                    }
                    if let Some(id) = cache.id(normalizer, self, word) {
                        out.push(id);
                    }
                }
            }
            #[cfg(feature = "wordpiece")]
            Tokenization::WordPiece(_) => {
                out.extend(self.encode(text).into_iter().take(limit));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Vocab, VocabBuilder};

    fn encoder(normalize: bool, corpus: &[&str]) -> TextEncoder {
        let n = Normalizer::new(normalize);
        let tokens: Vec<Vec<String>> = corpus.iter().map(|t| n.tokens(t)).collect();
        let vocab: Vocab = VocabBuilder::default().build(tokens.iter().map(Vec::as_slice));
        TextEncoder::new(Tokenization::Words(n), vocab)
    }

    /// Texts with everything the normaliser treats specially: punctuation-only words,
    /// numbers, the mask, Unicode (upper-case outside ASCII, combining marks, CJK, emoji),
    /// Python's extra separators, a word longer than the cache takes.
    fn odd_texts() -> Vec<String> {
        let long = "Charming".repeat(20);
        vec![
            "it 's a charming and often affecting journey . ".into(),
            "in exactly 89 minutes , 1999 -- 2002 '007 2-d".into(),
            "Running RUNS run runner ... -- ! ?".into(),
            "ÜBER über Straße ΣΊΣΥΦΟΣ naïve nai\u{308}ve 東京 🙂 ✓".into(),
            "a\u{1c}b\u{1f}c\u{a0}d\u{2003}e\tf\ng\r\nh".into(),
            "[MASK] the [MASK] <mask> <unk> <pad>".into(),
            format!("{long} {long}, {long}"),
            String::new(),
            "   ".into(),
            "\u{0}\u{7f} \u{feff}x".into(),
        ]
    }

    #[test]
    fn cached_ids_equal_uncached_ids_for_odd_text_in_both_modes() {
        let texts = odd_texts();
        let corpus: Vec<&str> = texts.iter().map(String::as_str).collect();
        for normalize in [true, false] {
            let enc = encoder(normalize, &corpus[..4]);
            for capacity in [0, 1, 3, WordCache::DEFAULT_CAPACITY] {
                let mut cache = WordCache::new(capacity);
                // Twice: the second pass reads what the first stored.
                for pass in 0..2 {
                    for text in &texts {
                        let mut got = vec![7];
                        enc.encode_into(text, &mut cache, usize::MAX, &mut got);
                        assert_eq!(got[0], 7, "appends");
                        assert_eq!(
                            &got[1..],
                            enc.encode(text),
                            "{text:?}, normalize {normalize}, capacity {capacity}, pass {pass}"
                        );
                        assert!(cache.len() <= capacity);
                    }
                }
            }
        }
    }

    #[test]
    fn the_limit_keeps_the_first_ids() {
        let enc = encoder(true, &["good film bad plot"]);
        let mut cache = WordCache::default();
        let text = ". good ... film bad plot";
        let all = enc.encode(text);
        assert_eq!(all.len(), 4);
        for limit in 0..6 {
            let mut got = Vec::new();
            enc.encode_into(text, &mut cache, limit, &mut got);
            assert_eq!(got, all[..limit.min(4)]);
        }
    }

    #[test]
    fn a_full_cache_empties_and_refills_and_long_words_are_not_kept() {
        let enc = encoder(true, &["a b c d"]);
        let mut cache = WordCache::new(3);
        let mut out = Vec::new();
        enc.encode_into("a b c", &mut cache, usize::MAX, &mut out);
        assert_eq!(cache.len(), 3);
        // A fourth word at a full cache: emptied, then the new word stored.
        enc.encode_into("d", &mut cache, usize::MAX, &mut out);
        assert_eq!(cache.len(), 1);
        // A repeat is served from the cache and stores nothing new.
        enc.encode_into("d d d", &mut cache, usize::MAX, &mut out);
        assert_eq!(cache.len(), 1);
        let long = "x".repeat(WordCache::MAX_WORD_BYTES + 1);
        enc.encode_into(&long, &mut cache, usize::MAX, &mut out);
        assert_eq!(cache.len(), 1, "a word over the byte limit is not stored");
        let at_limit = "y".repeat(WordCache::MAX_WORD_BYTES);
        enc.encode_into(&at_limit, &mut cache, usize::MAX, &mut out);
        assert_eq!(cache.len(), 2);
        cache.clear();
        assert!(cache.is_empty());
        assert_eq!(out, enc.encode(&format!("a b c d d d d {long} {at_limit}")));
    }

    #[test]
    fn a_cache_filled_by_one_text_answers_others_correctly() {
        // Words that share a stem, a punctuation-stripped form or a case: each raw form is
        // its own entry and gets its own (possibly shared) id.
        let enc = encoder(true, &["charm charming", "it s"]);
        let mut cache = WordCache::default();
        let mut out = Vec::new();
        for text in ["Charming charm CHARMS", "it's it 's IT'S", "charm. charm"] {
            out.clear();
            enc.encode_into(text, &mut cache, usize::MAX, &mut out);
            assert_eq!(out, enc.encode(text), "{text}");
        }
    }
}
