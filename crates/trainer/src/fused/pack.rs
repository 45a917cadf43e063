//! A batch of sequences packed step by step, as PyTorch's `pack_padded_sequence` does.
//!
//! The rows are sorted by length, longest first (stable), so at step `s` the rows still
//! reading are a prefix `0..count[s]` of the sorted order, and step `s`'s tokens are the
//! contiguous packed rows `offset[s] .. offset[s] + count[s]`. Every array of the fused step
//! that has one row per real token (`N = Σ lengths` rows, no padding) is in this order.
//!
//! Each direction reads its own order: packed row `(s, b)` of the forward direction is
//! position `s` of sorted row `b`, of the backward direction position `len_b − 1 − s`. The map
//! [`Pack::rev`] between the two, `(s, b) ↔ (len_b − 1 − s, b)`, is its own inverse. The
//! state of row `b` after its last step is packed row `(len_b − 1, b)` in both directions
//! ([`Pack::last`]); an empty row never enters and keeps the zero state.

/// Packing of one batch: see the module docs.
#[derive(Clone, Debug, Default)]
pub struct Pack {
    /// `perm[b]`: the batch row at sorted position `b`.
    pub perm: Vec<usize>,
    /// Sorted lengths, longest first.
    pub lens: Vec<usize>,
    /// Rows reading at step `s` (non-increasing).
    pub count: Vec<usize>,
    /// First packed row of step `s`; `offset[steps] = N`.
    pub offset: Vec<usize>,
    /// Forward packed row ↔ backward packed row of the same token.
    pub rev: Vec<usize>,
}

impl Pack {
    /// Packs rows of `lengths` (each clamped to `time`).
    #[cfg(test)]
    pub fn new(lengths: &[usize], time: usize) -> Self {
        let mut pack = Self::default();
        pack.fill(lengths, time);
        pack
    }

    /// Packs rows of `lengths` (each clamped to `time`) into this packing's buffers (a
    /// training step allocates nothing).
    pub fn fill(&mut self, lengths: &[usize], time: usize) {
        self.perm.clear();
        self.perm.extend(0..lengths.len());
        self.perm
            .sort_by_key(|&r| std::cmp::Reverse(lengths[r].min(time)));
        self.lens.clear();
        self.lens
            .extend(self.perm.iter().map(|&r| lengths[r].min(time)));
        let steps = self.lens.first().copied().unwrap_or(0);
        self.count.clear();
        self.count.resize(steps, 0);
        for &l in &self.lens {
            for c in &mut self.count[..l] {
                *c += 1;
            }
        }
        self.offset.clear();
        let mut total = 0;
        for &c in &self.count {
            self.offset.push(total);
            total += c;
        }
        self.offset.push(total);
        self.rev.clear();
        self.rev.resize(total, 0);
        for s in 0..steps {
            for (b, &len) in self.lens[..self.count[s]].iter().enumerate() {
                self.rev[self.offset[s] + b] = self.offset[len - 1 - s] + b;
            }
        }
    }

    /// Number of sequences.
    pub fn rows(&self) -> usize {
        self.perm.len()
    }

    /// Number of steps (the longest length).
    pub fn steps(&self) -> usize {
        self.count.len()
    }

    /// Number of real tokens `N`.
    pub fn tokens(&self) -> usize {
        self.offset.last().copied().unwrap_or(0)
    }

    /// The packed row holding sorted row `b`'s final state, `None` for an empty row.
    pub fn last(&self, b: usize) -> Option<usize> {
        match self.lens[b] {
            0 => None,
            len => Some(self.offset[len - 1] + b),
        }
    }

    /// `(batch row, position)` of each forward packed row, in packed order.
    pub fn forward_positions(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.steps()).flat_map(move |s| (0..self.count[s]).map(move |b| (self.perm[b], s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_by_step_and_maps_directions() {
        // Rows of lengths 2, 0, 3, 1 (time 3).
        let p = Pack::new(&[2, 0, 3, 1], 3);
        assert_eq!(p.perm, [2, 0, 3, 1]);
        assert_eq!(p.lens, [3, 2, 1, 0]);
        assert_eq!(p.count, [3, 2, 1]);
        assert_eq!(p.offset, [0, 3, 5, 6]);
        assert_eq!(p.tokens(), 6);
        // Sorted row 0 (length 3): forward rows 0, 3, 5 ↔ backward rows 5, 3, 0.
        assert_eq!((p.rev[0], p.rev[3], p.rev[5]), (5, 3, 0));
        // Sorted row 1 (length 2): forward rows 1, 4 ↔ backward 4, 1; row 2 maps to itself.
        assert_eq!((p.rev[1], p.rev[4], p.rev[2]), (4, 1, 2));
        for i in 0..p.tokens() {
            assert_eq!(p.rev[p.rev[i]], i, "an involution");
        }
        assert_eq!(
            (p.last(0), p.last(1), p.last(2), p.last(3)),
            (Some(5), Some(4), Some(2), None)
        );
        let pos: Vec<_> = p.forward_positions().collect();
        assert_eq!(pos, [(2, 0), (0, 0), (3, 0), (2, 1), (0, 1), (2, 2)]);
    }

    #[test]
    fn empty_batches_and_clamped_lengths() {
        let p = Pack::new(&[0, 0], 1);
        assert_eq!((p.steps(), p.tokens(), p.last(0)), (0, 0, None));
        let p = Pack::new(&[5], 2);
        assert_eq!((p.lens.as_slice(), p.tokens()), (&[2][..], 2));
    }
}
