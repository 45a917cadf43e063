//! Many sentences at once: [`Predictor::logits_flat`], [`Predictor::logits_pair_flat`] and
//! [`Predictor::predict_batch`].
//!
//! The sentences are sorted by length (longest first) and cut into blocks of
//! [`LANES`]; each block runs every layer and direction through [`lanes::run`], one
//! sentence per SIMD lane, so a block takes about as many steps as its longest sentence.
//! Blocks are spread over the cores with rayon (each worker keeps its buffers across the
//! blocks it takes) in one parallel pass: a single-text model applies its head inside each
//! block's task and only the logits go back to input order; a pair model's vectors go back
//! first, since its head reads two. Raw text is read in chunks of [`TEXT_CHUNK`], each
//! encoded, sorted and read on one thread.
//!
//! A multi-layer model keeps each layer's outputs for the next, `[LANES, len, H]` per block
//! and direction; sentences longer than [`LONG`] tokens are read one at a time instead
//! ([`crate::single`]), so a block's buffers stay bounded whatever the texts.

// Lane loops index several arrays in step; an index reads plainer than zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::cmp::Reverse;

use rayon::prelude::*;

use crate::lanes::{self, LANES};
use crate::predictor::{check_pairs, Prediction, Predictor};
use crate::single;
use crate::Result;

/// Longest sentence a multi-layer block takes (tokens); longer ones are read alone.
pub const LONG: usize = 1024;

/// Texts [`Predictor::predict_batch`] reads per task (eight blocks).
pub const TEXT_CHUNK: usize = 128;

/// A worker's buffers for blocks (kept across the blocks it takes).
#[derive(Default)]
struct Scratch {
    states: [lanes::State; 2],
    offsets: [Vec<usize>; 2],
    out_at: [Vec<usize>; 2],
    /// `[LANES, steps, 4H]` projections of a layer above the first, per direction.
    xg: [Vec<f32>; 2],
    /// `[LANES, steps, H]` outputs of the layer below, per direction.
    below: [Vec<f32>; 2],
    /// `[LANES, steps, H]` outputs of this layer, per direction.
    above: [Vec<f32>; 2],
    single: single::Scratch,
    seq: [Vec<f32>; 2],
    xg1: [Vec<f32>; 2],
    /// `[LANES·steps, 2H]` the layer below's outputs, both directions side by side.
    x: Vec<f32>,
    vectors: Vec<f32>,
    head: Vec<f32>,
    /// A text chunk's ids back to back, and where each text ends.
    text_ids: Vec<u32>,
    text_ends: Vec<usize>,
}

/// The sequences `idx` (at most [`LANES`]) picks, on the stack, and how many.
fn gather_block<'s>(seqs: &[&'s [u32]], idx: &[usize]) -> ([&'s [u32]; LANES], usize) {
    let mut block: [&[u32]; LANES] = [&[]; LANES];
    for (b, &i) in block.iter_mut().zip(idx) {
        *b = seqs[i];
    }
    (block, idx.len().min(LANES))
}

/// Rows of `width` floats from sorted order (`sorted[r]` belongs to `order[r]`) back to
/// input order.
fn unpermute(sorted: &[f32], order: &[usize], width: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; sorted.len()];
    for (r, &i) in order.iter().enumerate() {
        out[i * width..(i + 1) * width].copy_from_slice(&sorted[r * width..(r + 1) * width]);
    }
    out
}

impl Predictor {
    /// Logits of many sequences `[N, C]` (row `i` for `seqs[i]`, `C` =
    /// [`Predictor::num_outputs`]), batched over all cores. A pair model reads each
    /// sequence as a pair whose second text is empty, as [`Predictor::logits`] does.
    pub fn logits_flat<S: AsRef<[u32]> + Sync>(&self, seqs: &[S]) -> Vec<f32> {
        let f = 2 * self.hidden;
        if self.is_pair() {
            let vectors = self.vectors(seqs);
            let zeros = vec![0.0; f];
            return self.heads(seqs.len(), |i| (&vectors[i * f..(i + 1) * f], &zeros[..]));
        }
        // A single-text model takes its head inside each block's task: one parallel pass,
        // so a thread that loses the CPU holds up one pass, not three.
        let c = self.num_outputs();
        let (seqs, order) = self.sorted(seqs);
        let mut sorted = vec![0.0f32; seqs.len() * c];
        sorted
            .par_chunks_mut(LANES * c)
            .zip(order.par_chunks(LANES))
            .for_each_init(Scratch::default, |ws, (out, idx)| {
                let (block, n) = gather_block(&seqs, idx);
                self.block_logits(ws, &block[..n], out);
            });
        unpermute(&sorted, &order, c)
    }

    /// Label and probabilities of many sentences, batched (see [`crate::Predictor`]'s
    /// docs): chunks of 128 texts, each encoded through its thread's word cache,
    /// sorted by length and read in blocks on that thread, the chunks spread over the cores.
    pub fn predict_batch<T: AsRef<str> + Sync>(&self, texts: &[T]) -> Vec<Prediction> {
        if self.is_pair() {
            let ids = self.encode_batch(texts);
            return self.predictions(&self.logits_flat(&ids));
        }
        let c = self.num_outputs();
        let chunks: Vec<Vec<Prediction>> = texts
            .par_chunks(TEXT_CHUNK)
            .map_init(Scratch::default, |ws, chunk| {
                ws.text_ids.clear();
                ws.text_ends.clear();
                {
                    let mut local = self.local_words();
                    for t in chunk {
                        self.encoder.encode_into(
                            t.as_ref(),
                            &mut local,
                            self.max_len,
                            &mut ws.text_ids,
                        );
                        ws.text_ends.push(ws.text_ids.len());
                    }
                }
                let ids = std::mem::take(&mut ws.text_ids);
                let mut seqs: Vec<&[u32]> = Vec::with_capacity(chunk.len());
                let mut start = 0;
                for &end in &ws.text_ends {
                    seqs.push(&ids[start..end]);
                    start = end;
                }
                let mut order: Vec<usize> = (0..seqs.len()).collect();
                order.sort_by_key(|&i| Reverse(seqs[i].len()));
                let mut sorted = vec![0.0f32; seqs.len() * c];
                for (out, idx) in sorted.chunks_mut(LANES * c).zip(order.chunks(LANES)) {
                    let (block, n) = gather_block(&seqs, idx);
                    self.block_logits(ws, &block[..n], out);
                }
                let logits = unpermute(&sorted, &order, c);
                drop(seqs);
                ws.text_ids = ids;
                logits
                    .chunks(c)
                    .map(|l| self.prediction(l.to_vec()))
                    .collect()
            })
            .collect();
        chunks.into_iter().flatten().collect()
    }

    /// Logits `[n, C]` of a block (at most [`LANES`] sequences, truncated, longest first)
    /// into `out`: a single-text model's head on each vector.
    fn block_logits(&self, ws: &mut Scratch, block: &[&[u32]], out: &mut [f32]) {
        let f = 2 * self.hidden;
        let c = self.num_outputs();
        let mut vectors = std::mem::take(&mut ws.vectors);
        vectors.clear();
        vectors.resize(block.len() * f, 0.0);
        self.block_vectors(ws, block, &mut vectors);
        for (v, row) in vectors.chunks(f).zip(out.chunks_mut(c)) {
            self.head_into(v, &[], &mut ws.head, row);
        }
        ws.vectors = vectors;
    }

    /// Sentence vectors `[n, 2H]` of a block (longest first) into `out`: lanes, or one at a
    /// time for a multi-layer model's texts past [`LONG`].
    fn block_vectors(&self, ws: &mut Scratch, block: &[&[u32]], out: &mut [f32]) {
        let f = 2 * self.hidden;
        if self.layers.len() > 1 && block[0].len() > LONG {
            for (ids, v) in block.iter().zip(out.chunks_mut(f)) {
                self.sentence_vector_one(ids, ws, v);
            }
        } else {
            self.block(ws, block, out);
        }
    }

    /// `seqs` truncated to `max_len`, and their indices longest first.
    fn sorted<'s, S: AsRef<[u32]>>(&self, seqs: &'s [S]) -> (Vec<&'s [u32]>, Vec<usize>) {
        let seqs: Vec<&[u32]> = seqs
            .iter()
            .map(|s| {
                let s = s.as_ref();
                &s[..s.len().min(self.max_len)]
            })
            .collect();
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&i| Reverse(seqs[i].len()));
        (seqs, order)
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
        let (seqs, order) = self.sorted(seqs);
        let mut sorted = vec![0.0f32; seqs.len() * f];
        sorted
            .par_chunks_mut(LANES * f)
            .zip(order.par_chunks(LANES))
            .for_each_init(Scratch::default, |ws, (out, idx)| {
                let (block, n) = gather_block(&seqs, idx);
                self.block_vectors(ws, &block[..n], out);
            });
        unpermute(&sorted, &order, f)
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
        // Lane l's position at step s in direction d (None once the lane is done).
        let position = |d: usize, s: usize, l: usize| -> Option<usize> {
            (s < lens[l]).then(|| if d == 1 { lens[l] - 1 - s } else { s })
        };
        let layers = self.layers.len();
        for (li, layer) in self.layers.iter().enumerate() {
            let top = li + 1 == layers;
            if li > 0 {
                // `[h_fwd; h_bwd]` of every lane and position below: both directions' input.
                ws.x.clear();
                for at in 0..LANES * steps {
                    for below in &ws.below {
                        ws.x.extend_from_slice(&below[at * h..(at + 1) * h]);
                    }
                }
            }
            for (d, dir) in layer.iter().enumerate() {
                let offsets = &mut ws.offsets[d];
                offsets.clear();
                if li == 0 {
                    // Layer 0 reads table rows by token id (a finished lane: row 0).
                    let vocab = dir.table.len() / g4;
                    for s in 0..steps {
                        for l in 0..LANES {
                            let id = position(d, s, l).map_or(0, |t| seqs[l][t] as usize);
                            offsets.push(id.min(vocab - 1) * g4);
                        }
                    }
                } else {
                    // Deeper layers read W_ih·[h_fwd; h_bwd] + b of the layer below, every
                    // lane and position in one product (positions past a lane's length read
                    // zeros and are never used).
                    let xg = &mut ws.xg[d];
                    xg.clear();
                    xg.resize(LANES * steps * g4, 0.0);
                    dir.project_rows(&ws.x, xg);
                    for s in 0..steps {
                        for l in 0..LANES {
                            let at = position(d, s, l).map_or(0, |t| l * steps + t);
                            offsets.push(at * g4);
                        }
                    }
                }
                if !top {
                    let at = &mut ws.out_at[d];
                    at.clear();
                    for s in 0..steps {
                        for l in 0..LANES {
                            at.push(position(d, s, l).map_or(0, |t| (l * steps + t) * h));
                        }
                    }
                }
            }
            // This layer's outputs replace the layer below's once both are read.
            let mut above = std::mem::take(&mut ws.above);
            let [a0, a1] = &mut above;
            if !top {
                for a in [&mut *a0, &mut *a1] {
                    a.clear();
                    a.resize(LANES * steps * h, 0.0);
                }
            }
            let [x0, x1] = &ws.xg;
            let [o0, o1] = &ws.offsets;
            let [t0, t1] = &ws.out_at;
            let dirs =
                [(0, x0, o0, t0, a0), (1, x1, o1, t1, a1)].map(|(d, xg, offsets, at, above)| {
                    lanes::Direction {
                        w: &layer[d].rec.w,
                        rows: if li == 0 { &layer[d].table } else { xg },
                        offsets,
                        out: (!top).then(|| lanes::Outputs { out: above, at }),
                    }
                });
            lanes::run(h, &lens, dirs, &mut ws.states);
            if top {
                for (l, v) in out.chunks_mut(f).enumerate().take(seqs.len()) {
                    for d in 0..2 {
                        for k in 0..h {
                            v[d * h + k] = ws.states[d].h[k].0[l];
                        }
                    }
                }
                ws.above = above;
            } else {
                ws.above = std::mem::replace(&mut ws.below, above);
            }
        }
    }
}
