//! BERT's input embeddings: `LayerNorm(word[ids] + position[0..T] + token_type[types])`,
//! then dropout; ids `(B, T)` u32 and token type ids `(B, T)` u32 → `(B, T, H)`.
//!
//! Sentence pairs give `b [SEP]` type 1 and the rest type 0, looked up per token. Single
//! sentences pass no type ids: every token has type 0, so the type embedding is one row
//! added to all positions (its gradient is the sum over them, as in PyTorch), with no
//! `(B, T)` tensor of zeros built or gathered.

use candle_core::{Result, Tensor, Var};

use crate::config::BertConfig;
use crate::error::Result as CrateResult;
use crate::layers::{Ctx, Dropout, LayerNorm, WordRows};
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

    /// `(B, T)` ids and optional `(B, T)` type ids (`None`: all 0) → `(B, T, H)`.
    pub fn forward(
        &self,
        ids: &Tensor,
        type_ids: Option<&Tensor>,
        ctx: &mut Ctx,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let max_positions = self.position.dim(0)?;
        if t > max_positions {
            candle_core::bail!(
                "sequence of {t} tokens exceeds max_position_embeddings {max_positions}"
            )
        }
        let hidden = self.word.dim(1)?;
        let flat = ids.flatten_all()?;
        let words = if ctx.sparse_words && ctx.mode.differentiable() {
            // Look the rows up through a small leaf variable, so that the gradient stays
            // (rows, hidden) instead of a dense (vocab, hidden) matrix (see `WordRows`).
            let host = flat.to_vec1::<u32>()?;
            let mut rows = host.clone();
            rows.sort_unstable();
            rows.dedup();
            let local: Vec<u32> = host
                .iter()
                .map(|id| rows.binary_search(id).unwrap_or_else(|i| i) as u32)
                .collect();
            let rows_t = Tensor::new(rows.as_slice(), ids.device())?;
            let leaf = Var::from_tensor(&self.word.index_select(&rows_t, 0)?.detach())?;
            let local = Tensor::from_vec(local, b * t, ids.device())?;
            let words = leaf.as_tensor().index_select(&local, 0)?;
            ctx.word_rows = Some(WordRows { rows, leaf });
            words
        } else {
            self.word.index_select(&flat, 0)?
        };
        let words = words.reshape((b, t, hidden))?;
        let x = match type_ids {
            None => {
                let extra = (self.position.narrow(0, 0, t)?
                    + self.token_type.narrow(0, 0, 1)?.broadcast_as((t, hidden))?)?;
                words.broadcast_add(&extra)?
            }
            Some(types) => {
                if types.dims2()? != (b, t) {
                    candle_core::bail!(
                        "token type ids {:?} do not match the ids ({b}, {t})",
                        types.dims()
                    )
                }
                let types = self
                    .token_type
                    .index_select(&types.flatten_all()?, 0)?
                    .reshape((b, t, hidden))?;
                (words + types)?.broadcast_add(&self.position.narrow(0, 0, t)?)?
            }
        };
        let x = self.layer_norm.forward(&x, ctx.mode)?;
        self.dropout.forward(&x, ctx)
    }
}
