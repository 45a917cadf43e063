//! Which implementation runs a training step: the fused step ([`crate::fused`], CPU) or a
//! candle tensor graph (any device), behind one [`Stepper`] the training loop drives.
//!
//! Both take the same batches, dropout draws and optimiser (Adam on the dense tensors, lazy
//! rows on a CPU embedding), and save the same checkpoint; they differ by float rounding
//! only, so a run may resume on the other engine.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use candle_core::{Device, Tensor, Var};
use distill_student::{BiLstmClassifier, StudentConfig};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::encoded::SetBatch;
use crate::fused::{FusedTrainer, StepBatch};
use crate::optim::{Adam, AdamConfig};
use crate::row_adam::{row_gradients, RowAdam};
use crate::{Error, Loss, Result};

/// The training step's implementation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// Fused on the CPU, candle elsewhere.
    #[default]
    Auto,
    /// The hand-written step (CPU only).
    Fused,
    /// The candle tensor graph (the reference; any device).
    Candle,
}

impl Engine {
    /// The engine that runs on `device`: `Auto` resolved; `Fused` refused off the CPU.
    pub fn resolve(self, device: &Device) -> Result<Engine> {
        match (self, device.is_cpu()) {
            (Engine::Auto, true) | (Engine::Fused, true) => Ok(Engine::Fused),
            (Engine::Auto, false) | (Engine::Candle, _) => Ok(Engine::Candle),
            (Engine::Fused, false) => Err(Error::Config(format!(
                "the fused engine runs on the CPU, not on {device:?}; use --engine candle"
            ))),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Auto => "auto",
            Engine::Fused => "fused",
            Engine::Candle => "candle",
        })
    }
}

impl FromStr for Engine {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Engine::Auto),
            "fused" => Ok(Engine::Fused),
            "candle" => Ok(Engine::Candle),
            other => Err(format!(
                "unknown engine `{other}` (known: auto, fused, candle)"
            )),
        }
    }
}

/// The name of the embedding table, which [`RowAdam`] updates on CPU.
pub(crate) const EMBEDDING: &str = "embedding.weight";

/// A student with its optimiser, stepped by one engine.
pub(crate) enum Stepper {
    Candle(Box<CandleStepper>),
    Fused(Box<FusedTrainer>),
}

/// The candle engine's state: variables, the model over them and the optimisers.
pub(crate) struct CandleStepper {
    model: BiLstmClassifier,
    embedding: Tensor,
    adam: Adam,
    /// The embedding's optimiser on CPU; elsewhere the embedding is one of `adam`'s variables.
    rows: Option<RowAdam>,
    device: Device,
}

impl Stepper {
    /// `engine` (resolved) over `initial` parameters, with zero optimiser state.
    pub fn new(
        engine: Engine,
        student: &StudentConfig,
        initial: &HashMap<String, Tensor>,
        adam: AdamConfig,
        device: &Device,
    ) -> Result<Self> {
        if engine.resolve(device)? == Engine::Fused {
            return Ok(Stepper::Fused(Box::new(FusedTrainer::new(
                student, initial, adam,
            )?)));
        }
        let sparse = device.is_cpu();
        let mut tensors = HashMap::new();
        let mut vars = Vec::new();
        for (name, _) in BiLstmClassifier::parameter_shapes(student) {
            let t = initial
                .get(&name)
                .ok_or_else(|| Error::Config(format!("missing parameter {name}")))?
                .to_device(device)?;
            if sparse && name == EMBEDDING {
                // A private copy: updated in place by RowAdam.
                tensors.insert(name, t.copy()?);
            } else {
                let var = Var::from_tensor(&t)?;
                tensors.insert(name.clone(), var.as_tensor().clone());
                vars.push((name, var));
            }
        }
        Ok(Stepper::Candle(Box::new(CandleStepper {
            model: BiLstmClassifier::from_tensors(student, &tensors)?,
            embedding: tensors[EMBEDDING].clone(),
            adam: Adam::new(vars, adam),
            rows: sparse.then(|| RowAdam::new(student.vocab_size, student.embedding_dim, adam)),
            device: device.clone(),
        })))
    }

    /// Restores the optimiser state of a checkpoint (written by either engine).
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> candle_core::Result<()> {
        match self {
            Stepper::Fused(f) => f.load_state(state),
            Stepper::Candle(c) => {
                c.adam.load_state(state)?;
                if let Some(rows) = c.rows.as_mut() {
                    rows.load_state(EMBEDDING, state)?;
                }
                Ok(())
            }
        }
    }

    /// The optimiser state, for a checkpoint.
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        match self {
            Stepper::Fused(f) => f.state(),
            Stepper::Candle(c) => {
                let mut state = c.adam.state()?;
                if let Some(rows) = &c.rows {
                    state.extend(rows.state(EMBEDDING)?);
                }
                Ok(state)
            }
        }
    }

    /// Current learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            Stepper::Fused(f) => f.lr(),
            Stepper::Candle(c) => c.adam.lr(),
        }
    }

    /// Sets the learning rate.
    pub fn set_lr(&mut self, lr: f64) {
        match self {
            Stepper::Fused(f) => f.set_lr(lr),
            Stepper::Candle(c) => c.adam.set_lr(lr),
        }
    }

    /// One optimisation step on `batch` (labels and teacher rows of its examples, in order);
    /// returns the batch loss. A non-finite loss leaves every parameter as it was.
    pub fn step(
        &mut self,
        loss: &Loss,
        batch: &SetBatch,
        labels: &[Option<u32>],
        teacher: Option<&[f32]>,
        dropout_rng: &mut dyn RngCore,
    ) -> Result<f64> {
        match self {
            Stepper::Fused(f) => {
                let b = StepBatch {
                    ids: &batch.ids,
                    lengths: &batch.lengths,
                    time: batch.time,
                    pair: batch.pair,
                    labels,
                    teacher,
                };
                f.step(loss, &b, Some(dropout_rng))
            }
            Stepper::Candle(c) => c.step(loss, batch, labels, teacher, dropout_rng),
        }
    }

    /// Brings lazily updated parameters up to date (before evaluating or saving).
    pub fn sync(&mut self) -> Result<()> {
        match self {
            Stepper::Fused(f) => f.sync()?,
            Stepper::Candle(c) => {
                if let Some(rows) = c.rows.as_mut() {
                    rows.sync(&c.embedding)?;
                }
            }
        }
        Ok(())
    }

    /// The model over the current parameters, for evaluation (after [`Self::sync`]).
    pub fn model(&self, student: &StudentConfig) -> Result<BiLstmClassifier> {
        match self {
            Stepper::Fused(f) => Ok(BiLstmClassifier::from_tensors(
                student,
                &f.tensors(&Device::Cpu)?,
            )?),
            Stepper::Candle(c) => Ok(c.model.clone()),
        }
    }
}

impl CandleStepper {
    fn step(
        &mut self,
        loss: &Loss,
        batch: &SetBatch,
        labels: &[Option<u32>],
        teacher: Option<&[f32]>,
        dropout_rng: &mut dyn RngCore,
    ) -> Result<f64> {
        let device = &self.device;
        let model = &self.model;
        let ids = Tensor::from_vec(batch.ids.clone(), (batch.rows(), batch.time), device)?;
        let teacher = match teacher {
            Some(t) => Some(Tensor::from_slice(
                t,
                (labels.len(), t.len() / labels.len().max(1)),
                device,
            )?),
            None => None,
        };
        // The embedding rows enter as a leaf, so their gradient comes back per position
        // `(B, T, E)` rather than as a dense `(V, E)` table (see `row_adam`).
        let x = match self.rows {
            Some(_) => Var::from_tensor(&model.embed(&ids)?)?.as_tensor().clone(),
            None => model.embed(&ids)?,
        };
        // A pair batch stacks both texts, so one embedding leaf serves them both.
        let logits = if batch.pair {
            model.forward_embedded_pair(&x, &batch.lengths, Some(dropout_rng))?
        } else {
            model.forward_embedded(&x, &batch.lengths, Some(dropout_rng))?
        };
        let loss = loss.compute(&logits, labels, teacher.as_ref())?;
        // Checked before the update: a NaN step would poison every weight it touches.
        let l = loss.to_scalar::<f32>()? as f64;
        if !l.is_finite() {
            return Ok(l);
        }
        let grads = loss.backward()?;
        self.adam.step(&grads)?;
        if let Some(rows) = self.rows.as_mut() {
            let gx = match grads.get(&x) {
                Some(g) => g.flatten_all()?.to_vec1::<f32>()?,
                None => vec![0.0; x.elem_count()],
            };
            let dim = self.embedding.dim(1)?;
            let (ids_touched, g) = row_gradients(&batch.ids, &batch.lengths, batch.time, &gx, dim);
            rows.step(&self.embedding, self.adam.lr(), &ids_touched, &g)?;
        }
        Ok(l)
    }
}
