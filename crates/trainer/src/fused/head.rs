//! The classifier on top of the encoder: dropout and linear layers, forward and backward.
//!
//! Single text: the sentence vectors `v` `(B, 2H)` → dropout → `fc`: `logits = v'·Wᵀ + b`
//! `(B, C)`. Pair (siamese): the first texts' vectors `h1` (rows `0..B` of `v`) and the second
//! texts' `h2` (rows `B..2B`) → `f = [h1; h2; h1⊙h2; |h1−h2|]` `(B, 8H)` → dropout →
//! `fc.0` `(8H → 2H)` → ReLU → `fc.2` `(2H → C)`. As in the candle model, ReLU and `|·|` have
//! slope 0 at 0, and dropout is inverted (kept values scaled by `1/(1 − p)`) with one uniform
//! draw per feature in row-major order from the step's generator, so both engines drop the
//! same features for the same seed.
//!
//! Linear backward: `dW = dyᵀ·x`, `db = Σ_rows dy`, `dx = dy·W`.

use rand::RngCore;

use distill_ops::gemm::{gemm, gemm_tn, transpose};

/// A linear layer's weight `(out, inp)` (PyTorch layout) and bias `(out)`.
pub struct Linear<'a> {
    pub w: &'a [f32],
    pub b: &'a [f32],
    pub inp: usize,
    pub out: usize,
}

/// Gradients of one linear layer.
#[derive(Default)]
pub struct LinearGrads {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

/// What the head's forward keeps for its backward.
#[derive(Default)]
pub struct HeadCache {
    /// The classifier's input after dropout `(B, F)`.
    features: Vec<f32>,
    /// Dropout multipliers `(B, F)` (0 or `1/(1 − p)`); empty without dropout.
    mask: Vec<f32>,
    /// Pair: `fc.0`'s output before ReLU `(B, 2H)`, and after.
    hidden: Vec<f32>,
    relu: Vec<f32>,
    scratch: Vec<f32>,
    /// Pair backward: gradients of the ReLU's output and of the features.
    d_relu: Vec<f32>,
    d_features: Vec<f32>,
}

/// Draws the dropout multipliers of `examples` rows of `width` features into the cache,
/// as the candle model draws them (none without `rng` or with `p ≤ 0`). Drawn before the
/// forward pass, so that the rest of the step needs no generator.
pub fn draw_dropout(
    cache: &mut HeadCache,
    examples: usize,
    width: usize,
    p: f32,
    rng: Option<&mut dyn RngCore>,
) {
    dropout_mask(examples * width, p, rng, &mut cache.mask);
}

/// Inverted-dropout multipliers for `len` features.
fn dropout_mask(len: usize, p: f32, rng: Option<&mut dyn RngCore>, mask: &mut Vec<f32>) {
    mask.clear();
    let Some(rng) = rng else { return };
    if p <= 0.0 {
        return;
    }
    // The candle model's mask, from the same kernel.
    mask.resize(len, 0.0);
    distill_ops::dropout::keep_mask_into(mask, p, rng);
}

/// `y = x·Wᵀ + b` for `rows` rows of `x`.
fn linear(x: &[f32], rows: usize, l: &Linear, wt: &mut Vec<f32>, y: &mut Vec<f32>) {
    wt.resize(l.inp * l.out, 0.0);
    transpose(l.out, l.inp, l.w, l.inp, wt);
    y.clear();
    for _ in 0..rows {
        y.extend_from_slice(l.b);
    }
    gemm(rows, l.inp, l.out, x, l.inp, wt, l.out, y, l.out, true);
}

/// Gradients of a linear layer from `dy` `(rows, out)` and its input `x`; `dx` if asked.
fn linear_back(
    x: &[f32],
    rows: usize,
    l: &Linear,
    dy: &[f32],
    g: &mut LinearGrads,
    dx: Option<&mut Vec<f32>>,
) {
    g.b.clear();
    g.b.resize(l.out, 0.0);
    for row in dy.chunks_exact(l.out) {
        for (b, d) in g.b.iter_mut().zip(row) {
            *b += d;
        }
    }
    g.w.resize(l.out * l.inp, 0.0);
    gemm_tn(
        l.out, rows, l.inp, dy, l.out, x, l.inp, &mut g.w, l.inp, false,
    );
    if let Some(dx) = dx {
        dx.resize(rows * l.inp, 0.0);
        gemm(rows, l.out, l.inp, dy, l.out, l.w, l.inp, dx, l.inp, false);
    }
}

/// Single-text head: `states` `(B, 2H)` → `logits` `(B, C)`, with the drawn dropout.
pub fn single_forward(
    states: &[f32],
    rows: usize,
    fc: &Linear,
    cache: &mut HeadCache,
    logits: &mut Vec<f32>,
) {
    cache.features.clear();
    cache.features.extend_from_slice(&states[..rows * fc.inp]);
    apply_mask(&mut cache.features, &cache.mask);
    linear(&cache.features, rows, fc, &mut cache.scratch, logits);
}

/// Backward of [`single_forward`]: `d_states` `(B, 2H)` from `d_logits` `(B, C)`.
pub fn single_backward(
    rows: usize,
    fc: &Linear,
    d_logits: &[f32],
    cache: &mut HeadCache,
    g: &mut LinearGrads,
    d_states: &mut Vec<f32>,
) {
    linear_back(&cache.features, rows, fc, d_logits, g, Some(d_states));
    apply_mask(d_states, &cache.mask);
}

/// Pair head: `states` `(2B, 2H)` (first texts, then second texts) → `logits` `(B, C)`,
/// with the drawn dropout.
pub fn pair_forward(
    states: &[f32],
    pairs: usize,
    fc0: &Linear,
    fc2: &Linear,
    cache: &mut HeadCache,
    logits: &mut Vec<f32>,
) {
    let d = fc0.inp / 4; // 2H
    let f = &mut cache.features;
    f.clear();
    for r in 0..pairs {
        let (h1, h2) = (
            &states[r * d..(r + 1) * d],
            &states[(pairs + r) * d..(pairs + r + 1) * d],
        );
        f.extend_from_slice(h1);
        f.extend_from_slice(h2);
        f.extend(h1.iter().zip(h2).map(|(a, b)| a * b));
        f.extend(h1.iter().zip(h2).map(|(a, b)| (a - b).abs()));
    }
    apply_mask(f, &cache.mask);
    linear(f, pairs, fc0, &mut cache.scratch, &mut cache.hidden);
    cache.relu.clear();
    cache
        .relu
        .extend(cache.hidden.iter().map(|&x| if x > 0.0 { x } else { 0.0 }));
    linear(&cache.relu, pairs, fc2, &mut cache.scratch, logits);
}

/// Backward of [`pair_forward`]: `d_states` `(2B, 2H)` from `d_logits` `(B, C)`.
#[allow(clippy::too_many_arguments)]
pub fn pair_backward(
    states: &[f32],
    pairs: usize,
    fc0: &Linear,
    fc2: &Linear,
    d_logits: &[f32],
    cache: &mut HeadCache,
    g0: &mut LinearGrads,
    g2: &mut LinearGrads,
    d_states: &mut Vec<f32>,
) {
    let HeadCache {
        features,
        mask,
        hidden,
        relu,
        d_relu,
        d_features,
        ..
    } = cache;
    linear_back(relu, pairs, fc2, d_logits, g2, Some(d_relu));
    for (dr, &x) in d_relu.iter_mut().zip(hidden.iter()) {
        if x <= 0.0 {
            *dr = 0.0;
        }
    }
    linear_back(features, pairs, fc0, d_relu, g0, Some(d_features));
    apply_mask(d_features, mask);
    let d = fc0.inp / 4;
    d_states.clear();
    d_states.resize(2 * pairs * d, 0.0);
    let (d1s, d2s) = d_states.split_at_mut(pairs * d);
    for r in 0..pairs {
        let (h1, h2) = (
            &states[r * d..(r + 1) * d],
            &states[(pairs + r) * d..(pairs + r + 1) * d],
        );
        let df = &d_features[r * 4 * d..(r + 1) * 4 * d];
        let (d1, d2) = (&mut d1s[r * d..(r + 1) * d], &mut d2s[r * d..(r + 1) * d]);
        for k in 0..d {
            let diff = h1[k] - h2[k];
            let sign = if diff > 0.0 {
                1.0
            } else if diff < 0.0 {
                -1.0
            } else {
                0.0
            };
            let (dprod, dabs) = (df[2 * d + k], df[3 * d + k]);
            d1[k] = df[k] + dprod * h2[k] + dabs * sign;
            d2[k] = df[d + k] + dprod * h1[k] - dabs * sign;
        }
    }
}

fn apply_mask(x: &mut [f32], mask: &[f32]) {
    if mask.is_empty() {
        return;
    }
    for (v, m) in x.iter_mut().zip(mask) {
        *v *= m;
    }
}
