//! `BertForSequenceClassification` in candle:
//!
//! ```text
//! ids (B, T), type ids (B, T) (pairs only), mask (B, T)
//!  → Embeddings → EncoderLayer × L → hidden (B, T, H)        (last hidden state)
//!  → pooled = tanh(hidden[:, 0] W_p + b_p)    (B, H)         (pooler output)
//!  → logits = Dropout(pooled) W_c + b_c       (B, C)
//! ```
//!
//! One model serves training and inference: [`Mode`] picks fused kernels (inference) or
//! differentiable compositions with dropout (training). The parameters live in
//! [`Params`] as variables, so gradients of any loss on the logits map to them by name.

pub mod embeddings;
pub mod encoder;

use std::sync::Mutex;

use candle_core::{DType, Device, IndexOp, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::Precision;
use crate::config::BertConfig;
use crate::error::Result;
use crate::layers::{Ctx, Dropout, Linear, Mode, WordRows};
use crate::weights::Params;
use embeddings::Embeddings;
use encoder::{additive_mask, EncoderLayer};

/// Name of the word-embedding table in [`Params`].
pub const WORD_EMBEDDINGS: &str = "bert.embeddings.word_embeddings.weight";

/// The encoder's outputs for a batch.
#[derive(Debug, Clone)]
pub struct BertOutput {
    /// `(B, T, H)`.
    pub last_hidden_state: Tensor,
    /// `(B, H)`: `tanh` of the dense pooler over the first (`[CLS]`) token.
    pub pooler_output: Tensor,
}

/// A BERT encoder with pooler and classification head.
pub struct BertClassifier {
    config: BertConfig,
    params: Params,
    embeddings: Embeddings,
    layers: Vec<EncoderLayer>,
    pooler: Linear,
    dropout: Dropout,
    classifier: Linear,
    num_labels: usize,
    rng: Mutex<ChaCha8Rng>,
    /// The encoder multiplies in bf16 (inference only).
    bf16: bool,
    /// Differentiable passes multiply the encoder's products in bf16 (mixed-precision
    /// training; [`BertClassifier::set_training_precision`]).
    train_bf16: bool,
}

impl BertClassifier {
    /// Builds the model on `params`, which must follow `config` (see [`Params::load`]).
    pub fn new(config: BertConfig, params: Params) -> Result<Self> {
        let embeddings = Embeddings::new(&params, &config)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| EncoderLayer::new(&params, i, &config))
            .collect::<Result<Vec<_>>>()?;
        let pooler = Linear::new(
            params.get("bert.pooler.dense.weight")?,
            params.get("bert.pooler.dense.bias")?,
        );
        let classifier = Linear::new(
            params.get("classifier.weight")?,
            params.get("classifier.bias")?,
        );
        let num_labels = classifier.weight().dim(0)?;
        Ok(Self {
            dropout: Dropout::new(config.classifier_dropout_prob()),
            config,
            params,
            embeddings,
            layers,
            pooler,
            classifier,
            num_labels,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(0)),
            bf16: false,
            train_bf16: false,
        })
    }

    /// Runs the encoder's matrix products in bf16 from now on (AMX tiles or AVX512-BF16):
    /// inference only (a differentiable pass is refused), CPU only, and only where
    /// [`crate::layers::bf16::available`]. The pooler and classifier stay f32; they see
    /// one row per sentence.
    pub fn pack_bf16(&mut self) -> crate::error::Result<()> {
        self.check_bf16("inference")?;
        for layer in &mut self.layers {
            layer.pack_bf16()?;
        }
        self.bf16 = true;
        Ok(())
    }

    /// The arithmetic of the encoder's products in differentiable passes (training):
    /// [`Precision::Bf16`] runs them in bf16 (AMX tiles or AVX512-BF16) with the f32
    /// weights rounded per call and their gradients `∂x`, `∂W` in bf16 too
    /// ([`crate::layers::Linear::forward_bf16`]); the weights, their updates, layer norm,
    /// softmax, GELU, the pooler, the classifier and the loss stay f32. Inference passes
    /// (dev evaluation during fine-tuning) stay f32, so they measure the weights as a
    /// default load of the saved checkpoint will run them. CPU only, and only where
    /// [`crate::layers::bf16::available`]; an error otherwise.
    pub fn set_training_precision(&mut self, precision: Precision) -> crate::error::Result<()> {
        if precision == Precision::Bf16 {
            self.check_bf16("training")?;
        }
        self.train_bf16 = precision == Precision::Bf16;
        Ok(())
    }

    /// Logs the bf16 kernel `what` (inference or training) will run on; an error off the
    /// CPU or where the CPU has neither AMX tiles nor AVX512-BF16.
    fn check_bf16(&self, what: &str) -> crate::error::Result<()> {
        if !self.device().is_cpu() {
            return Err(crate::error::Error::Setting(format!(
                "bf16 {what} runs on the CPU (AMX or AVX512-BF16); use --precision f32 on other devices"
            )));
        }
        let kernel = crate::layers::bf16::Kernel::fastest().ok_or_else(|| {
            crate::error::Error::Setting(format!(
                "bf16 {what} needs Intel AMX tiles or AVX512-BF16 (Xeon Cooper Lake or Sapphire \
                 Rapids, AMD Zen 4 or newer); this CPU or OS has neither: use --precision f32"
            ))
        })?;
        tracing::info!("teacher: bf16 {what} on {}", kernel.name());
        Ok(())
    }

    /// The arithmetic of differentiable passes ([`BertClassifier::set_training_precision`]).
    pub fn training_precision(&self) -> Precision {
        if self.train_bf16 {
            Precision::Bf16
        } else {
            Precision::F32
        }
    }

    /// Whether the encoder multiplies in bf16 ([`BertClassifier::pack_bf16`]).
    pub fn is_bf16(&self) -> bool {
        self.bf16
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn num_labels(&self) -> usize {
        self.num_labels
    }

    pub fn device(&self) -> &Device {
        self.classifier.weight().device()
    }

    /// Restarts the dropout stream from `seed`.
    pub fn seed_dropout(&self, seed: u64) {
        *self.lock_rng() = ChaCha8Rng::seed_from_u64(seed);
    }

    /// `n` seeds drawn from the dropout stream, one for each part of a batch that trains on
    /// its own thread ([`BertClassifier::forward_sparse_seeded`]).
    pub fn dropout_seeds(&self, n: usize) -> Vec<u64> {
        use rand::RngCore;
        let mut rng = self.lock_rng();
        (0..n).map(|_| rng.next_u64()).collect()
    }

    fn lock_rng(&self) -> std::sync::MutexGuard<'_, ChaCha8Rng> {
        // A panic elsewhere cannot leave an RNG in an invalid state.
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Last hidden state and pooler output for `ids` `(B, T)` u32 with `mask` `(B, T)`
    /// (1 for tokens, 0 for padding).
    pub fn encode(&self, ids: &Tensor, mask: &Tensor, mode: Mode) -> Result<BertOutput> {
        let mut rng = self.lock_rng();
        let mut ctx = Ctx::new(mode, &mut rng);
        ctx.bf16 = self.train_bf16 && mode.differentiable();
        let (last_hidden_state, pooler_output) =
            self.encode_with(ids, None, mask, &mut ctx, false)?;
        Ok(BertOutput {
            last_hidden_state,
            pooler_output,
        })
    }

    /// Classification logits `(B, C)` for single sentences: `ids` `(B, T)` with `mask`
    /// `(B, T)`, every token of type 0.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor, mode: Mode) -> Result<Tensor> {
        Ok(self.forward_with(ids, None, mask, mode, false, None)?.0)
    }

    /// Classification logits `(B, C)` with token type ids `(B, T)` u32 (`None`: all 0, as
    /// [`BertClassifier::forward`]); sentence pairs give their second text type 1.
    pub fn forward_typed(
        &self,
        ids: &Tensor,
        type_ids: Option<&Tensor>,
        mask: &Tensor,
        mode: Mode,
    ) -> Result<Tensor> {
        Ok(self.forward_with(ids, type_ids, mask, mode, false, None)?.0)
    }

    /// As [`BertClassifier::forward_typed`] in a differentiable mode, but the
    /// word-embedding gradient is left sparse: it lands on the returned [`WordRows`]
    /// instead of the table.
    pub fn forward_sparse(
        &self,
        ids: &Tensor,
        type_ids: Option<&Tensor>,
        mask: &Tensor,
        mode: Mode,
    ) -> Result<(Tensor, Option<WordRows>)> {
        self.forward_with(ids, type_ids, mask, mode, true, None)
    }

    /// As [`BertClassifier::forward_sparse`], with dropout drawn from `seed` instead of
    /// the shared stream: parts of a batch then run on several threads at once, each
    /// reproducible.
    pub fn forward_sparse_seeded(
        &self,
        ids: &Tensor,
        type_ids: Option<&Tensor>,
        mask: &Tensor,
        mode: Mode,
        seed: u64,
    ) -> Result<(Tensor, Option<WordRows>)> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        self.forward_with(ids, type_ids, mask, mode, true, Some(&mut rng))
    }

    fn forward_with(
        &self,
        ids: &Tensor,
        type_ids: Option<&Tensor>,
        mask: &Tensor,
        mode: Mode,
        sparse: bool,
        own_rng: Option<&mut ChaCha8Rng>,
    ) -> Result<(Tensor, Option<WordRows>)> {
        if self.bf16 && mode.differentiable() {
            return Err(crate::error::Error::Setting(
                "a bf16 teacher runs inference only (no gradients)".into(),
            ));
        }
        // Inference draws no dropout: it takes a throwaway RNG rather than the shared
        // one, so that batches can run concurrently.
        let mut local = ChaCha8Rng::seed_from_u64(0);
        let mut shared = (mode != Mode::Eval && own_rng.is_none()).then(|| self.lock_rng());
        let rng = match (own_rng, shared.as_deref_mut()) {
            (Some(rng), _) => rng,
            (None, Some(rng)) => rng,
            (None, None) => &mut local,
        };
        let mut ctx = Ctx::new(mode, rng);
        ctx.sparse_words = sparse;
        ctx.bf16 = self.train_bf16 && mode.differentiable();
        // Logits read only `[CLS]`; inference skips the rest of the last layer.
        let (_, pooled) = self.encode_with(ids, type_ids, mask, &mut ctx, mode == Mode::Eval)?;
        let pooled = self.dropout.forward(&pooled, &mut ctx)?;
        Ok((self.classifier.forward(&pooled)?, ctx.word_rows.take()))
    }

    /// The dense gradient of the word-embedding table from a sparse pass: `rows`' gradient
    /// scattered into zeros `(vocab, hidden)` (for checks; training uses it sparse).
    pub fn dense_word_grad(
        &self,
        rows: &WordRows,
        grads: &candle_core::backprop::GradStore,
    ) -> Result<Option<Tensor>> {
        let Some(g) = grads.get(rows.leaf.as_tensor()) else {
            return Ok(None);
        };
        let table = self.params.get(WORD_EMBEDDINGS)?;
        let index = Tensor::new(rows.rows.as_slice(), g.device())?;
        Ok(Some(table.zeros_like()?.index_add(&index, g, 0)?))
    }

    /// `tanh(hidden[:, 0] W_p + b_p)`.
    fn pool(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(self.pooler.forward(&hidden.i((.., 0))?)?.tanh()?)
    }

    /// The last hidden state `(B, T, H)` and the pooler output. With `cls_only` the last
    /// layer runs at `[CLS]` only ([`EncoderLayer::forward_first`]): the hidden state is
    /// `(B, 1, H)` and the pooler output the same, for about 14% less work.
    fn encode_with(
        &self,
        ids: &Tensor,
        type_ids: Option<&Tensor>,
        mask: &Tensor,
        ctx: &mut Ctx,
        cls_only: bool,
    ) -> Result<(Tensor, Tensor)> {
        let mask = additive_mask(&mask.to_dtype(DType::F32)?)?;
        let mut hidden = self.embeddings.forward(ids, type_ids, ctx)?;
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            hidden = if cls_only && i == last {
                layer.forward_first(&hidden, &mask, ctx)?
            } else {
                layer.forward(&hidden, &mask, ctx)?
            };
        }
        let pooled = self.pool(&hidden)?;
        Ok((hidden, pooled))
    }
}
