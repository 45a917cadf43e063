//! Serving without candle: a student as lookup tables and a fused recurrence on slices.
//!
//! The first layer's input projection `W_ih·e_w + b` depends only on the word, so it is
//! precomputed for every vocabulary entry (`[V, 4H]` per direction): reading a sentence is a
//! table lookup per token plus the `W_hh·h` recurrence. No tensors and, once a thread has
//! served its first sentence, no allocation inside the model.
//!
//! Three ways through the recurrence, with the same equations and results within float
//! rounding of each other (1e-6 relative on the logits, tested):
//! - one sentence ([`Predictor::logits`], [`Predictor::predict`]): both directions stepped
//!   together ([`crate::single`]), for latency;
//! - many sentences ([`Predictor::logits_batch`], [`Predictor::predict_batch`]): sorted by
//!   length and run sixteen to a block, one per SIMD lane ([`crate::lanes`]), blocks spread
//!   over the cores, for throughput;
//! - the per-sentence path ([`Predictor::logits_batch_per_sentence`]): each sentence alone
//!   through [`crate::cell::forward_seq`], one direction after the other — the original
//!   serving path, kept as the reference the other two are tested against and as the
//!   benchmark's baseline.
//!
//! The batched path runs hand-written AVX-512 or AVX2 kernels where the CPU has them, and
//! the single-sentence path an AVX-512 one for hidden size 8; elsewhere their portable loops
//! do the per-sentence arithmetic bit for bit. Layers above the first project their input
//! with one matrix product per block or sentence ([`Direction::project_rows`]), the same
//! numbers in every path.
//!
//! Text is read through a per-thread [`WordCache`], so each distinct raw word is normalised
//! and stemmed once per thread (bounded; see its docs). A pair model reads each text of a
//! pair the same way and applies its head to both sentence vectors.

use std::cell::{RefCell, RefMut};

use candle_core::Tensor;
use distill_data::{Dataset, LabelSet, Metrics, TextEncoder, WordCache};
use rayon::prelude::*;
use serde::Serialize;
use thread_local::ThreadLocal;

use distill_ops::gemm::{gemm_panels, transpose, Panels};

use crate::cell::{forward_seq, Recurrent};
use crate::single::{self, Rows};
use crate::{Error, Result, StudentModel};

/// One direction of one layer, as plain vectors.
pub(crate) struct Direction {
    /// `W_ihᵀ` `[in, 4H]` packed for [`Direction::project_rows`]; empty for layer 0 (its
    /// projections are tabulated).
    weight_ih_t: Panels,
    pub(crate) bias: Vec<f32>,
    pub(crate) rec: Recurrent,
    /// Layer 0 only: `[V, 4H]` projections of every word.
    pub(crate) table: Vec<f32>,
}

impl Direction {
    /// `out[t] = W_ih·x[t] + b` for every row `t` of `x` (`[T, in]` → `[T, 4H]`), a layer
    /// above the first: one matrix product over the rows, so `W_ih` is read once per block
    /// of rows rather than once per token (per token it was most of a two-layer student's
    /// serving time). A row's result depends on nothing but the row, so every path gets
    /// the same numbers.
    pub(crate) fn project_rows(&self, x: &[f32], out: &mut [f32]) {
        let (input, g4) = (self.weight_ih_t.rows(), self.bias.len());
        let rows = out.len() / g4;
        debug_assert_eq!(x.len(), rows * input, "one input row per output row");
        for row in out.chunks_exact_mut(g4) {
            row.copy_from_slice(&self.bias);
        }
        gemm_panels(rows, x, input, &self.weight_ih_t, out, g4, true);
    }
}

/// A prediction for one sentence or pair.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Prediction {
    /// Id of the most probable label (the lowest id on a tie).
    pub label: u32,
    /// Name of `label`.
    pub label_name: String,
    /// Probability of `label`.
    pub probability: f32,
    /// Probability of every label, in id order ([`probabilities`]).
    pub probabilities: Vec<f32>,
    pub logits: Vec<f32>,
}

/// A linear layer as plain vectors: `weight` `[out, in]`, `bias` `[out]`.
pub(crate) struct Dense {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Dense {
    fn new(tensors: &std::collections::HashMap<String, Tensor>, prefix: &str) -> Result<Self> {
        Ok(Self {
            weight: vec_of(&tensors[&format!("{prefix}weight")])?,
            bias: vec_of(&tensors[&format!("{prefix}bias")])?,
        })
    }

    fn forward_into(&self, x: &[f32], out: &mut [f32]) {
        project(&self.weight, &self.bias, x, out);
    }
}

/// The classifier on the sentence vectors (see [`crate::BiLstmClassifier`]).
pub(crate) enum Head {
    Single(Dense),
    Pair(Dense, Dense),
}

/// What a thread keeps between calls: its word cache and buffers.
#[derive(Default)]
struct Local {
    words: WordCache,
    ids: [Vec<u32>; 2],
    single: single::Scratch,
    /// Sentence vectors `[2H]` of the texts being read (two for a pair).
    vectors: [Vec<f32>; 2],
    /// Layer outputs and projections of a multi-layer model.
    seq: [Vec<f32>; 2],
    xg: [Vec<f32>; 2],
    head: Vec<f32>,
}

/// A student ready to serve: text (or a pair of texts) in, label and probabilities out.
pub struct Predictor {
    pub(crate) encoder: TextEncoder,
    pub(crate) max_len: usize,
    pub(crate) hidden: usize,
    pub(crate) layers: Vec<[Direction; 2]>,
    pub(crate) head: Head,
    labels: LabelSet,
    local: ThreadLocal<RefCell<Local>>,
}

fn vec_of(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

impl Predictor {
    /// Copies the model's weights out of candle and tabulates the first layer.
    pub fn new(model: &StudentModel) -> Result<Self> {
        let cfg = &model.config;
        let (h, e) = (cfg.hidden_size, cfg.embedding_dim);
        let tensors = model.classifier.tensors();
        let embedding = vec_of(&tensors["embedding.weight"])?;
        let mut layers = Vec::new();
        for (l, layer) in model.classifier.rnn().layers().iter().enumerate() {
            let mk = |d: &crate::bilstm::LstmDirection| -> Result<Direction> {
                let weight_ih = vec_of(&d.weight_ih)?;
                let bias: Vec<f32> = vec_of(&d.bias_ih)?
                    .iter()
                    .zip(vec_of(&d.bias_hh)?)
                    .map(|(a, b)| a + b)
                    .collect();
                let mut weight_ih_t = Panels::default();
                let table = if l == 0 {
                    let mut table = vec![0.0; cfg.vocab_size * 4 * h];
                    for (w, row) in table.chunks_mut(4 * h).enumerate() {
                        project(&weight_ih, &bias, &embedding[w * e..(w + 1) * e], row);
                    }
                    table
                } else {
                    let input = 2 * h;
                    let mut t = vec![0.0; input * 4 * h];
                    transpose(4 * h, input, &weight_ih, input, &mut t);
                    weight_ih_t.pack(input, 4 * h, &t, 4 * h);
                    Vec::new()
                };
                Ok(Direction {
                    weight_ih_t,
                    bias,
                    rec: Recurrent::new(vec_of(&d.weight_hh)?, h),
                    table,
                })
            };
            layers.push([mk(&layer[0])?, mk(&layer[1])?]);
        }
        let head = if cfg.pair {
            Head::Pair(
                Dense::new(&tensors, "fc.0.")?,
                Dense::new(&tensors, "fc.2.")?,
            )
        } else {
            Head::Single(Dense::new(&tensors, "fc.")?)
        };
        Ok(Self {
            encoder: model.encoder.clone(),
            max_len: cfg.max_len,
            hidden: h,
            layers,
            head,
            labels: cfg.label_set(),
            local: ThreadLocal::new(),
        })
    }

    /// The label names, ids in order.
    pub fn labels(&self) -> &LabelSet {
        &self.labels
    }

    /// Whether this is a pair model ([`Self::predict_pair`]).
    pub fn is_pair(&self) -> bool {
        matches!(self.head, Head::Pair(..))
    }

    /// Logits per text: the number of labels, or 1 for a BCE model.
    pub fn num_outputs(&self) -> usize {
        match &self.head {
            Head::Single(fc) | Head::Pair(_, fc) => fc.bias.len(),
        }
    }

    /// This thread's cache and buffers.
    fn local(&self) -> RefMut<'_, Local> {
        self.local.get_or(Default::default).borrow_mut()
    }

    /// This thread's word cache.
    pub(crate) fn local_words(&self) -> RefMut<'_, WordCache> {
        RefMut::map(self.local(), |l| &mut l.words)
    }

    /// Token ids of `text` (tokenised as in training, truncated to `max_len`), through this
    /// thread's [`WordCache`]: the same ids as the model's [`TextEncoder::encode`].
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        self.encode_into(text, &mut self.local().words, &mut ids);
        ids
    }

    fn encode_into(&self, text: &str, words: &mut WordCache, out: &mut Vec<u32>) {
        self.encoder.encode_into(text, words, self.max_len, out);
    }

    /// Raw logits for token ids. An empty sequence reads as the initial (zero) states. A pair
    /// model reads `ids` as a pair whose second text is empty.
    pub fn logits(&self, ids: &[u32]) -> Vec<f32> {
        let mut out = vec![0.0; self.num_outputs()];
        self.logits_into(ids, &mut out);
        out
    }

    /// [`Self::logits`] into `out` (`num_outputs()` floats), without allocating.
    pub fn logits_into(&self, ids: &[u32], out: &mut [f32]) {
        let mut local = self.local();
        self.read_local(&mut local, [ids, &[]]);
        self.head_local(&mut local, out);
    }

    /// Raw logits of a pair model for the token ids of its two texts.
    pub fn logits_pair(&self, a: &[u32], b: &[u32]) -> Result<Vec<f32>> {
        if !self.is_pair() {
            return Err(not_pair());
        }
        let mut out = vec![0.0; self.num_outputs()];
        let mut local = self.local();
        self.read_local(&mut local, [a, b]);
        self.head_local(&mut local, &mut out);
        Ok(out)
    }

    /// Label and probabilities of one sentence.
    pub fn predict(&self, text: &str) -> Prediction {
        let mut out = vec![0.0; self.num_outputs()];
        let mut local = self.local();
        let l = &mut *local;
        let mut ids = std::mem::take(&mut l.ids[0]);
        ids.clear();
        self.encode_into(text, &mut l.words, &mut ids);
        self.read_local(l, [&ids, &[]]);
        l.ids[0] = ids;
        self.head_local(l, &mut out);
        self.prediction(out)
    }

    /// Label and probabilities of a pair of texts (a pair model only).
    pub fn predict_pair(&self, a: &str, b: &str) -> Result<Prediction> {
        if !self.is_pair() {
            return Err(not_pair());
        }
        let mut out = vec![0.0; self.num_outputs()];
        let mut local = self.local();
        let l = &mut *local;
        let [mut ia, mut ib] = std::mem::take(&mut l.ids);
        ia.clear();
        ib.clear();
        self.encode_into(a, &mut l.words, &mut ia);
        self.encode_into(b, &mut l.words, &mut ib);
        self.read_local(l, [&ia, &ib]);
        l.ids = [ia, ib];
        self.head_local(l, &mut out);
        Ok(self.prediction(out))
    }

    /// Sentence vectors of `texts[0]` (and, for a pair model, `texts[1]`) into
    /// `local.vectors`.
    fn read_local(&self, local: &mut Local, texts: [&[u32]; 2]) {
        let Local {
            single,
            vectors,
            seq,
            xg,
            ..
        } = local;
        let n = if self.is_pair() { 2 } else { 1 };
        for (ids, v) in texts.iter().zip(vectors.iter_mut()).take(n) {
            v.resize(2 * self.hidden, 0.0);
            self.sentence_vector_with(ids, single, seq, xg, v);
        }
    }

    /// Logits from `local.vectors` into `out`.
    fn head_local(&self, local: &mut Local, out: &mut [f32]) {
        let Local { vectors, head, .. } = local;
        let [a, b] = vectors;
        self.head_into(a, b, head, out);
    }

    /// The classifier on sentence vectors `a` (and `b`, a pair model's second text; ignored
    /// otherwise): `fc(a)`, or `fc.2(ReLU(fc.0([a; b; a⊙b; |a−b|])))`. `scratch` is reused.
    pub(crate) fn head_into(&self, a: &[f32], b: &[f32], scratch: &mut Vec<f32>, out: &mut [f32]) {
        match &self.head {
            Head::Single(fc) => fc.forward_into(a, out),
            Head::Pair(fc0, fc2) => {
                let f = a.len();
                scratch.clear();
                scratch.extend_from_slice(a);
                scratch.extend_from_slice(b);
                scratch.extend(a.iter().zip(b).map(|(x, y)| x * y));
                scratch.extend(a.iter().zip(b).map(|(x, y)| (x - y).abs()));
                scratch.resize(5 * f, 0.0);
                let (features, hidden) = scratch.split_at_mut(4 * f);
                fc0.forward_into(features, hidden);
                hidden.iter_mut().for_each(|v| *v = v.max(0.0));
                fc2.forward_into(hidden, out);
            }
        }
    }

    /// The top layer's final forward ‖ backward states `[2H]` of one sentence into `out`,
    /// both directions stepped together ([`single::both`]). `seq` and `xg` hold a
    /// multi-layer model's intermediate sequences.
    pub(crate) fn sentence_vector_with(
        &self,
        ids: &[u32],
        s: &mut single::Scratch,
        seq: &mut [Vec<f32>; 2],
        xg: &mut [Vec<f32>; 2],
        out: &mut [f32],
    ) {
        let h = self.hidden;
        let len = ids.len().min(self.max_len);
        let ids = &ids[..len];
        for (l, [fwd, bwd]) in self.layers.iter().enumerate() {
            let top = l + 1 == self.layers.len();
            let [input, output] = seq;
            if l > 0 {
                for (d, dir) in [fwd, bwd].into_iter().enumerate() {
                    xg[d].resize(len * 4 * h, 0.0);
                    dir.project_rows(&input[..len * 2 * h], &mut xg[d]);
                }
            }
            let rows = if l == 0 {
                [fwd, bwd].map(|d| Rows::Table {
                    table: &d.table,
                    ids,
                })
            } else {
                [Rows::Dense(&xg[0]), Rows::Dense(&xg[1])]
            };
            let out_seq = if top {
                None
            } else {
                output.resize(len * 2 * h, 0.0);
                Some(&mut output[..])
            };
            single::both([&fwd.rec, &bwd.rec], rows, len, s, out_seq);
            std::mem::swap(input, output);
        }
        out[..h].copy_from_slice(&s.h[0]);
        out[h..2 * h].copy_from_slice(&s.h[1]);
    }

    /// Logits for many sequences, in input order: batched, over all cores (see the module
    /// docs). The same logits as [`Self::logits`] of each.
    pub fn logits_batch<S: AsRef<[u32]> + Sync>(&self, seqs: &[S]) -> Vec<Vec<f32>> {
        let c = self.num_outputs();
        self.logits_flat(seqs)
            .chunks(c)
            .map(<[f32]>::to_vec)
            .collect()
    }

    /// Logits for many pairs (`a[i]` with `b[i]`), batched, in input order.
    pub fn logits_pair_batch<S: AsRef<[u32]> + Sync>(
        &self,
        a: &[S],
        b: &[S],
    ) -> Result<Vec<Vec<f32>>> {
        let c = self.num_outputs();
        Ok(self
            .logits_pair_flat(a, b)?
            .chunks(c)
            .map(<[f32]>::to_vec)
            .collect())
    }

    /// Logits for many sequences one by one (each alone through [`forward_seq`], in
    /// parallel over sequences): the original serving path, the reference for the others.
    pub fn logits_batch_per_sentence(&self, seqs: &[Vec<u32>]) -> Vec<Vec<f32>> {
        seqs.par_iter()
            .with_min_len(64)
            .map(|s| self.logits_per_sentence(s, &[]))
            .collect()
    }

    /// Pairs one by one (see [`Self::logits_batch_per_sentence`]).
    pub fn logits_pair_batch_per_sentence(
        &self,
        a: &[Vec<u32>],
        b: &[Vec<u32>],
    ) -> Result<Vec<Vec<f32>>> {
        check_pairs(self, a.len(), b.len())?;
        Ok(a.par_iter()
            .zip(b)
            .with_min_len(64)
            .map(|(a, b)| self.logits_per_sentence(a, b))
            .collect())
    }

    /// Logits of one sequence by the per-sentence path (see
    /// [`Self::logits_batch_per_sentence`]); the same as [`Self::logits`], slower.
    pub fn logits_one_per_sentence(&self, ids: &[u32]) -> Vec<f32> {
        self.logits_per_sentence(ids, &[])
    }

    /// Logits of one pair by the per-sentence path; a pair model only.
    pub fn logits_pair_one_per_sentence(&self, a: &[u32], b: &[u32]) -> Result<Vec<f32>> {
        check_pairs(self, 1, 1)?;
        Ok(self.logits_per_sentence(a, b))
    }

    /// Token ids of `text` computed afresh, without the word cache (the original path): the
    /// same ids as [`Self::encode`].
    pub fn encode_uncached(&self, text: &str) -> Vec<u32> {
        let mut ids = self.encoder.encode(text);
        ids.truncate(self.max_len);
        ids
    }

    /// The per-sentence path for one text (or pair).
    fn logits_per_sentence(&self, a: &[u32], b: &[u32]) -> Vec<f32> {
        let mut out = vec![0.0; self.num_outputs()];
        let va = self.sentence_vector_per_sentence(a);
        let vb = if self.is_pair() {
            self.sentence_vector_per_sentence(b)
        } else {
            Vec::new()
        };
        self.head_into(&va, &vb, &mut Vec::new(), &mut out);
        out
    }

    /// The top layer's final states through [`forward_seq`], one direction at a time, with
    /// fresh buffers (the original serving path).
    fn sentence_vector_per_sentence(&self, ids: &[u32]) -> Vec<f32> {
        let h = self.hidden;
        let len = ids.len().min(self.max_len);
        let mut input: Vec<f32> = Vec::new();
        let mut features = vec![0.0f32; 2 * h];
        let mut xg = vec![0.0f32; len * 4 * h];
        for (l, layer) in self.layers.iter().enumerate() {
            let top = l + 1 == self.layers.len();
            let mut outputs = if top {
                Vec::new()
            } else {
                vec![0.0f32; len * 2 * h]
            };
            for (d, dir) in layer.iter().enumerate() {
                if l == 0 {
                    let rows = dir.table.len() / (4 * h);
                    for (row, &id) in xg.chunks_mut(4 * h).zip(ids) {
                        let id = (id as usize).min(rows - 1);
                        row.copy_from_slice(&dir.table[id * 4 * h..(id + 1) * 4 * h]);
                    }
                } else {
                    dir.project_rows(&input, &mut xg);
                }
                let (mut hs, mut cs) = (vec![0.0f32; h], vec![0.0f32; h]);
                let mut seq = vec![0.0f32; if top { 0 } else { len * h }];
                let out = if top { None } else { Some(&mut seq[..]) };
                forward_seq(&dir.rec, &xg, len, d == 1, &mut hs, &mut cs, out, None);
                if top {
                    features[d * h..(d + 1) * h].copy_from_slice(&hs);
                } else {
                    for (o, s) in outputs.chunks_mut(2 * h).zip(seq.chunks(h)) {
                        o[d * h..(d + 1) * h].copy_from_slice(s);
                    }
                }
            }
            input = outputs;
        }
        features
    }

    /// Token ids of many texts, in parallel, each thread through its own cache.
    pub fn encode_batch<T: AsRef<str> + Sync>(&self, texts: &[T]) -> Vec<Vec<u32>> {
        texts
            .par_iter()
            .with_min_len(64)
            .map(|t| self.encode(t.as_ref()))
            .collect()
    }

    /// Label and probabilities of many pairs (`a[i]` with `b[i]`), batched; a pair model only.
    pub fn predict_pair_batch<T: AsRef<str> + Sync>(
        &self,
        a: &[T],
        b: &[T],
    ) -> Result<Vec<Prediction>> {
        check_pairs(self, a.len(), b.len())?;
        let (a, b) = (self.encode_flat(a), self.encode_flat(b));
        let logits = self.logits_pair_flat(&a.slices(), &b.slices())?;
        Ok(self.predictions(&logits))
    }

    /// Predictions from flat logits `[N, C]`, in parallel.
    pub(crate) fn predictions(&self, logits: &[f32]) -> Vec<Prediction> {
        logits
            .par_chunks(self.num_outputs().max(1))
            .with_min_len(256)
            .map(|l| self.prediction(l.to_vec()))
            .collect()
    }

    /// Encodes texts in parallel chunks into flat id buffers.
    fn encode_flat<T: AsRef<str> + Sync>(&self, texts: &[T]) -> FlatIds {
        FlatIds(
            texts
                .par_chunks(256)
                .map(|chunk| {
                    let mut local = self.local();
                    let (mut ids, mut ends) = (Vec::new(), Vec::with_capacity(chunk.len()));
                    for t in chunk {
                        self.encode_into(t.as_ref(), &mut local.words, &mut ids);
                        ends.push(ids.len());
                    }
                    (ids, ends)
                })
                .collect(),
        )
    }

    /// Turns this model's logits into a [`Prediction`] with its label names.
    pub fn prediction(&self, logits: Vec<f32>) -> Prediction {
        prediction(logits, &self.labels)
    }

    /// Scores this student on labelled `data` (single texts or pairs, as the model reads):
    /// the [`Metrics`] and the class probabilities `[N][C]` of every row in input order.
    pub fn evaluate(&self, data: &Dataset) -> Result<(Metrics, Vec<Vec<f32>>)> {
        let gold = data
            .labels()
            .ok_or_else(|| Error::Config("evaluation needs a label on every row".into()))?;
        if data.is_pairs() != self.is_pair() {
            let kind = |pairs: bool| {
                if pairs {
                    "sentence pairs"
                } else {
                    "single texts"
                }
            };
            return Err(Error::Config(format!(
                "the model reads {} but the data has {}",
                kind(self.is_pair()),
                kind(data.is_pairs())
            )));
        }
        let encode =
            |texts: Vec<&str>| -> Vec<Vec<u32>> { texts.iter().map(|t| self.encode(t)).collect() };
        let ids = encode(data.texts());
        let logits = match data.text_pairs().filter(|_| self.is_pair()) {
            Some(b) => self.logits_pair_batch(&ids, &encode(b))?,
            None => self.logits_batch(&ids),
        };
        let probs: Vec<Vec<f32>> = logits
            .into_iter()
            .map(|l| self.prediction(l).probabilities)
            .collect();
        let classes = probs.first().map_or(self.labels.len(), Vec::len);
        if let Some(bad) = gold.iter().find(|&&g| g as usize >= classes) {
            return Err(Error::Config(format!(
                "label id {bad} is out of range for a model with {classes} classes"
            )));
        }
        Ok((Metrics::compute(&probs.concat(), classes, &gold), probs))
    }
}

/// Texts' ids in chunks: each chunk's ids back to back and where each text ends.
struct FlatIds(Vec<(Vec<u32>, Vec<usize>)>);

impl FlatIds {
    fn slices(&self) -> Vec<&[u32]> {
        let mut out = Vec::new();
        for (ids, ends) in &self.0 {
            let mut start = 0;
            for &end in ends {
                out.push(&ids[start..end]);
                start = end;
            }
        }
        out
    }
}

/// Refuses pairs for a single-text model and lists of different lengths.
pub(crate) fn check_pairs(p: &Predictor, a: usize, b: usize) -> Result<()> {
    if !p.is_pair() {
        return Err(not_pair());
    }
    if a != b {
        return Err(Error::Config(format!(
            "{a} first texts but {b} second texts"
        )));
    }
    Ok(())
}

fn not_pair() -> Error {
    Error::Config("this student reads single texts, not pairs".into())
}

/// `out = W·x + b` with `W` `[out, in]`.
pub(crate) fn project(w: &[f32], b: &[f32], x: &[f32], out: &mut [f32]) {
    let n = x.len();
    for (j, o) in out.iter_mut().enumerate() {
        *o = b[j] + distill_ops::math::dot(&w[j * n..(j + 1) * n], x);
    }
}

/// Probability of each label from logits: softmax over `C ≥ 2` logits; for one (BCE) logit
/// `z`, `[1 − σ(z), σ(z)]`.
pub fn probabilities(logits: &[f32]) -> Vec<f32> {
    if let [z] = logits {
        let p = distill_ops::math::sigmoid(*z);
        return vec![1.0 - p, p];
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|z| (z - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Turns logits into a [`Prediction`]: the most probable label (the lowest id on a tie) and
/// its name in `labels` (`"?"` if `labels` has none for it).
pub fn prediction(logits: Vec<f32>, labels: &LabelSet) -> Prediction {
    let probabilities = probabilities(&logits);
    let first = probabilities.first().copied().unwrap_or(f32::NAN);
    let (label, probability) =
        probabilities
            .iter()
            .copied()
            .enumerate()
            .skip(1)
            .fold(
                (0, first),
                |best, (i, p)| {
                    if p > best.1 {
                        (i, p)
                    } else {
                        best
                    }
                },
            );
    let label = label as u32;
    Prediction {
        label,
        label_name: labels.name(label).unwrap_or("?").to_string(),
        probability,
        probabilities,
        logits,
    }
}

#[cfg(test)]
mod tests {
    use super::project;

    /// The eight-sum projection against a plain f64 dot product, on lengths with and
    /// without a remainder (0..=20) and the widths that serve (16, 128).
    #[test]
    fn project_matches_a_plain_dot_product() {
        for n in (0..=20).chain([128]) {
            let rows = 5;
            let w: Vec<f32> = (0..rows * n)
                .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
                .collect();
            let x: Vec<f32> = (0..n).map(|i| ((i * 13 % 17) as f32 - 8.0) / 5.0).collect();
            let b: Vec<f32> = (0..rows).map(|j| j as f32 * 0.25 - 0.5).collect();
            let mut out = vec![f32::NAN; rows];
            project(&w, &b, &x, &mut out);
            for (j, &o) in out.iter().enumerate() {
                let want = b[j] as f64
                    + (0..n)
                        .map(|k| w[j * n + k] as f64 * x[k] as f64)
                        .sum::<f64>();
                assert!(
                    (o as f64 - want).abs() <= 1e-5 * (1.0 + want.abs()),
                    "n {n} row {j}: {o} vs {want}"
                );
            }
        }
    }
}
