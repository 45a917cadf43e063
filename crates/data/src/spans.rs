//! Rows that are word spans of other rows. SST-2's training file holds every phrase of each
//! sentence's parse tree as its own row (86.5 % of a random fifth of its rows are spans of
//! the other four fifths), so a validation part drawn row by row is mostly copies of training
//! text. [`SpanGroups`] finds, for every row, the *roots* it belongs to: the rows that hold it
//! as a contiguous run of whitespace-separated words and are not themselves inside a longer
//! row. A split that draws roots and keeps every row with its roots validates on unseen text.

use crate::dataset::Dataset;
use std::collections::HashMap;

/// For each row of a dataset, the roots that contain it (a root contains itself).
///
/// Texts are compared as sequences of whitespace-separated words, exactly (no case folding).
/// Rows with the same text (and the same second text, for pairs) share their roots; pairs
/// are grouped only by that identity, never by spans. An empty text is a root of its own.
#[derive(Clone, Debug)]
pub struct SpanGroups {
    /// Row of each root: its first row, ascending.
    roots: Vec<usize>,
    /// Per row, its distinct text.
    text_of_row: Vec<usize>,
    /// Per distinct text, the positions in `roots` of the roots that contain it, ascending.
    roots_of_text: Vec<Vec<u32>>,
}

impl SpanGroups {
    /// Groups the rows of `data`. Time grows with the number of word positions times the
    /// rows that start with the same two words as each position, not with the square of
    /// the longest row.
    pub fn of(data: &Dataset) -> Self {
        // Distinct texts, in order of first appearance.
        let mut text_of_row = Vec::with_capacity(data.len());
        let mut first_row = Vec::new();
        let mut words: Vec<Vec<&str>> = Vec::new();
        let mut ids: HashMap<(Vec<&str>, Option<&str>), usize> = HashMap::new();
        for (row, e) in data.examples.iter().enumerate() {
            let key = (
                e.text.split_whitespace().collect::<Vec<_>>(),
                e.text_pair.as_deref().map(str::trim),
            );
            let next = ids.len();
            let id = *ids.entry(key.clone()).or_insert_with(|| {
                first_row.push(row);
                words.push(key.0);
                next
            });
            text_of_row.push(id);
        }
        let containers = if data.is_pairs() {
            vec![Vec::new(); words.len()]
        } else {
            containers(&words)
        };
        let is_root: Vec<bool> = containers.iter().map(Vec::is_empty).collect();
        let mut root_index = vec![u32::MAX; words.len()];
        let mut roots = Vec::new();
        for (id, _) in is_root.iter().enumerate().filter(|(_, r)| **r) {
            root_index[id] = roots.len() as u32;
            roots.push(first_row[id]);
        }
        // `roots` follows first appearance, which is ascending in rows.
        let roots_of_text: Vec<Vec<u32>> = containers
            .iter()
            .enumerate()
            .map(|(id, outer)| {
                if is_root[id] {
                    return vec![root_index[id]];
                }
                let mut r: Vec<u32> = outer
                    .iter()
                    .filter(|&&c| is_root[c as usize])
                    .map(|&c| root_index[c as usize])
                    .collect();
                r.sort_unstable();
                r.dedup();
                r
            })
            .collect();
        Self {
            roots,
            text_of_row,
            roots_of_text,
        }
    }

    /// The first row of each root, ascending.
    pub fn roots(&self) -> &[usize] {
        &self.roots
    }

    /// Positions in [`roots`](Self::roots) of the roots that contain `row`.
    pub fn roots_of(&self, row: usize) -> &[u32] {
        &self.roots_of_text[self.text_of_row[row]]
    }
}

/// Per distinct text, the texts that hold it as a proper word span (duplicates possible).
/// Every such container is found, roots included, because every text's every position is
/// checked against the texts that start with the words found there.
fn containers(words: &[Vec<&str>]) -> Vec<Vec<u32>> {
    let mut by_first_two: HashMap<(&str, &str), Vec<u32>> = HashMap::new();
    let mut single: HashMap<&str, u32> = HashMap::new();
    for (id, w) in words.iter().enumerate() {
        match w.as_slice() {
            [] => {}
            [only] => {
                single.insert(only, id as u32);
            }
            [a, b, ..] => by_first_two.entry((a, b)).or_default().push(id as u32),
        }
    }
    let mut out = vec![Vec::new(); words.len()];
    for (outer, w) in words.iter().enumerate() {
        let outer = outer as u32;
        for s in 0..w.len() {
            if w.len() > 1 {
                if let Some(&inner) = single.get(w[s]) {
                    out[inner as usize].push(outer);
                }
            }
            let Some(next) = w.get(s + 1) else { break };
            for &inner in by_first_two.get(&(w[s], *next)).into_iter().flatten() {
                let span = &words[inner as usize];
                if inner != outer && span.len() <= w.len() - s && w[s..s + span.len()] == span[..] {
                    out[inner as usize].push(outer);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Example;

    fn data(texts: &[&str]) -> Dataset {
        Dataset {
            examples: texts
                .iter()
                .map(|t| Example {
                    text: t.to_string(),
                    text_pair: None,
                    label: Some(0),
                })
                .collect(),
            source: None,
        }
    }

    /// Plain reference: every pair of texts compared word by word.
    fn naive_roots(texts: &[&str]) -> Vec<Vec<usize>> {
        let w: Vec<Vec<&str>> = texts
            .iter()
            .map(|t| t.split_whitespace().collect())
            .collect();
        let inside = |a: &[&str], b: &[&str]| {
            a.len() < b.len() && b.windows(a.len().max(1)).any(|x| x == a) && !a.is_empty()
        };
        let is_root: Vec<bool> = (0..w.len())
            .map(|i| !(0..w.len()).any(|j| inside(&w[i], &w[j])))
            .collect();
        (0..w.len())
            .map(|i| {
                let mut r: Vec<usize> = (0..w.len())
                    .filter(|&j| is_root[j] && (w[j] == w[i] || inside(&w[i], &w[j])))
                    .map(|j| (0..=j).find(|&k| w[k] == w[j]).unwrap())
                    .collect();
                r.sort_unstable();
                r.dedup();
                r
            })
            .collect()
    }

    #[test]
    fn phrases_belong_to_every_sentence_that_holds_them() {
        let texts = [
            "the film is great",
            "great",
            "the film",
            "film is",
            "the film is dull",
            "is dull",
            "a b c",
            "b",
            "the film is great",
            "",
            "c a b",
        ];
        let g = SpanGroups::of(&data(&texts));
        assert_eq!(g.roots(), &[0, 4, 6, 9, 10]);
        let rows = |row: usize| -> Vec<usize> {
            g.roots_of(row)
                .iter()
                .map(|&r| g.roots()[r as usize])
                .collect()
        };
        assert_eq!(rows(1), [0]);
        assert_eq!(rows(2), [0, 4]);
        assert_eq!(rows(5), [4]);
        assert_eq!(rows(7), [6, 10]);
        assert_eq!(rows(8), [0], "a duplicate joins the first copy");
        assert_eq!(rows(9), [9], "an empty text is its own root");
        for (row, want) in naive_roots(&texts).into_iter().enumerate() {
            assert_eq!(rows(row), want, "row {row}: {:?}", texts[row]);
        }
    }

    #[test]
    fn agrees_with_the_plain_reference_on_random_texts() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let owned: Vec<String> = (0..300)
            .map(|_| {
                let n = rng.gen_range(0..7);
                (0..n)
                    .map(|_| ["a", "b", "c", "d"][rng.gen_range(0..4)])
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
        let g = SpanGroups::of(&data(&texts));
        for (row, want) in naive_roots(&texts).into_iter().enumerate() {
            let got: Vec<usize> = g
                .roots_of(row)
                .iter()
                .map(|&r| g.roots()[r as usize])
                .collect();
            assert_eq!(got, want, "row {row}: {:?}", texts[row]);
        }
    }

    #[test]
    fn pairs_group_only_identical_pairs() {
        let mut d = data(&["a b", "a", "a b"]);
        for (e, p) in d.examples.iter_mut().zip(["x", "x", "x"]) {
            e.text_pair = Some(p.into());
        }
        let g = SpanGroups::of(&d);
        assert_eq!(g.roots(), &[0, 1]);
        assert_eq!(g.roots_of(2), &[0]);
    }
}
