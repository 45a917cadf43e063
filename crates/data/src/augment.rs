//! Data augmentation of Tang et al. (2019): unlabelled transfer sentences for the teacher to
//! label and the student to imitate.
//!
//! For each sentence, `n_iter` samples are drawn. Per whitespace word: with probability
//! `p_mask` it becomes [`MASK`]; else with probability `p_swap` it becomes a word of the same
//! kind (from a [`Substitutes`] table: the original uses part-of-speech classes); with
//! probability `p_ngram` the sample is then cut to a random n-gram, `n` uniform in
//! `1..=max_ngram`. Samples equal to their source or to an earlier sample are dropped.
//! Everything is drawn from one ChaCha8 stream seeded by `seed`, in input order.
//! A sentence pair is perturbed text by text, each text as above.

use std::collections::{HashMap, HashSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The mask word written into augmented sentences: BERT's own mask token, which the teacher
/// reads as such and the student's normaliser turns into its `<mask>` token.
pub const MASK: &str = "[MASK]";

/// Replacement candidates per word (`word → words of the same kind`).
pub type Substitutes = HashMap<String, Vec<String>>;

/// Augmentation settings; defaults are the paper's.
#[derive(Clone, Debug)]
pub struct Augmenter {
    pub p_mask: f64,
    pub p_swap: f64,
    pub p_ngram: f64,
    pub max_ngram: usize,
    /// Samples drawn per sentence.
    pub n_iter: usize,
    pub seed: u64,
}

impl Default for Augmenter {
    fn default() -> Self {
        Self {
            p_mask: 0.1,
            p_swap: 0.1,
            p_ngram: 0.25,
            max_ngram: 5,
            n_iter: 20,
            seed: 0,
        }
    }
}

impl Augmenter {
    /// New sentences from `sentences`, deduplicated (against each other and the sources).
    pub fn augment<S: AsRef<str>>(
        &self,
        sentences: &[S],
        substitutes: &Substitutes,
    ) -> Vec<String> {
        let seen = sentences
            .iter()
            .map(|s| normalise_space(s.as_ref()))
            .collect();
        self.augment_unseen(sentences, substitutes, seen)
    }

    /// [`Self::augment`], dropping samples already in `seen` (normalised spacing).
    fn augment_unseen<S: AsRef<str>>(
        &self,
        sentences: &[S],
        substitutes: &Substitutes,
        mut seen: HashSet<String>,
    ) -> Vec<String> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut out = Vec::new();
        for sentence in sentences {
            let words: Vec<&str> = sentence.as_ref().split_whitespace().collect();
            if words.is_empty() {
                continue;
            }
            for _ in 0..self.n_iter {
                let sample = self.sample(&words, substitutes, &mut rng);
                if seen.insert(sample.clone()) {
                    out.push(sample);
                }
            }
        }
        out
    }

    /// New examples from `data`'s texts, unlabelled: for a pair task each sample
    /// perturbs both texts (each as a sentence is perturbed), and a sample equal
    /// to its source pair or an earlier sample is dropped.
    pub fn augment_dataset(
        &self,
        data: &crate::Dataset,
        substitutes: &Substitutes,
    ) -> crate::Dataset {
        self.augment_dataset_avoiding(data, substitutes, &crate::Dataset::default())
    }

    /// [`Self::augment_dataset`], also dropping samples equal to an example of
    /// `held_out` (a validation part: a copy of one would carry it into training).
    pub fn augment_dataset_avoiding(
        &self,
        data: &crate::Dataset,
        substitutes: &Substitutes,
        held_out: &crate::Dataset,
    ) -> crate::Dataset {
        let key = |a: &str, b: Option<&str>| match b {
            Some(b) => format!("{}\t{}", normalise_space(a), normalise_space(b)),
            None => normalise_space(a),
        };
        let mut seen: HashSet<String> = data
            .examples
            .iter()
            .chain(&held_out.examples)
            .map(|e| key(&e.text, e.text_pair.as_deref()))
            .collect();
        let Some(pairs) = data.text_pairs().filter(|_| data.is_pairs()) else {
            let texts = self.augment_unseen(&data.texts(), substitutes, seen);
            return crate::Dataset::from_texts(texts);
        };
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let texts = data.texts();
        let mut out = crate::Dataset::default();
        for (a, b) in texts.iter().zip(&pairs) {
            let (wa, wb): (Vec<&str>, Vec<&str>) = (
                a.split_whitespace().collect(),
                b.split_whitespace().collect(),
            );
            if wa.is_empty() && wb.is_empty() {
                continue;
            }
            for _ in 0..self.n_iter {
                let sa = self.sample(&wa, substitutes, &mut rng);
                let sb = self.sample(&wb, substitutes, &mut rng);
                if seen.insert(key(&sa, Some(&sb))) {
                    out.examples.push(crate::Example {
                        text: sa,
                        text_pair: Some(sb),
                        label: None,
                    });
                }
            }
        }
        out
    }

    fn sample(&self, words: &[&str], substitutes: &Substitutes, rng: &mut ChaCha8Rng) -> String {
        let mut new: Vec<&str> = Vec::with_capacity(words.len());
        for &w in words {
            let x: f64 = rng.gen();
            let word = if x < self.p_mask {
                MASK
            } else if x < self.p_mask + self.p_swap {
                match substitutes.get(w) {
                    Some(c) if !c.is_empty() => c[rng.gen_range(0..c.len())].as_str(),
                    _ => w,
                }
            } else {
                w
            };
            new.push(word);
        }
        if rng.gen::<f64>() < self.p_ngram && new.len() > 1 {
            let n = rng.gen_range(1..=self.max_ngram.max(1)).min(new.len());
            let start = rng.gen_range(0..=new.len() - n);
            new = new[start..start + n].to_vec();
        }
        new.join(" ")
    }
}

fn normalise_space(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The distinct whitespace words of `texts`, in first-seen order: the words a
/// [`Substitutes`] table is built for.
pub fn distinct_words<S: AsRef<str>>(texts: &[S]) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut words = Vec::new();
    for word in texts.iter().flat_map(|t| t.as_ref().split_whitespace()) {
        if seen.insert(word) {
            words.push(word.to_string());
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_words_keep_first_seen_order() {
        let texts = ["the cat  sat", "", "a cat , the end", "\tsat\n"];
        assert_eq!(
            distinct_words(&texts),
            ["the", "cat", "sat", "a", ",", "end"]
        );
        assert!(distinct_words::<&str>(&[]).is_empty());
    }

    fn subs() -> Substitutes {
        let mut s = Substitutes::new();
        s.insert("good".into(), vec!["great".into(), "fine".into()]);
        s
    }

    #[test]
    fn samples_equal_to_a_held_out_example_are_dropped() {
        // Unigrams only: every sample is one word of the source, masked or not.
        let aug = Augmenter {
            p_mask: 0.0,
            p_swap: 0.0,
            p_ngram: 1.0,
            max_ngram: 1,
            n_iter: 30,
            ..Augmenter::default()
        };
        let data = crate::Dataset::from_texts(vec!["plain good film".into()]);
        let texts =
            |d: &crate::Dataset| d.texts().iter().map(|t| t.to_string()).collect::<Vec<_>>();
        let all = texts(&aug.augment_dataset(&data, &subs()));
        assert!(all.contains(&"good".to_string()), "{all:?}");
        // `good  ` is the held-out sentence `good` with other spacing.
        let held_out = crate::Dataset::from_texts(vec!["good  ".into()]);
        let kept = texts(&aug.augment_dataset_avoiding(&data, &subs(), &held_out));
        let expected: Vec<String> = all.into_iter().filter(|t| t != "good").collect();
        assert_eq!(kept, expected);
    }

    #[test]
    fn same_seed_same_samples_and_no_duplicates() {
        let data = ["a good film about nothing much", "bad", "good"];
        let aug = Augmenter {
            n_iter: 30,
            seed: 3,
            ..Augmenter::default()
        };
        let a = aug.augment(&data, &subs());
        assert_eq!(a, aug.augment(&data, &subs()));
        let unique: HashSet<&String> = a.iter().collect();
        assert_eq!(unique.len(), a.len());
        assert!(!a.iter().any(|s| data.contains(&s.as_str())));
        assert_ne!(
            a,
            Augmenter {
                seed: 4,
                ..aug.clone()
            }
            .augment(&data, &subs())
        );
    }

    #[test]
    fn masks_swaps_and_ngrams_appear_at_about_their_rates() {
        let sentence = "good ".repeat(40);
        let aug = Augmenter {
            n_iter: 400,
            p_ngram: 0.0,
            ..Augmenter::default()
        };
        let samples = aug.augment(&[sentence.as_str()], &subs());
        let words: Vec<&str> = samples.iter().flat_map(|s| s.split(' ')).collect();
        let share = |w: &str| words.iter().filter(|&&x| x == w).count() as f64 / words.len() as f64;
        assert!(
            (share(MASK) - 0.1).abs() < 0.02,
            "mask share {}",
            share(MASK)
        );
        assert!((share("great") + share("fine") - 0.1).abs() < 0.02);
        let cut = Augmenter {
            n_iter: 400,
            p_ngram: 1.0,
            ..Augmenter::default()
        }
        .augment(&[sentence.as_str()], &subs());
        assert!(cut.iter().all(|s| s.split(' ').count() <= 5));
    }

    #[test]
    fn empty_sentences_give_nothing() {
        assert!(Augmenter::default()
            .augment(&["", "   "], &Substitutes::new())
            .is_empty());
    }

    #[test]
    fn pairs_are_perturbed_text_by_text() {
        let mut data =
            crate::Dataset::from_texts(vec!["a good film about nothing".into(), "".into()]);
        data.examples[0].text_pair = Some("good acting , good plot".into());
        data.examples[1].text_pair = Some("good".into());
        let aug = Augmenter {
            n_iter: 20,
            seed: 5,
            ..Augmenter::default()
        };
        let out = aug.augment_dataset(&data, &subs());
        assert!(out.is_pairs() && out.examples.iter().all(|e| e.label.is_none()));
        let firsts = out
            .examples
            .iter()
            .filter(|e| e.text != data.examples[0].text)
            .count();
        let seconds = out
            .examples
            .iter()
            .filter(|e| {
                e.text_pair.as_deref() != Some("good acting , good plot")
                    && e.text_pair.as_deref() != Some("good")
            })
            .count();
        assert!(firsts > 0 && seconds > 0, "{out:?}");
        // An empty first text stays empty; its pair is still perturbed.
        assert!(out
            .examples
            .iter()
            .any(|e| e.text.is_empty() && e.text_pair.as_deref() != Some("good")));
        let mut keys: Vec<_> = out
            .examples
            .iter()
            .map(|e| (&e.text, &e.text_pair))
            .collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n, "duplicates");
        assert_eq!(
            aug.augment_dataset(&data, &subs()),
            out,
            "same seed, same samples"
        );
    }
}
