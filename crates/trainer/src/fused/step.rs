//! One training step of the fused engine: forward, loss, backward and the optimiser update.
//!
//! Dense Adam ([`SliceAdam`]) for every tensor but the embedding, whose rows are updated
//! lazily ([`RowAdam`], only the rows the batch touched; [`FusedTrainer::sync`] brings the
//! rest up to date before the table is read). The optimiser state is saved under the names
//! the candle engine uses (`m.<param>`, `v.<param>`, `step`, `lr`, `embedding.weight.*`), so a
//! run started on one engine resumes on the other.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use rand::RngCore;

use distill_student::StudentConfig;

use super::params::{Params, EMBEDDING};
use super::student::{FusedStudent, Gradients, StepBatch};
use crate::optim::{AdamConfig, SliceAdam};
use crate::row_adam::RowAdam;
use crate::{Loss, Result};

/// A student with its optimiser; see the module docs.
pub struct FusedTrainer {
    student: FusedStudent,
    adam: SliceAdam,
    rows: RowAdam,
    grads: Gradients,
    touched: Vec<u32>,
}

impl FusedTrainer {
    /// Starts from `tensors` with zero optimiser state.
    pub fn new(
        config: &StudentConfig,
        tensors: &HashMap<String, Tensor>,
        adam: AdamConfig,
    ) -> Result<Self> {
        let params = Params::from_tensors(config, tensors)?;
        Ok(Self {
            adam: SliceAdam::new(params.dense_sizes(), adam),
            rows: RowAdam::new(config.vocab_size, config.embedding_dim, adam),
            student: FusedStudent::new(config, params),
            grads: Gradients::default(),
            touched: Vec::new(),
        })
    }

    /// The student (parameters as of the last step; call [`Self::sync`] first to read the
    /// embedding).
    pub fn student(&self) -> &FusedStudent {
        &self.student
    }

    /// Current learning rate.
    pub fn lr(&self) -> f64 {
        self.adam.lr()
    }

    /// Sets the learning rate (the scheduler's job).
    pub fn set_lr(&mut self, lr: f64) {
        self.adam.set_lr(lr);
    }

    /// One step on `batch`; returns its loss. A non-finite loss is returned without
    /// touching any parameter (the caller stops the run).
    pub fn step(
        &mut self,
        loss: &Loss,
        batch: &StepBatch,
        dropout_rng: Option<&mut dyn RngCore>,
    ) -> Result<f64> {
        self.student.prepare(batch, dropout_rng)?;
        // The rows this batch touches are brought up to date (as the update would first do)
        // while the rest of the step computes their gradient: that replay does not depend
        // on the gradient, and the forward pass has already read the rows.
        self.touched.clear();
        self.touched.extend_from_slice(self.student.touched());
        let FusedStudent { config, params, ws } = &mut self.student;
        let (embedding, dense) = (&mut params.embedding, &params.dense);
        let (rows, touched, grads) = (&mut self.rows, &self.touched, &mut self.grads);
        let (caught_up, value) = rayon::join(
            || rows.catch_up_slice(embedding, touched),
            || ws.gradients(config, dense, loss, batch, grads),
        );
        caught_up?;
        let value = value?;
        if !value.is_finite() {
            return Ok(value);
        }
        let params = &mut self.student.params;
        self.adam.step(
            params
                .dense
                .iter_mut()
                .zip(&self.grads.dense)
                .map(|(p, g)| (p.as_mut_slice(), g.as_slice())),
        )?;
        self.rows.step_slice(
            &mut params.embedding,
            self.adam.lr(),
            &self.grads.rows,
            &self.grads.row_grads,
        )?;
        Ok(value)
    }

    /// Brings every embedding row up to date.
    pub fn sync(&mut self) -> Result<()> {
        Ok(self.rows.sync_slice(&mut self.student.params.embedding)?)
    }

    /// The parameters as tensors (after [`Self::sync`]).
    pub fn tensors(&self, device: &Device) -> Result<HashMap<String, Tensor>> {
        self.student
            .params
            .to_tensors(self.student.config(), device)
    }

    /// The optimiser state, as the candle engine saves it.
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut state = self.adam.state()?;
        state.extend(self.rows.state(EMBEDDING)?);
        Ok(state)
    }

    /// Restores [`Self::state`] (or the candle engine's).
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> candle_core::Result<()> {
        self.adam.load_state(state)?;
        self.rows.load_state(EMBEDDING, state)
    }
}
