//! BERT's input embeddings: `LayerNorm(word[ids] + position[0..T] + token_type[0])`, then
//! dropout; ids `(B, T)` u32 → `(B, T, H)`.
//!
//! Single sentences only: every token has type 0, so the type embedding is one row added
//! to all positions (its gradient is the sum over them, as in PyTorch).

use candle_core::{Result, Tensor};

use crate::config::BertConfig;
use crate::error::Result as CrateResult;
use crate::layers::{Ctx, Dropout, LayerNorm};
use crate::weights::Params;

/// Word, position and token-type embeddings with their LayerNorm.
#[derive(Debug, Clone)]
pub struct Embeddings {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    layer_norm: LayerNorm,
    dropout: Dropout,
}

impl Embeddings {
    pub fn new(params: &Params, cfg: &BertConfig) -> CrateResult<Self> {
        let p = "bert.embeddings";
        Ok(Self {
            word: params.get(&format!("{p}.word_embeddings.weight"))?,
            position: params.get(&format!("{p}.position_embeddings.weight"))?,
            token_type: params.get(&format!("{p}.token_type_embeddings.weight"))?,
            layer_norm: LayerNorm::new(
                params.get(&format!("{p}.LayerNorm.weight"))?,
                params.get(&format!("{p}.LayerNorm.bias"))?,
                cfg.layer_norm_eps,
            ),
            dropout: Dropout::new(cfg.hidden_dropout_prob),
        })
    }

    /// `(B, T)` ids → `(B, T, H)`.
    pub fn forward(&self, ids: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let max_positions = self.position.dim(0)?;
        if t > max_positions {
            candle_core::bail!("sequence of {t} tokens exceeds max_position_embeddings {max_positions}")
        }
        let hidden = self.word.dim(1)?;
        let words = self
            .word
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, t, hidden))?;
        let extra = (self.position.narrow(0, 0, t)? + self.token_type.narrow(0, 0, 1)?.broadcast_as((t, hidden))?)?;
        let x = words.broadcast_add(&extra)?;
        let x = self.layer_norm.forward(&x, ctx.mode)?;
        self.dropout.forward(&x, ctx)
    }
}
