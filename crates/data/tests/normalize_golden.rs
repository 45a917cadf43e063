//! Golden tests of the original word normalisation against the Python
//! original: the SST-2 dev tokens it produced, and `inflect`'s number words.
//! See `fixtures/README.md` (at the repository root) for where the fixtures come from.

use distill_data::{number_to_words, Normalizer};
use serde::Deserialize;

#[derive(Deserialize)]
struct Row {
    sentence: String,
    tokens: Vec<String>,
}

#[test]
fn normalisation_matches_python_on_sst2_dev() {
    let text = include_str!("../../../fixtures/seed_normalize_dev.jsonl");
    let norm = Normalizer::original();
    let mut total = 0;
    let mut exact = 0;
    let mut mismatches = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let row: Row =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("fixture line {}: {e}", i + 1));
        total += 1;
        let got = norm.tokens(&row.sentence);
        if got == row.tokens {
            exact += 1;
        } else {
            mismatches.push(format!(
                "line {}: {:?}\n  want {:?}\n  got  {:?}",
                i + 1,
                row.sentence,
                row.tokens,
                got
            ));
        }
    }
    let share = exact as f64 / total as f64;
    println!(
        "normalisation golden: {exact}/{total} sentences exact ({:.2}%)",
        100.0 * share
    );
    for m in mismatches.iter().take(20) {
        println!("{m}");
    }
    assert_eq!(total, 872, "the SST-2 dev golden has 872 sentences");
    assert!(share >= 0.99, "only {exact}/{total} sentences match");
}

#[test]
fn number_words_match_inflect() {
    let text = include_str!("../../../fixtures/inflect_numbers.tsv");
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (number, words) = line.split_once('\t').expect("number<TAB>words");
        assert_eq!(
            number_to_words(number).as_deref(),
            Some(words),
            "number {number}"
        );
        checked += 1;
    }
    assert!(checked > 2500, "only {checked} numbers in the fixture");
}
