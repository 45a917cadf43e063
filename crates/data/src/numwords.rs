//! English number words for digit strings, exactly as Python's `inflect`
//! package writes them with `number_to_words(s)` and its default options
//! (`andword="and"`, `comma=","`, no grouping): `89` → `eighty-nine`,
//! `2002` → `two thousand and two`, `1999` → `one thousand, nine hundred and
//! ninety-nine`. The original normalisation spells digit-only tokens this way,
//! so a vocabulary built here matches one built by the Python original.
//!
//! `inflect` builds the words with a cascade of regular-expression
//! substitutions; this module builds the same intermediate string (three-digit
//! groups from the right, each followed by `", "`, with the same stray spaces)
//! and applies the same clean-up steps, so its quirks carry over: a lone last
//! group becomes `and <word>` (`1000001` → `one million and one`), a group of
//! several words keeps its comma (`1100` → `one thousand, one hundred`).

const UNIT: [&str; 10] = [
    "", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];
const TEEN: [&str; 10] = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TEN: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
/// `inflect`'s `mill`: the suffix for each three-digit group, the units group
/// included (a single space there, cleaned up at the end).
const MILL: [&str; 12] = [
    " ",
    " thousand",
    " million",
    " billion",
    " trillion",
    " quadrillion",
    " quintillion",
    " sextillion",
    " septillion",
    " octillion",
    " nonillion",
    " decillion",
];

/// The most significant digits `inflect` can spell (up to the decillions).
pub const MAX_DIGITS: usize = 3 * MILL.len();

/// `inflect.tenfn`: two digits, then the group suffix.
fn tens(t: usize, u: usize, mill: usize) -> String {
    if t == 1 {
        format!("{}{}", TEEN[u], MILL[mill])
    } else {
        let hyphen = if t > 0 && u > 0 { "-" } else { "" };
        format!("{}{hyphen}{}{}", TEN[t], UNIT[u], MILL[mill])
    }
}

/// `inflect.hundfn`: one three-digit group with its suffix and `", "`.
fn hundreds(h: usize, t: usize, u: usize, mill: usize) -> String {
    if h > 0 {
        let and = if t > 0 || u > 0 { " and " } else { "" };
        format!("{} hundred{and}{}{}, ", UNIT[h], tens(t, u, 0), MILL[mill])
    } else if t > 0 || u > 0 {
        format!("{}{}, ", tens(t, u, 0), MILL[mill])
    } else {
        String::new()
    }
}

/// Spells a string of ASCII digits as `inflect`'s `number_to_words` does.
/// Leading zeros are ignored (`007` → `seven`). Returns `None` when `digits`
/// is empty, holds anything but ASCII digits, or has more than
/// [`MAX_DIGITS`] significant digits (where `inflect` raises an error).
pub fn number_to_words(digits: &str) -> Option<String> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = digits.trim_start_matches('0');
    match significant {
        "" => return Some("zero".into()),
        "1" => return Some("one".into()),
        s if s.len() > MAX_DIGITS => return None,
        _ => {}
    }
    let d: Vec<usize> = significant.bytes().map(|b| usize::from(b - b'0')).collect();
    let groups = d.len() / 3;
    let lead = d.len() % 3;

    let mut raw = match lead {
        2 => format!("{}, ", tens(d[0], d[1], groups)),
        1 => format!("{}{}, ", UNIT[d[0]], MILL[groups]),
        _ => String::new(),
    };
    for (g, chunk) in d[lead..].chunks(3).enumerate() {
        raw.push_str(&hundreds(chunk[0], chunk[1], chunk[2], groups - 1 - g));
    }
    Some(clean_up(raw))
}

/// `inflect`'s clean-up of the substituted string, step by step.
fn clean_up(mut s: String) -> String {
    // Drop the final group separator.
    if s.ends_with(", ") {
        s.truncate(s.len() - 2);
    }
    // `\s+,` → `,`
    let mut no_space_comma = String::with_capacity(s.len());
    for c in s.chars() {
        if c == ',' {
            let kept = no_space_comma.trim_end().len();
            no_space_comma.truncate(kept);
        }
        no_space_comma.push(c);
    }
    s = no_space_comma;
    // `, (\S+)\s+\Z` → ` and \1`: a last group of one word joins with "and".
    let trimmed = s.trim_end();
    if trimmed.len() < s.len() {
        if let Some(pos) = trimmed.rfind(", ") {
            let word = &trimmed[pos + 2..];
            if !word.is_empty() && !word.contains(char::is_whitespace) {
                s = format!("{} and {word}", &trimmed[..pos]);
            }
        }
    }
    // `\s+` → ` `, then strip.
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::number_to_words as w;

    fn words(s: &str) -> String {
        w(s).unwrap()
    }

    #[test]
    fn small_numbers() {
        assert_eq!(words("0"), "zero");
        assert_eq!(words("1"), "one");
        assert_eq!(words("7"), "seven");
        assert_eq!(words("10"), "ten");
        assert_eq!(words("13"), "thirteen");
        assert_eq!(words("20"), "twenty");
        assert_eq!(words("21"), "twenty-one");
        assert_eq!(words("89"), "eighty-nine");
    }

    #[test]
    fn hundreds_and_thousands() {
        assert_eq!(words("100"), "one hundred");
        assert_eq!(words("101"), "one hundred and one");
        assert_eq!(words("110"), "one hundred and ten");
        assert_eq!(words("1000"), "one thousand");
        assert_eq!(words("1001"), "one thousand and one");
        assert_eq!(words("1010"), "one thousand and ten");
        assert_eq!(words("1100"), "one thousand, one hundred");
        assert_eq!(words("1999"), "one thousand, nine hundred and ninety-nine");
        assert_eq!(words("2002"), "two thousand and two");
        assert_eq!(words("10000"), "ten thousand");
        assert_eq!(words("100000"), "one hundred thousand");
    }

    #[test]
    fn millions_and_up() {
        assert_eq!(words("1000000"), "one million");
        assert_eq!(words("1000001"), "one million and one");
        assert_eq!(
            words("1234567"),
            "one million, two hundred and thirty-four thousand, five hundred and sixty-seven"
        );
        assert_eq!(
            words("999999"),
            "nine hundred and ninety-nine thousand, nine hundred and ninety-nine"
        );
        assert_eq!(words("1000000000"), "one billion");
    }

    #[test]
    fn leading_zeros_and_limits() {
        assert_eq!(words("007"), "seven");
        assert_eq!(words("00"), "zero");
        assert_eq!(words("01"), "one");
        assert_eq!(w(""), None);
        assert_eq!(w("12a"), None);
        assert_eq!(w("-3"), None);
        assert!(w(&"9".repeat(36)).is_some());
        assert_eq!(w(&"1".repeat(37)), None);
        assert_eq!(
            words(&format!("000{}", "9".repeat(36))),
            words(&"9".repeat(36))
        );
    }
}
