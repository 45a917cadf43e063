//! Scaled dot-product attention over heads, from projected queries, keys and values:
//!
//! ```text
//! S = Qₕ Kₕᵀ · s + mask     P = softmax(S)     A = P ∘ D     Cₕ = A Vₕ
//! ```
//! `Q`, `K`, `V`, `C` `(B, T, H)` (in inference `Q` and `C` may have fewer rows, e.g. only
//! `[CLS]`) with head `h` in columns `h·d .. (h+1)·d`
//! (`d = H / heads`), `s = 1/√d`, the additive `mask` `(B, T)` (0 for tokens,
//! `f32::MIN` for padding) broadcast over queries, `D` the dropout keep-mask scaled by
//! `1/(1 − p)` (all ones outside training). Backward per head, `G = ∂L/∂Cₕ`:
//! `∂A = G Vₕᵀ`, `∂Vₕ = Aᵀ G`, `∂P = ∂A ∘ D`, `∂S = P ∘ (∂P − rowsum(∂P ∘ P))`,
//! `∂Qₕ = s ∂S Kₕ`, `∂Kₕ = s ∂Sᵀ Qₕ`.
//!
//! On the CPU this is one custom op (loops over the batch in parallel; with T ≈ 15 and
//! d = 32 the work is tiny, the graph nodes were what cost). [`attention_ops`] composes
//! the same computation from candle ops (head split, batched matmuls, softmax, dropout)
//! and runs on other devices; the tests check one against the other.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use distill_ops::dropout::keep_mask;
use distill_ops::host;
use distill_ops::math::exp;
use rayon::prelude::*;

use super::softmax::softmax_last_dim;
use super::{dot, sum, Ctx, Dropout, Mode};

/// Attention of `q`, `k`, `v` `(B, T, H)` under the additive `mask` `(B, T)`, with dropout
/// on the probabilities in training mode; returns the context `(B, T, H)`.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    heads: usize,
    dropout: Dropout,
    ctx: &mut Ctx,
) -> Result<Tensor> {
    if !(q.device().is_cpu() && q.dtype() == DType::F32) {
        return attention_ops(q, k, v, mask, heads, dropout, ctx);
    }
    let (b, tq, h) = q.dims3()?;
    let t = k.dim(1)?;
    // Fewer queries than keys (the last layer's `[CLS]` row) only in inference: the
    // backward pass below assumes one query per key.
    let queries_ok = tq == t || (tq < t && !ctx.mode.differentiable());
    if h % heads != 0 || mask.dims() != [b, t] || k.dims() != v.dims() || !queries_ok {
        candle_core::bail!(
            "attention: {heads} heads, q {:?}, k {:?}, v {:?}, mask {:?}, {:?}",
            q.dims(),
            k.dims(),
            v.dims(),
            mask.dims(),
            ctx.mode
        )
    }
    let keep = (ctx.mode == Mode::Train && dropout.p() > 0.0)
        .then(|| keep_mask(b * heads * t * t, dropout.p() as f32, ctx.rng));
    let op = AttentionOp {
        heads,
        mask: mask.flatten_all()?.to_vec1::<f32>()?,
        keep,
        probs: Mutex::new(Vec::new()),
    };
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    if ctx.mode.differentiable() {
        q.apply_op3(&k, &v, op)
    } else {
        q.apply_op3_no_bwd(&k, &v, &op)
    }
}

/// The reference path from candle ops (any device).
pub fn attention_ops(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    heads: usize,
    dropout: Dropout,
    ctx: &mut Ctx,
) -> Result<Tensor> {
    let (b, tq, h) = q.dims3()?;
    let t = k.dim(1)?;
    let split = |x: &Tensor| {
        x.reshape((b, x.dim(1)?, heads, h / heads))?
            .transpose(1, 2)?
            .contiguous()
    };
    let scale = 1.0 / ((h / heads) as f64).sqrt();
    let (q, k, v) = (split(&(q * scale)?)?, split(k)?, split(v)?);
    let scores = q
        .matmul(&k.t()?)?
        .broadcast_add(&mask.reshape((b, 1, 1, t))?)?;
    let probs = softmax_last_dim(&scores, ctx.mode)?;
    let probs = dropout.forward(&probs, ctx)?;
    probs
        .matmul(&v)?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((b, tq, h))
}

#[inline]
fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += alpha * x);
}

struct AttentionOp {
    heads: usize,
    /// `(B, T)` additive mask.
    mask: Vec<f32>,
    /// `(B, heads, T, T)` scaled keep-mask, in training.
    keep: Option<Vec<f32>>,
    /// `P` `(B, heads, T, T)` from the forward pass, for the backward pass.
    probs: Mutex<Vec<f32>>,
}

impl CustomOp3 for AttentionOp {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (q, k, v) = (
            host::slice(s1, l1, self.name())?,
            host::slice(s2, l2, self.name())?,
            host::slice(s3, l3, self.name())?,
        );
        let (_, tq, h) = l1.shape().dims3()?;
        let t = l2.dim(1)?;
        let (heads, d) = (self.heads, h / self.heads);
        let scale = 1.0 / (d as f32).sqrt();
        let (per_q, per_seq, per_probs) = (tq * h, t * h, heads * tq * t);
        let mut out = vec![0f32; q.len()];
        let mut probs = vec![0f32; q.len() / per_q * per_probs];
        out.par_chunks_mut(per_q)
            .zip(probs.par_chunks_mut(per_probs))
            .enumerate()
            .for_each(|(b, (out, probs))| {
                let (q, k, v) = (
                    &q[b * per_q..][..per_q],
                    &k[b * per_seq..][..per_seq],
                    &v[b * per_seq..][..per_seq],
                );
                let mask = &self.mask[b * t..][..t];
                let keep = self.keep.as_ref().map(|m| &m[b * per_probs..][..per_probs]);
                for hd in 0..heads {
                    let col = hd * d;
                    for i in 0..tq {
                        let row = &mut probs[(hd * tq + i) * t..][..t];
                        let qi = &q[i * h + col..][..d];
                        let mut max = f32::NEG_INFINITY;
                        for (j, s) in row.iter_mut().enumerate() {
                            *s = scale * dot(qi, &k[j * h + col..][..d]) + mask[j];
                            max = max.max(*s);
                        }
                        row.iter_mut().for_each(|s| *s = exp(*s - max));
                        let inv = 1.0 / sum(row);
                        row.iter_mut().for_each(|s| *s *= inv);
                        let ci = &mut out[i * h + col..][..d];
                        for (j, &p) in row.iter().enumerate() {
                            let a = keep.map_or(p, |m| p * m[(hd * tq + i) * t + j]);
                            if a != 0.0 {
                                axpy(a, &v[j * h + col..][..d], ci);
                            }
                        }
                    }
                }
            });
        *self
            .probs
            .lock()
            .map_err(|_| candle_core::Error::Msg("poisoned".into()))? = probs;
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (_, t, h) = q.dims3()?;
        let (heads, d) = (self.heads, h / self.heads);
        let scale = 1.0 / (d as f32).sqrt();
        let host = |x: &Tensor| x.flatten_all()?.to_vec1::<f32>();
        let (q, k, v, g) = (host(q)?, host(k)?, host(v)?, host(grad)?);
        let probs = self
            .probs
            .lock()
            .map_err(|_| candle_core::Error::Msg("poisoned".into()))?;
        let (per_seq, per_probs) = (t * h, heads * t * t);
        let (mut dq, mut dk, mut dv) = (
            vec![0f32; q.len()],
            vec![0f32; q.len()],
            vec![0f32; q.len()],
        );
        dq.par_chunks_mut(per_seq)
            .zip(dk.par_chunks_mut(per_seq).zip(dv.par_chunks_mut(per_seq)))
            .enumerate()
            .for_each(|(b, (dq, (dk, dv)))| {
                let r = b * per_seq..(b + 1) * per_seq;
                let (q, k, v, g) = (&q[r.clone()], &k[r.clone()], &v[r.clone()], &g[r]);
                let p = &probs[b * per_probs..][..per_probs];
                let keep = self.keep.as_ref().map(|m| &m[b * per_probs..][..per_probs]);
                let mut ds = vec![0f32; t];
                for hd in 0..heads {
                    let col = hd * d;
                    for i in 0..t {
                        let row = &p[(hd * t + i) * t..][..t];
                        let gi = &g[i * h + col..][..d];
                        // ∂P_ij = (G_i · V_j) D_ij; ∂V_j += A_ij G_i.
                        let mut dot_dp_p = 0f32;
                        for j in 0..t {
                            let m = keep.map_or(1.0, |m| m[(hd * t + i) * t + j]);
                            let a = row[j] * m;
                            if a != 0.0 {
                                axpy(a, gi, &mut dv[j * h + col..][..d]);
                            }
                            let dp = if m != 0.0 {
                                dot(gi, &v[j * h + col..][..d]) * m
                            } else {
                                0.0
                            };
                            ds[j] = dp;
                            dot_dp_p += dp * row[j];
                        }
                        // ∂S_ij = P_ij (∂P_ij − Σ ∂P·P); ∂Q_i += s ∂S_ij K_j; ∂K_j += s ∂S_ij Q_i.
                        let qi = &q[i * h + col..][..d];
                        for j in 0..t {
                            let s = scale * row[j] * (ds[j] - dot_dp_p);
                            if s != 0.0 {
                                axpy(s, &k[j * h + col..][..d], &mut dq[i * h + col..][..d]);
                                axpy(s, qi, &mut dk[j * h + col..][..d]);
                            }
                        }
                    }
                }
            });
        let shape = grad.shape();
        let dev = grad.device();
        Ok((
            Some(Tensor::from_vec(dq, shape, dev)?),
            Some(Tensor::from_vec(dk, shape, dev)?),
            Some(Tensor::from_vec(dv, shape, dev)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn the_fused_op_matches_the_composition() -> Result<()> {
        let dev = Device::Cpu;
        let (b, t, h, heads) = (2, 5, 8, 2);
        let make = |offset: f32| -> Result<Var> {
            Var::from_tensor(
                &(Tensor::arange(offset, offset + (b * t * h) as f32, &dev)?
                    .reshape((b, t, h))?
                    * 0.37)?
                    .sin()?,
            )
        };
        let (q, k, v) = (make(0.)?, make(100.)?, make(200.)?);
        // The second sequence has two padded positions.
        let mask = Tensor::new(
            &[[0f32, 0., 0., 0., 0.], [0., 0., 0., f32::MIN, f32::MIN]],
            &dev,
        )?;
        let weights = Tensor::arange(0f32, (b * t * h) as f32, &dev)?
            .reshape((b, t, h))?
            .cos()?;
        let max = |x: Tensor| x.abs()?.max_all()?.to_scalar::<f32>();
        for mode in [Mode::Eval, Mode::Grad, Mode::Train] {
            let run = |fused: bool| -> Result<(Tensor, Option<candle_core::backprop::GradStore>)> {
                let mut rng = ChaCha8Rng::seed_from_u64(3);
                let mut ctx = Ctx::new(mode, &mut rng);
                let f = if fused { attention } else { attention_ops };
                let out = f(&q, &k, &v, &mask, heads, Dropout::new(0.3), &mut ctx)?;
                let grads = if mode.differentiable() {
                    Some((&out * &weights)?.sum_all()?.backward()?)
                } else {
                    None
                };
                Ok((out, grads))
            };
            let ((a, ga), (b, gb)) = (run(true)?, run(false)?);
            assert!(max((&a - &b)?)? < 1e-5, "{mode:?} forward");
            if let (Some(ga), Some(gb)) = (ga, gb) {
                for x in [&q, &k, &v] {
                    let (x1, x2) = (ga.get(x).expect("grad"), gb.get(x).expect("grad"));
                    assert!(max((x1 - x2)?)? < 1e-5, "{mode:?} backward");
                }
            }
        }
        Ok(())
    }
}
