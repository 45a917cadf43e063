//! One BERT encoder layer (post-LN, as in the original BERT):
//!
//! ```text
//! a = LayerNorm(x + Dropout(Attention(x) Wₒ + bₒ))
//! y = LayerNorm(a + Dropout(act(a W₁ + b₁) W₂ + b₂))
//! Attention(x) = concatₕ softmax(Qₕ Kₕᵀ / √d + mask) Vₕ      (dropout on the probabilities)
//! ```
//! `x`, `a`, `y` `(B, T, H)`; per head `Qₕ`, `Kₕ`, `Vₕ` `(B, T, d)` with `d = H / heads`;
//! the additive mask `(B, T)` is 0 for tokens and the most negative f32 for padding,
//! so padded keys get exactly zero probability (transformers does the same).

use candle_core::{Result, Tensor};

use crate::config::{Activation, BertConfig};
use crate::error::Result as CrateResult;
use crate::layers::{attention::attention, gelu, Ctx, Dropout, LayerNorm, Linear};
use crate::weights::Params;

fn linear(params: &Params, prefix: &str) -> CrateResult<Linear> {
    Ok(Linear::new(
        params.get(&format!("{prefix}.weight"))?,
        params.get(&format!("{prefix}.bias"))?,
    ))
}

fn layer_norm(params: &Params, prefix: &str, eps: f64) -> CrateResult<LayerNorm> {
    Ok(LayerNorm::new(
        params.get(&format!("{prefix}.weight"))?,
        params.get(&format!("{prefix}.bias"))?,
        eps,
    ))
}

/// Multi-head self-attention with its output projection, dropout and LayerNorm.
#[derive(Debug, Clone)]
struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    layer_norm: LayerNorm,
    heads: usize,
    probs_dropout: Dropout,
    hidden_dropout: Dropout,
}

impl Attention {
    fn new(params: &Params, prefix: &str, cfg: &BertConfig) -> CrateResult<Self> {
        Ok(Self {
            query: linear(params, &format!("{prefix}.self.query"))?,
            key: linear(params, &format!("{prefix}.self.key"))?,
            value: linear(params, &format!("{prefix}.self.value"))?,
            output: linear(params, &format!("{prefix}.output.dense"))?,
            layer_norm: layer_norm(
                params,
                &format!("{prefix}.output.LayerNorm"),
                cfg.layer_norm_eps,
            )?,
            heads: cfg.num_attention_heads,
            probs_dropout: Dropout::new(cfg.attention_probs_dropout_prob),
            hidden_dropout: Dropout::new(cfg.hidden_dropout_prob),
        })
    }

    fn pack_bf16(&mut self) -> Result<()> {
        for l in [
            &mut self.query,
            &mut self.key,
            &mut self.value,
            &mut self.output,
        ] {
            l.pack_bf16()?;
        }
        Ok(())
    }

    /// The block's output at the positions of `rows` (all of `x`, or a prefix of its
    /// positions): queries and the residual come from `rows`, keys and values from `x`.
    fn forward(&self, x: &Tensor, rows: &Tensor, mask: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let (q, k, v) = (
            self.query.forward_in(rows, ctx)?,
            self.key.forward_in(x, ctx)?,
            self.value.forward_in(x, ctx)?,
        );
        let context = attention(&q, &k, &v, mask, self.heads, self.probs_dropout, ctx)?;
        let out = self.output.forward_in(&context, ctx)?;
        let out = self.hidden_dropout.forward(&out, ctx)?;
        self.layer_norm.forward(&(out + rows)?, ctx.mode)
    }
}

/// One encoder layer: attention block, then feed-forward block. Its six products run in
/// bf16 when the pass asks (`ctx.bf16`, mixed-precision training).
#[derive(Debug, Clone)]
pub struct EncoderLayer {
    attention: Attention,
    intermediate: Linear,
    output: Linear,
    layer_norm: LayerNorm,
    act: Activation,
    dropout: Dropout,
}

impl EncoderLayer {
    /// The layer `index` of `params`.
    pub fn new(params: &Params, index: usize, cfg: &BertConfig) -> CrateResult<Self> {
        let p = format!("bert.encoder.layer.{index}");
        Ok(Self {
            attention: Attention::new(params, &format!("{p}.attention"), cfg)?,
            intermediate: linear(params, &format!("{p}.intermediate.dense"))?,
            output: linear(params, &format!("{p}.output.dense"))?,
            layer_norm: layer_norm(params, &format!("{p}.output.LayerNorm"), cfg.layer_norm_eps)?,
            act: cfg.hidden_act,
            dropout: Dropout::new(cfg.hidden_dropout_prob),
        })
    }

    /// Multiplies in bf16 from now on (inference only, see [`crate::layers::bf16`]).
    pub fn pack_bf16(&mut self) -> Result<()> {
        self.attention.pack_bf16()?;
        self.intermediate.pack_bf16()?;
        self.output.pack_bf16()
    }

    /// `(B, T, H)` → `(B, T, H)`; `mask` is the additive `(B, T)` mask.
    pub fn forward(&self, x: &Tensor, mask: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        self.forward_rows(x, x, mask, ctx)
    }

    /// `(B, T, H)` → `(B, 1, H)`: the output at the first (`[CLS]`) position only, which
    /// is all the pooler reads from the last layer. Every other position's queries,
    /// output projection and feed-forward block are skipped (about 10/12 of the layer's
    /// work); the result equals `forward(x)[:, :1]`. Inference only.
    pub fn forward_first(&self, x: &Tensor, mask: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        self.forward_rows(x, &x.narrow(1, 0, 1)?, mask, ctx)
    }

    fn forward_rows(
        &self,
        x: &Tensor,
        rows: &Tensor,
        mask: &Tensor,
        ctx: &mut Ctx,
    ) -> Result<Tensor> {
        let a = self.attention.forward(x, rows, mask, ctx)?;
        let inner = self.intermediate.forward_in(&a, ctx)?;
        let inner = match self.act {
            Activation::Gelu => gelu::gelu_erf(&inner)?,
            Activation::GeluTanh => inner.gelu()?,
            Activation::Relu => inner.relu()?,
        };
        let out = self.output.forward_in(&inner, ctx)?;
        let out = self.dropout.forward(&out, ctx)?;
        self.layer_norm.forward(&(out + a)?, ctx.mode)
    }
}

/// The additive attention mask `(B, T)` from a `(B, T)` mask of ones (tokens) and zeros
/// (padding): `0` for tokens, `f32::MIN` for padding.
pub fn additive_mask(mask: &Tensor) -> Result<Tensor> {
    let max = f32::MAX as f64;
    mask.to_dtype(candle_core::DType::F32)?.affine(max, -max)
}
