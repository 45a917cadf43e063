//! One training step of the fused engine: forward, loss, backward and the optimiser update.
//!
//! Dense Adam ([`SliceAdam`]) for every tensor but the embedding, whose rows are updated
//! lazily ([`RowAdam`], only the rows the batch touched; [`FusedTrainer::sync`] brings the
//! rest up to date before the table is read). With a second thread (a [`Partner`], made
//! when rayon has more than one), the directions of each layer, the embedding rows' catch-up
//! and the dense update each run in two halves, with the same result as one thread.
//!
//! The optimiser state is saved under the names the candle engine uses (`m.<param>`,
//! `v.<param>`, `step`, `lr`, `embedding.weight.*`), so a run started on one engine resumes
//! on the other.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use rand::RngCore;

use distill_student::StudentConfig;

use super::params::{Params, EMBEDDING};
use super::partner::Partner;
use super::student::{FusedStudent, Gradients, StepBatch};
use crate::optim::{AdamConfig, SliceAdam};
use crate::row_adam::RowAdam;
use crate::{Error, Loss, Result};

/// A student with its optimiser; see the module docs.
pub struct FusedTrainer {
    student: FusedStudent,
    adam: SliceAdam,
    rows: RowAdam,
    grads: Gradients,
    touched: Vec<u32>,
    /// The second thread of the step's forks (none when rayon is given one thread).
    partner: Option<Partner>,
}

/// Below this many values, the dense update stays on one thread (a fork costs a few
/// microseconds; the `original` student's update takes about as long).
const SPLIT_MIN: usize = 1 << 13;

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
            partner: if rayon::current_num_threads() > 1 {
                Some(Partner::new().map_err(|e| {
                    Error::Config(format!(
                        "cannot start the training step's second thread: {e}"
                    ))
                })?)
            } else {
                None
            },
        })
    }

    /// The student (parameters as of the last step; call [`Self::sync`] first to read the
    /// embedding).
    pub fn student(&self) -> &FusedStudent {
        &self.student
    }

    /// Threads a step runs on: two when the trainer was made where rayon has more than
    /// one (the second is the [`Partner`]), else one.
    pub fn threads(&self) -> usize {
        1 + usize::from(self.partner.is_some())
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
        // now, in two halves: the forward pass has already read them (`prepare`), and the
        // replay does not depend on the gradient.
        self.touched.clear();
        self.touched.extend_from_slice(self.student.touched());
        let FusedStudent { config, params, ws } = &mut self.student;
        let (embedding, dense) = (&mut params.embedding, &params.dense);
        let (rows, touched, grads) = (&mut self.rows, &self.touched, &mut self.grads);
        match self.partner.as_mut() {
            // Replaying idle rows costs more than a fork even for the `original` student.
            Some(partner) => rows.catch_up_slice_in_two(embedding, touched, |a, b| {
                partner.join(a, b);
            })?,
            None => rows.catch_up_slice(embedding, touched)?,
        }
        let value = ws.gradients(config, dense, loss, batch, grads, self.partner.as_mut())?;
        if !value.is_finite() {
            return Ok(value);
        }
        let params = &mut self.student.params;
        let dense_size: usize = params.dense.iter().map(Vec::len).sum();
        let dense = params
            .dense
            .iter_mut()
            .zip(&self.grads.dense)
            .map(|(p, g)| (p.as_mut_slice(), g.as_slice()));
        match self.partner.as_mut() {
            Some(partner) if dense_size >= SPLIT_MIN => self.adam.step_in_two(dense, |a, b| {
                partner.join(a, b);
            })?,
            _ => self.adam.step(dense)?,
        }
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
