//! A small seeded mutator: bit flips, byte changes, inserts and deletes, splices of other
//! corpus entries, truncation, repeated chunks, dictionary tokens and extreme numbers.
//! Without coverage feedback it relies on a good corpus and on tokens that matter to the
//! formats (separators, quotes, JSON punctuation, numbers at the edges of the integer types).

/// Tokens that matter to most of the formats read here.
const COMMON: &[&[u8]] = &[
    b"\t",
    b"\n",
    b"\r",
    b"\r\n",
    b"\"",
    b",",
    b" ",
    b"\xEF\xBB\xBF",
    b"\xff",
    b"\xc3",
    b"\0",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b"null",
    b"true",
    b"\"\"",
    b"\\u0000",
    b"\\ud800",
];

/// Numbers that sit at the edges of what a reader might parse.
const NUMBERS: &[&[u8]] = &[
    b"0",
    b"1",
    b"2",
    b"-1",
    b"3",
    b"255",
    b"65536",
    b"4294967295",
    b"4294967296",
    b"9223372036854775807",
    b"18446744073709551615",
    b"18446744073709551616",
    b"1e308",
    b"1e999",
    b"-0.0",
    b"0.5",
    b"1.0",
    b"99999999999",
];

/// A deterministic mutator (xorshift64*), seeded per target.
pub struct Mutator {
    state: u64,
    dict: &'static [&'static [u8]],
    max_len: usize,
}

impl Mutator {
    /// A mutator seeded with `seed`, using `dict` (format tokens) besides the common ones,
    /// making inputs of at most `max_len` bytes.
    pub fn new(seed: u64, dict: &'static [&'static [u8]], max_len: usize) -> Self {
        Self {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            dict,
            max_len,
        }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn token(&mut self) -> &'static [u8] {
        let pick = self.below(COMMON.len() + NUMBERS.len() + self.dict.len());
        if pick < COMMON.len() {
            COMMON[pick]
        } else if pick < COMMON.len() + NUMBERS.len() {
            NUMBERS[pick - COMMON.len()]
        } else {
            self.dict[pick - COMMON.len() - NUMBERS.len()]
        }
    }

    /// A mutant of `base`: one to eight stacked mutations, `corpus` supplying splices.
    pub fn mutate(&mut self, base: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
        let mut v = base.to_vec();
        let rounds = 1 << self.below(4);
        for _ in 0..rounds.min(1 + self.below(8)) {
            self.once(&mut v, corpus);
        }
        v.truncate(self.max_len);
        v
    }

    fn once(&mut self, v: &mut Vec<u8>, corpus: &[Vec<u8>]) {
        let len = v.len();
        let at = self.below(len + 1);
        match self.below(10) {
            0 if len > 0 => v[at.min(len - 1)] ^= 1 << self.below(8),
            1 if len > 0 => {
                const BYTES: &[u8] = b"\0\t\n\r \"',.:;[]{}0159-+eE\\\x7f\x80\xbf\xc0\xef\xff";
                v[at.min(len - 1)] = if self.below(2) == 0 {
                    BYTES[self.below(BYTES.len())]
                } else {
                    self.next() as u8
                };
            }
            2 => {
                let n = 1 + self.below(4);
                let bytes: Vec<u8> = (0..n).map(|_| self.next() as u8).collect();
                v.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let end = (at + 1 + self.below(16.min(len))).min(len);
                v.drain(at.min(len - 1)..end);
            }
            4 if !corpus.is_empty() => {
                let other = &corpus[self.below(corpus.len())];
                if !other.is_empty() {
                    let start = self.below(other.len());
                    let end = start + 1 + self.below(other.len() - start);
                    if self.below(2) == 0 {
                        v.splice(at..at, other[start..end].iter().copied());
                    } else {
                        v.truncate(at);
                        v.extend_from_slice(&other[start..]);
                    }
                }
            }
            5 => v.truncate(at),
            6 if len > 0 => {
                let start = at.min(len - 1);
                let end = (start + 1 + self.below(64)).min(len);
                let chunk = v[start..end].to_vec();
                let most = if self.below(4) == 0 { 2000 } else { 8 };
                let times = 1 + self.below(most);
                let room = self.max_len.saturating_sub(len) / chunk.len();
                let repeated = chunk.repeat(times.min(room));
                v.splice(end..end, repeated);
            }
            7 => {
                let t = self.token();
                v.splice(at..at, t.iter().copied());
            }
            8 => {
                // Replace a run of digits with an extreme number.
                let starts: Vec<usize> = (0..len)
                    .filter(|&i| v[i].is_ascii_digit() && (i == 0 || !v[i - 1].is_ascii_digit()))
                    .collect();
                if !starts.is_empty() {
                    let s = starts[self.below(starts.len())];
                    let e = (s..len).find(|&i| !v[i].is_ascii_digit()).unwrap_or(len);
                    let n = NUMBERS[self.below(NUMBERS.len())];
                    v.splice(s..e, n.iter().copied());
                }
            }
            _ => {
                let t = self.token();
                if len > 0 {
                    let end = (at + t.len()).min(len);
                    v.splice(at.min(len)..end, t.iter().copied());
                } else {
                    v.extend_from_slice(t);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_seeded_and_bounded() {
        let corpus = vec![b"sentence\tlabel\nfine\t1\n".to_vec(), b"x,y".to_vec()];
        let run = |seed| {
            let mut m = Mutator::new(seed, &[b"label"], 64);
            (0..200)
                .map(|i| m.mutate(&corpus[i % 2], &corpus))
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        assert!(a.iter().all(|m| m.len() <= 64));
        assert!(a.iter().any(|m| m != &corpus[0] && m != &corpus[1]));
    }
}
