//! The LSTM recurrence over many sentences at once, one sentence per SIMD lane.
//!
//! Same step as [`crate::cell`] (gate order i, f, g, o as PyTorch):
//! ```text
//! z = xg_t + W_hh·h      i = σ(z_i)  f = σ(z_f)  g = tanh(z_g)  o = σ(z_o)
//! c = f⊙c + i⊙g          h = o⊙tanh(c)
//! ```
//! but for a block of [`LANES`] sentences side by side: every state is stored unit-major,
//! `h[k][l]` = unit `k` of sentence `l`, so each arithmetic line of the step is one vector
//! operation over the block (16 `f32` lanes: one AVX-512 register, two AVX2 ones) instead of
//! one sentence's short dependent chain. A step of one sentence is a chain of ~20 dependent
//! operations through `W·h` and two nonlinearities; sixteen independent chains keep the
//! vector units busy where one leaves them waiting.
//!
//! Each lane reads its own input row per step (`xg` of its token at its position: a table
//! row for layer 0, a projected row for deeper layers), gathered through per-step row
//! offsets that the caller lays out in reading order (right to left for the backward
//! direction, starting at each sentence's last real token). A lane past its length keeps its
//! state (a masked update), so the block runs `max(len)` steps and shorter sentences drop out
//! with their final state intact; sorting sentences by length keeps that waste small. Both
//! directions of a layer run in the same loop: each step ends in a chain of dependent
//! nonlinearities, and the other direction's work fills the wait.
//!
//! Three kernels: the portable one sums in the same order as [`crate::cell::forward_seq`]
//! (`k` ascending, multiply then add) with the same nonlinearities, so a lane's result is the
//! per-sentence result bit for bit; the AVX-512 one ([`avx512`]) fuses multiply-adds and
//! replaces `σ`'s division by a refined reciprocal estimate, within a few roundings per step
//! of it; the AVX2 one ([`avx2`], even hidden sizes, for CPUs without AVX-512) fuses
//! multiply-adds over the two 8-float halves of each lane vector.

// Lane loops index several arrays in step; an index reads plainer than zipped iterators.
#![allow(clippy::needless_range_loop)]

use distill_ops::math::{sigmoid, tanh};

/// Sentences per block: 16 `f32`, one 512-bit register.
pub const LANES: usize = 16;

/// One value per sentence of a block, aligned to a cache line (one 512-bit load).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(64))]
pub struct Lane(pub [f32; LANES]);

/// Scratch for one block's recurrence (reused across blocks and calls).
#[derive(Default)]
pub struct State {
    /// `[4H]` gate pre-activations, then activations.
    z: Vec<Lane>,
    /// `[H]` hidden state (final state once the block is done).
    pub h: Vec<Lane>,
    /// `[H]` cell state.
    c: Vec<Lane>,
    /// `[H]` the next hidden state (the AVX-512 step writes it beside `h`).
    next: Vec<Lane>,
}

impl State {
    fn reset(&mut self, hidden: usize) {
        self.z.clear();
        self.z.resize(4 * hidden, Lane::default());
        for v in [&mut self.h, &mut self.c, &mut self.next] {
            v.clear();
            v.resize(hidden, Lane::default());
        }
    }
}

/// Both directions' state buffers of a block as the SIMD kernels step them: each step
/// reads `h` and writes the new hidden state into `next`, then [`Buffers::end_step`] swaps
/// the two (and `c` is updated in place).
pub(crate) struct Buffers<'s> {
    pub(crate) z: [&'s mut [Lane]; 2],
    pub(crate) c: [&'s mut [Lane]; 2],
    pub(crate) h: [&'s mut [Lane]; 2],
    pub(crate) next: [&'s mut [Lane]; 2],
    hidden: usize,
}

impl<'s> Buffers<'s> {
    /// Views of `states` (already reset to `hidden`).
    pub(crate) fn new(states: &'s mut [State; 2], hidden: usize) -> Self {
        let [s0, s1] = states;
        let (z0, c0, h0, n0) = (&mut s0.z, &mut s0.c, &mut s0.h, &mut s0.next);
        let (z1, c1, h1, n1) = (&mut s1.z, &mut s1.c, &mut s1.h, &mut s1.next);
        let g4 = 4 * hidden;
        Self {
            z: [&mut z0[..g4], &mut z1[..g4]],
            c: [&mut c0[..hidden], &mut c1[..hidden]],
            h: [&mut h0[..hidden], &mut h1[..hidden]],
            next: [&mut n0[..hidden], &mut n1[..hidden]],
            hidden,
        }
    }

    /// Ends step `s`: the new states become current, and each lane still reading writes
    /// its `h` to its direction's outputs, if any.
    pub(crate) fn end_step(
        &mut self,
        s: usize,
        lens: &[usize; LANES],
        outs: &mut [Option<Outputs<'_>>; 2],
    ) {
        let hd = self.hidden;
        for d in 0..2 {
            std::mem::swap(&mut self.h[d], &mut self.next[d]);
            if let Some(Outputs { out, at }) = outs[d].as_mut() {
                let at = &at[s * LANES..(s + 1) * LANES];
                for l in 0..LANES {
                    if s < lens[l] {
                        let row = &mut out[at[l]..at[l] + hd];
                        for (o, hk) in row.iter_mut().zip(self.h[d].iter()) {
                            *o = hk.0[l];
                        }
                    }
                }
            }
        }
    }

    /// After the last of `steps` steps: the final states into each [`State::h`] (after an
    /// odd number of steps they are in the `next` buffers).
    pub(crate) fn finish(self, steps: usize) {
        if steps % 2 == 1 {
            for d in 0..2 {
                self.next[d].copy_from_slice(self.h[d]);
            }
        }
    }
}

/// Each lane's length as an `i32` (saturated), to compare with the step in vector lanes.
pub(crate) fn lens_i32(lens: &[usize; LANES]) -> [i32; LANES] {
    lens.map(|l| l.min(i32::MAX as usize) as i32)
}

/// Where a block's per-step outputs go (layers below the top): lane `l`'s `h` at step `s`
/// is written to `out[at[s·LANES + l]..][..H]` while `s < lens[l]`.
pub struct Outputs<'a> {
    pub out: &'a mut [f32],
    pub at: &'a [usize],
}

/// One direction of a layer over a block: `w` is PyTorch's `weight_hh` `[4H, H]`; `rows`
/// holds `4H`-float input rows and `offsets[s·LANES + l]` is where lane `l`'s row of step `s`
/// starts (`s < max(lens)`; any valid offset where `s ≥ lens[l]`).
pub struct Direction<'a> {
    pub w: &'a [f32],
    pub rows: &'a [f32],
    pub offsets: &'a [usize],
    pub out: Option<Outputs<'a>>,
}

/// Runs both directions of one layer over a block whose lane `l` has `lens[l]` steps. On
/// return `states[d].h` holds direction `d`'s final hidden state of each lane (zero for a
/// lane of length 0). The AVX-512 kernel where the CPU has it, else the AVX2 one (even
/// hidden sizes), else the portable one.
pub fn run(
    hidden: usize,
    lens: &[usize; LANES],
    dirs: [Direction<'_>; 2],
    states: &mut [State; 2],
) {
    prepare(hidden, lens, &dirs, states);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the feature was just detected; `check` has bounded every row and output.
        return unsafe { avx512::run(hidden, lens, dirs, states) };
    }
    #[cfg(target_arch = "x86_64")]
    if hidden.is_multiple_of(2)
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        // SAFETY: the features were just detected; the hidden size is even; `check` has
        // bounded every row and output.
        return unsafe { avx2::run(hidden, lens, dirs, states) };
    }
    portable(hidden, lens, dirs, states)
}

/// [`run`] with the portable kernel: the loops of [`crate::cell`] across lanes, compiled
/// for AVX2 where the CPU has it; bit for bit the per-sentence result.
pub fn run_portable(
    hidden: usize,
    lens: &[usize; LANES],
    dirs: [Direction<'_>; 2],
    states: &mut [State; 2],
) {
    prepare(hidden, lens, &dirs, states);
    portable(hidden, lens, dirs, states)
}

fn portable(
    hidden: usize,
    lens: &[usize; LANES],
    dirs: [Direction<'_>; 2],
    states: &mut [State; 2],
) {
    for (d, state) in dirs.into_iter().zip(states.iter_mut()) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features were just detected on this CPU.
            unsafe { run_avx2(hidden, lens, d, state) };
            continue;
        }
        specialised(hidden, lens, d, state)
    }
}

/// Checks both directions ([`check`]) and resets the states to `hidden`: what every kernel
/// needs first.
fn prepare(
    hidden: usize,
    lens: &[usize; LANES],
    dirs: &[Direction<'_>; 2],
    states: &mut [State; 2],
) {
    for (d, s) in dirs.iter().zip(states.iter_mut()) {
        check(hidden, lens, d);
        s.reset(hidden);
    }
}

/// Panics unless every row and output the block reads or writes is in bounds (the SIMD
/// kernels read and write through raw pointers).
fn check(hidden: usize, lens: &[usize; LANES], d: &Direction<'_>) {
    let steps = lens.iter().copied().max().unwrap_or(0);
    assert_eq!(d.w.len(), 4 * hidden * hidden, "weight_hh is [4H, H]");
    assert!(
        d.offsets.len() >= steps * LANES,
        "an offset per lane and step"
    );
    let fits = |o: usize, n: usize, len: usize| o.checked_add(n).is_some_and(|e| e <= len);
    assert!(
        d.offsets[..steps * LANES]
            .iter()
            .all(|&o| fits(o, 4 * hidden, d.rows.len())),
        "every row in bounds"
    );
    if let Some(o) = &d.out {
        assert!(
            o.at.len() >= steps * LANES,
            "an output offset per lane and step"
        );
        assert!(
            o.at[..steps * LANES]
                .iter()
                .all(|&a| fits(a, hidden, o.out.len())),
            "every output in bounds"
        );
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(hidden: usize, lens: &[usize; LANES], d: Direction<'_>, state: &mut State) {
    specialised(hidden, lens, d, state)
}

/// A compile-time hidden size for the presets' widths lets the compiler unroll the loops.
#[inline(always)]
fn specialised(hidden: usize, lens: &[usize; LANES], d: Direction<'_>, state: &mut State) {
    match hidden {
        8 => run_impl::<8>(hidden, lens, d, state),
        16 => run_impl::<16>(hidden, lens, d, state),
        64 => run_impl::<64>(hidden, lens, d, state),
        _ => run_impl::<0>(hidden, lens, d, state),
    }
}

#[inline(always)]
fn run_impl<const H: usize>(
    hidden: usize,
    lens: &[usize; LANES],
    dir: Direction<'_>,
    state: &mut State,
) {
    let Direction {
        w,
        rows,
        offsets,
        mut out,
    } = dir;
    let hd = if H > 0 { H } else { hidden };
    let g4 = 4 * hd;
    let steps = lens.iter().copied().max().unwrap_or(0);
    let State { z, h, c, .. } = state;
    let (z, h, c) = (&mut z[..g4], &mut h[..hd], &mut c[..hd]);
    for s in 0..steps {
        let offs = &offsets[s * LANES..(s + 1) * LANES];
        // Gather: lane l's row becomes column l of z.
        for (l, &o) in offs.iter().enumerate() {
            let row = &rows[o..o + g4];
            for (zj, &x) in z.iter_mut().zip(row) {
                zj.0[l] = x;
            }
        }
        // z += W·h, k ascending for each gate unit (the order of cell::forward_seq).
        for (j, zj) in z.iter_mut().enumerate() {
            let wj = &w[j * hd..(j + 1) * hd];
            let mut acc = zj.0;
            for (&wjk, hk) in wj.iter().zip(h.iter()) {
                for l in 0..LANES {
                    acc[l] += wjk * hk.0[l];
                }
            }
            zj.0 = acc;
        }
        let (gi, rest) = z.split_at_mut(hd);
        let (gf, rest) = rest.split_at_mut(hd);
        let (gg, go) = rest.split_at_mut(hd);
        let mut active = [false; LANES];
        for l in 0..LANES {
            active[l] = s < lens[l];
        }
        for k in 0..hd {
            let (mut ck, mut hk) = (c[k].0, h[k].0);
            for l in 0..LANES {
                let i = sigmoid(gi[k].0[l]);
                let f = sigmoid(gf[k].0[l]);
                let g = 2.0 * sigmoid(2.0 * gg[k].0[l]) - 1.0;
                let o = sigmoid(go[k].0[l]);
                let cn = f * ck[l] + i * g;
                let hn = o * tanh(cn);
                // A finished lane keeps its state.
                ck[l] = if active[l] { cn } else { ck[l] };
                hk[l] = if active[l] { hn } else { hk[l] };
            }
            c[k].0 = ck;
            h[k].0 = hk;
        }
        if let Some(Outputs { out, at }) = out.as_mut() {
            let at = &at[s * LANES..(s + 1) * LANES];
            for l in 0..LANES {
                if active[l] {
                    let row = &mut out[at[l]..at[l] + hd];
                    for (o, hk) in row.iter_mut().zip(h.iter()) {
                        *o = hk.0[l];
                    }
                }
            }
        }
    }
}

/// The block step in AVX-512 intrinsics (see [`run`]).
#[cfg(target_arch = "x86_64")]
pub mod avx512;

#[cfg(target_arch = "x86_64")]
pub mod avx2;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::{forward_seq, Recurrent};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A random block: weights of both directions, a table of input rows and each lane's
    /// row ids per position. Lanes past `n` are empty.
    struct Case {
        hidden: usize,
        w: [Vec<f32>; 2],
        table: Vec<f32>,
        ids: Vec<Vec<usize>>,
    }

    fn case(rng: &mut ChaCha8Rng, hidden: usize, n: usize, max_len: usize) -> Case {
        let g4 = 4 * hidden;
        let rows = 11;
        let mut w = || (0..g4 * hidden).map(|_| rng.gen_range(-0.8..0.8)).collect();
        let w = [w(), w()];
        let table = (0..rows * g4).map(|_| rng.gen_range(-3.0..3.0)).collect();
        let mut ids: Vec<Vec<usize>> = (0..n)
            .map(|_| {
                let len = rng.gen_range(0..=max_len);
                (0..len).map(|_| rng.gen_range(0..rows)).collect()
            })
            .collect();
        ids.resize(LANES, Vec::new());
        Case {
            hidden,
            w,
            table,
            ids,
        }
    }

    /// Per direction, each lane alone through `cell::forward_seq`: final h and per-position
    /// outputs.
    type Result = [Vec<(Vec<f32>, Vec<f32>)>; 2];

    fn per_sentence(c: &Case) -> Result {
        let (h, g4) = (c.hidden, 4 * c.hidden);
        [0, 1].map(|d| {
            let rec = Recurrent::new(c.w[d].clone(), h);
            c.ids
                .iter()
                .map(|ids| {
                    let xg: Vec<f32> = ids
                        .iter()
                        .flat_map(|&i| c.table[i * g4..(i + 1) * g4].iter().copied())
                        .collect();
                    let (mut hs, mut cs) = (vec![0.0; h], vec![0.0; h]);
                    let mut out = vec![0.0; ids.len() * h];
                    let reverse = d == 1;
                    forward_seq(
                        &rec,
                        &xg,
                        ids.len(),
                        reverse,
                        &mut hs,
                        &mut cs,
                        Some(&mut out),
                        None,
                    );
                    (hs, out)
                })
                .collect()
        })
    }

    type Kernel = fn(usize, &[usize; LANES], [Direction<'_>; 2], &mut [State; 2]);

    /// The block through `kernel`, both directions at once.
    fn block(c: &Case, kernel: Kernel) -> Result {
        let (h, g4) = (c.hidden, 4 * c.hidden);
        let mut lens = [0; LANES];
        for (l, ids) in c.ids.iter().enumerate() {
            lens[l] = ids.len();
        }
        let steps = lens.iter().copied().max().unwrap();
        let maxl = steps.max(1);
        let (mut offsets, mut at) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
        for d in 0..2 {
            for s in 0..steps {
                for l in 0..LANES {
                    let t = (s < lens[l]).then(|| if d == 1 { lens[l] - 1 - s } else { s });
                    // Finished lanes read row 3 (any row): the state must not move.
                    offsets[d].push(t.map_or(3 * g4, |t| c.ids[l][t] * g4));
                    at[d].push(t.map_or(0, |t| (l * maxl + t) * h));
                }
            }
        }
        let mut out = [
            vec![f32::NAN; LANES * maxl * h],
            vec![f32::NAN; LANES * maxl * h],
        ];
        let mut states = [State::default(), State::default()];
        let [o0, o1] = &mut out;
        let dirs = [(0, o0), (1, o1)].map(|(d, o)| Direction {
            w: &c.w[d],
            rows: &c.table,
            offsets: &offsets[d],
            out: Some(Outputs { out: o, at: &at[d] }),
        });
        kernel(h, &lens, dirs, &mut states);
        [0, 1].map(|d| {
            (0..LANES)
                .map(|l| {
                    let hs = states[d].h.iter().map(|v| v.0[l]).collect();
                    (hs, out[d][l * maxl * h..(l * maxl + lens[l]) * h].to_vec())
                })
                .collect()
        })
    }

    fn max_diff(a: &Result, b: &Result) -> f32 {
        let mut m = 0.0f32;
        for d in 0..2 {
            for ((ha, oa), (hb, ob)) in a[d].iter().zip(&b[d]) {
                assert_eq!(oa.len(), ob.len());
                for (x, y) in ha.iter().zip(hb).chain(oa.iter().zip(ob)) {
                    assert!(x.is_finite(), "a finite state");
                    m = m.max((x - y).abs());
                }
            }
        }
        m
    }

    #[test]
    fn blocks_match_each_sentence_alone_in_both_directions() {
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        // 8, 16, 64: compile-time widths; 1, 3, 5, 12: run-time ones, 4H not a multiple of 16.
        for (hidden, n, max_len) in [
            (8, 16, 30),
            (8, 5, 9),
            (1, 16, 12),
            (3, 9, 20),
            (5, 16, 7),
            (12, 13, 15),
            (16, 16, 10),
            (64, 7, 6),
        ] {
            let c = case(&mut rng, hidden, n, max_len);
            let want = per_sentence(&c);
            let portable = block(&c, run_portable);
            assert_eq!(portable, want, "portable kernel, bit for bit: H {hidden}");
            let fast = block(&c, run);
            let d = max_diff(&fast, &want);
            assert!(d <= 2e-6, "H {hidden}: {d:e}");
            // The AVX2 kernel by name, so that it is tested on AVX-512 machines too.
            #[cfg(target_arch = "x86_64")]
            if hidden % 2 == 0 && has_avx2() {
                let d = max_diff(&block(&c, run_avx2_kernel), &want);
                assert!(d <= 2e-6, "AVX2 kernel, H {hidden}: {d:e}");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn has_avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    /// [`avx2::run`] behind [`run`]'s checks (callers test [`has_avx2`] and an even size).
    #[cfg(target_arch = "x86_64")]
    fn run_avx2_kernel(
        hidden: usize,
        lens: &[usize; LANES],
        dirs: [Direction<'_>; 2],
        states: &mut [State; 2],
    ) {
        prepare(hidden, lens, &dirs, states);
        // SAFETY: the caller detected AVX2 and FMA and passes an even hidden size; every
        // row and output was checked above.
        unsafe { avx2::run(hidden, lens, dirs, states) }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_transpose_moves_every_element() {
        use std::arch::x86_64::*;
        if !has_avx2() {
            return;
        }
        let m: [[f32; 8]; 8] = std::array::from_fn(|i| std::array::from_fn(|j| (i * 8 + j) as f32));
        // SAFETY: AVX2 was detected above.
        unsafe {
            let mut r = m.map(|row| _mm256_loadu_ps(row.as_ptr()));
            distill_ops::math::avx2::transpose8(&mut r);
            for (j, v) in r.iter().enumerate() {
                let mut col = [0.0f32; 8];
                _mm256_storeu_ps(col.as_mut_ptr(), *v);
                for (i, &x) in col.iter().enumerate() {
                    assert_eq!(x, m[i][j], "transpose ({i}, {j})");
                }
            }
        }
    }

    #[test]
    fn an_empty_block_leaves_zero_states() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let c = case(&mut rng, 8, 0, 0);
        for kernel in [run as Kernel, run_portable] {
            let got = block(&c, kernel);
            assert!(got
                .iter()
                .flatten()
                .all(|(h, o)| h.iter().all(|&v| v == 0.0) && o.is_empty()));
        }
    }

    #[test]
    #[should_panic(expected = "every row in bounds")]
    fn a_row_past_the_table_is_refused() {
        let mut lens = [0; LANES];
        lens[0] = 1;
        let offsets = [4; LANES];
        let dir = || Direction {
            w: &[0.0; 4],
            rows: &[0.0; 7],
            offsets: &offsets,
            out: None,
        };
        run(
            1,
            &lens,
            [dir(), dir()],
            &mut [State::default(), State::default()],
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_pieces_match_the_scalar_ones() {
        use std::arch::x86_64::*;
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("no AVX-512 here: the portable kernel is what runs");
            return;
        }
        // SAFETY: AVX-512F was detected above.
        unsafe {
            let mut m = [[0.0f32; 16]; 16];
            for (i, row) in m.iter_mut().enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = (i * 16 + j) as f32;
                }
            }
            let mut r = m.map(|row| _mm512_loadu_ps(row.as_ptr()));
            avx512::transpose(&mut r);
            for (j, v) in r.iter().enumerate() {
                let mut col = [0.0f32; 16];
                _mm512_storeu_ps(col.as_mut_ptr(), *v);
                for (i, &x) in col.iter().enumerate() {
                    assert_eq!(x, m[i][j], "transpose ({i}, {j})");
                }
            }
            let xs: Vec<f32> = (-120 * 64..=100 * 64)
                .map(|i| i as f32 / 64.0)
                .chain([f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30])
                .collect();
            for chunk in xs.chunks(16) {
                let mut x = [0.0f32; 16];
                x[..chunk.len()].copy_from_slice(chunk);
                let v = _mm512_loadu_ps(x.as_ptr());
                let (mut s, mut t) = ([0.0f32; 16], [0.0f32; 16]);
                _mm512_storeu_ps(s.as_mut_ptr(), avx512::sigmoid_n([v])[0]);
                // tanh x = 2σ(2x) − 1, as the kernel computes it.
                let two = _mm512_set1_ps(2.0);
                let st = avx512::sigmoid_n([_mm512_mul_ps(two, v)])[0];
                let tv = _mm512_fmsub_ps(two, st, _mm512_set1_ps(1.0));
                _mm512_storeu_ps(t.as_mut_ptr(), tv);
                for l in 0..chunk.len() {
                    let (ws, wt) = (
                        distill_ops::math::sigmoid(x[l]),
                        distill_ops::math::tanh(x[l]),
                    );
                    assert!((s[l] - ws).abs() <= 2e-7, "σ({}) = {} vs {ws}", x[l], s[l]);
                    assert!(
                        (t[l] - wt).abs() <= 4e-7,
                        "tanh({}) = {} vs {wt}",
                        x[l],
                        t[l]
                    );
                }
            }
            let nan = avx512::sigmoid_n([_mm512_set1_ps(f32::NAN)])[0];
            let mut s = [0.0f32; 16];
            _mm512_storeu_ps(s.as_mut_ptr(), nan);
            assert!(s.iter().all(|v| v.is_nan()), "NaN stays NaN");
        }
    }
}
