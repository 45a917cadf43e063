//! Many sentences at once: [`Predictor::logits_flat`] and [`Predictor::logits_pair_flat`].
//!
//! The sentences are sorted by length (longest first) and cut into blocks of
//! [`LANES`]; each block runs every layer and direction through [`lanes::run`], one
//! sentence per SIMD lane, so a block takes about as many steps as its longest sentence.
//! Blocks are spread over the cores with rayon (each worker keeps its buffers across the
//! blocks it takes), and the sentence vectors go back to input order before the head.
//!
//! A multi-layer model keeps each layer's outputs for the next, `[LANES, len, 2H]` per
//! block; sentences longer than [`LONG`] tokens are read one at a time instead
//! ([`crate::single`]), so a block's buffers stay bounded whatever the texts.

// Lane loops index several arrays in step; an index reads plainer than zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::cmp::Reverse;

use rayon::prelude::*;

use crate::lanes::{self, Outputs, LANES};
use crate::predictor::{check_pairs, project, Predictor};
use crate::single;
use crate::Result;

/// Longest sentence a multi-layer block takes (tokens); longer ones are read alone.
pub const LONG: usize = 1024;

/// A worker's buffers for blocks (kept across the blocks it takes).
#[derive(Default)]
struct Scratch {
    state: lanes::State,
    offsets: Vec<usize>,
    out_at: Vec<usize>,
    /// `[LANES, steps, 4H]` projections of a layer above the first.
    xg: Vec<f32>,
    /// `[LANES, steps, 2H]` outputs of the layer below, and of this one.
    input: Vec<f32>,
    output: Vec<f32>,
    single: single::Scratch,
    seq: [Vec<f32>; 2],
    xg1: [Vec<f32>; 2],
}

impl Predictor {
    /// Logits of many sequences `[N, C]` (row `i` for `seqs[i]`, `C` =
    /// [`Predictor::num_outputs`]), batched over all cores. A pair model reads each
    /// sequence as a pair whose second text is empty, as [`Predictor::logits`] does.
    pub fn logits_flat<S: AsRef<[u32]> + Sync>(&self, seqs: &[S]) -> Vec<f32> {
        let f = 2 * self.hidden;
        let vectors = self.vectors(seqs);
        let zeros = vec![0.0; f];
        self.heads(seqs.len(), |i| (&vectors[i * f..(i + 1) * f], &zeros[..]))
    }

    /// Logits of many pairs `[N, C]` (row `i` for `a[i]` with `b[i]`), batched; a pair model
    /// only.
    pub fn logits_pair_flat<S: AsRef<[u32]> + Sync>(&self, a: &[S], b: &[S]) -> Result<Vec<f32>> {
        check_pairs(self, a.len(), b.len())?;
        let n = a.len();
        let f = 2 * self.hidden;
        let both: Vec<&[u32]> = a.iter().chain(b).map(AsRef::as_ref).collect();
        let vectors = self.vectors(&both);
        Ok(self.heads(n, |i| {
            (
                &vectors[i * f..(i + 1) * f],
                &vectors[(n + i) * f..(n + i + 1) * f],
            )
        }))
    }

    /// The head over `n` rows of sentence vectors (`pair(i)` gives row `i`'s), in parallel.
    fn heads<'v>(
        &self,
        n: usize,
        pair: impl Fn(usize) -> (&'v [f32], &'v [f32]) + Sync,
    ) -> Vec<f32> {
        let c = self.num_outputs();
        let mut logits = vec![0.0; n * c];
        const ROWS: usize = 256;
        logits.par_chunks_mut(ROWS * c).enumerate().for_each_init(
            Vec::new,
            |scratch, (chunk, out)| {
                for (r, row) in out.chunks_mut(c).enumerate() {
                    let (a, b) = pair(chunk * ROWS + r);
                    self.head_into(a, b, scratch, row);
                }
            },
        );
        logits
    }

    /// Sentence vectors `[N, 2H]` of `seqs` in input order.
    fn vectors<S: AsRef<[u32]> + Sync>(&self, seqs: &[S]) -> Vec<f32> {
        let f = 2 * self.hidden;
        let n = seqs.len();
        let seqs: Vec<&[u32]> = seqs
            .iter()
            .map(|s| {
                let s = s.as_ref();
                &s[..s.len().min(self.max_len)]
            })
            .collect();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| Reverse(seqs[i].len()));
        let mut sorted = vec![0.0f32; n * f];
        sorted
            .par_chunks_mut(LANES * f)
            .zip(order.par_chunks(LANES))
            .for_each_init(Scratch::default, |ws, (out, idx)| {
                let block: Vec<&[u32]> = idx.iter().map(|&i| seqs[i]).collect();
                if self.layers.len() > 1 && block[0].len() > LONG {
                    for (ids, v) in block.iter().zip(out.chunks_mut(f)) {
                        self.sentence_vector_one(ids, ws, v);
                    }
                } else {
                    self.block(ws, &block, out);
                }
            });
        let mut vectors = vec![0.0f32; n * f];
        for (r, &i) in order.iter().enumerate() {
            vectors[i * f..(i + 1) * f].copy_from_slice(&sorted[r * f..(r + 1) * f]);
        }
        vectors
    }

    fn sentence_vector_one(&self, ids: &[u32], ws: &mut Scratch, out: &mut [f32]) {
        self.sentence_vector_with(ids, &mut ws.single, &mut ws.seq, &mut ws.xg1, out);
    }

    /// Sentence vectors `[n, 2H]` of a block of at most [`LANES`] sequences (truncated,
    /// longest first) into `out`.
    fn block(&self, ws: &mut Scratch, seqs: &[&[u32]], out: &mut [f32]) {
        let h = self.hidden;
        let (f, g4) = (2 * h, 4 * h);
        let mut lens = [0usize; LANES];
        for (l, s) in seqs.iter().enumerate() {
            lens[l] = s.len();
        }
        let steps = lens[0];
        // Lane l's position at step s in direction d (0 for a finished lane: any valid row).
        let position = |d: usize, s: usize, l: usize| -> Option<usize> {
            (s < lens[l]).then(|| if d == 1 { lens[l] - 1 - s } else { s })
        };
        let layers = self.layers.len();
        for (li, layer) in self.layers.iter().enumerate() {
            let top = li + 1 == layers;
            if !top {
                ws.output.clear();
                ws.output.resize(LANES * steps * f, 0.0);
            }
            for (d, dir) in layer.iter().enumerate() {
                ws.offsets.clear();
                let rows: &[f32] = if li == 0 {
                    let vocab = dir.table.len() / g4;
                    for s in 0..steps {
                        for l in 0..LANES {
                            let id = position(d, s, l).map_or(0, |t| seqs[l][t] as usize);
                            ws.offsets.push(id.min(vocab - 1) * g4);
                        }
                    }
                    &dir.table
                } else {
                    ws.xg.clear();
                    ws.xg.resize(LANES * steps * g4, 0.0);
                    for l in 0..LANES {
                        for t in 0..lens[l] {
                            let at = l * steps + t;
                            project(
                                &dir.weight_ih,
                                &dir.bias,
                                &ws.input[at * f..(at + 1) * f],
                                &mut ws.xg[at * g4..(at + 1) * g4],
                            );
                        }
                    }
                    for s in 0..steps {
                        for l in 0..LANES {
                            let at = position(d, s, l).map_or(0, |t| l * steps + t);
                            ws.offsets.push(at * g4);
                        }
                    }
                    &ws.xg
                };
                let outputs = if top {
                    None
                } else {
                    ws.out_at.clear();
                    for s in 0..steps {
                        for l in 0..LANES {
                            let at = position(d, s, l).map_or(0, |t| l * steps + t);
                            ws.out_at.push(at * f + d * h);
                        }
                    }
                    Some(Outputs {
                        out: &mut ws.output,
                        at: &ws.out_at,
                    })
                };
                lanes::run(
                    &dir.rec.w,
                    h,
                    rows,
                    &ws.offsets,
                    &lens,
                    &mut ws.state,
                    outputs,
                );
                if top {
                    for (l, v) in out.chunks_mut(f).enumerate().take(seqs.len()) {
                        for k in 0..h {
                            v[d * h + k] = ws.state.h[k].0[l];
                        }
                    }
                }
            }
            if !top {
                std::mem::swap(&mut ws.input, &mut ws.output);
            }
        }
    }
}
