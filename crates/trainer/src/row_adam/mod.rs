//! Adam for the student's embedding table, updated lazily: a row moves only when a batch
//! touches it, with the skipped zero-gradient steps replayed when it does (see
//! [`distill_ops::lazy`], where the rule and its exactness argument live). This module is
//! the candle side: the update runs in place on the table tensor's storage, and the state is
//! saved and restored under checkpoint names.

use std::collections::HashMap;

use candle_core::{Result, Tensor};
use distill_ops::host;
use distill_ops::lazy::LazyRows;

use crate::optim::AdamConfig;

pub use distill_ops::lazy::{row_gradients, EXACT_STEPS};

/// Lazily updated Adam state of a `[rows, dim]` table.
pub struct RowAdam {
    rows: LazyRows,
}

impl RowAdam {
    /// Zero moments for a table of `rows × dim`.
    pub fn new(rows: usize, dim: usize, config: AdamConfig) -> Self {
        Self {
            rows: LazyRows::new(rows, dim, config.rule(), false),
        }
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.rows.steps()
    }

    /// One step at learning rate `lr`: `grads` holds one `dim`-row per entry of `rows`
    /// (distinct row ids); every other row has zero gradient.
    pub fn step(&mut self, table: &Tensor, lr: f64, rows: &[u32], grads: &[f32]) -> Result<()> {
        host::in_place(table, "row-adam", |t| {
            Ok(self.rows.step(t, lr, rows, grads)?)
        })
    }

    /// Brings every row up to date (before reading or saving the table).
    pub fn sync(&mut self, table: &Tensor) -> Result<()> {
        host::in_place(table, "row-adam", |t| Ok(self.rows.sync(t)?))
    }

    /// [`RowAdam::step`] on a table held as a plain row-major slice (the fused engine's).
    pub fn step_slice(
        &mut self,
        table: &mut [f32],
        lr: f64,
        rows: &[u32],
        grads: &[f32],
    ) -> std::result::Result<(), distill_ops::Error> {
        self.rows.step(table, lr, rows, grads)
    }

    /// [`RowAdam::sync`] on a table held as a plain row-major slice.
    pub fn sync_slice(&mut self, table: &mut [f32]) -> std::result::Result<(), distill_ops::Error> {
        self.rows.sync(table)
    }

    /// Brings `rows` up to date with the steps taken so far, as the next step would before
    /// applying its gradient: the fused engine does this while the step computes that
    /// gradient (the result is the same).
    pub fn catch_up_slice(
        &mut self,
        table: &mut [f32],
        rows: &[u32],
    ) -> std::result::Result<(), distill_ops::Error> {
        self.rows.catch_up_rows(table, rows)
    }

    /// [`RowAdam::catch_up_slice`] in two halves of about equal work, which `run` calls
    /// (on two threads, say).
    pub fn catch_up_slice_in_two(
        &mut self,
        table: &mut [f32],
        rows: &[u32],
        run: impl FnOnce(&mut (dyn FnMut() + Send), &mut (dyn FnMut() + Send)),
    ) -> std::result::Result<(), distill_ops::Error> {
        self.rows.catch_up_rows_in_two(table, rows, run)
    }

    /// Moments, row clocks and learning-rate history, for a checkpoint.
    pub fn state(&self, prefix: &str) -> Result<HashMap<String, Tensor>> {
        let dev = candle_core::Device::Cpu;
        let (m, v) = self.rows.moments();
        let last: Vec<i64> = self.rows.row_steps().iter().map(|&x| x as i64).collect();
        let lrs = self.rows.learning_rates();
        Ok(HashMap::from([
            (format!("{prefix}.m"), Tensor::from_slice(m, m.len(), &dev)?),
            (format!("{prefix}.v"), Tensor::from_slice(v, v.len(), &dev)?),
            (
                format!("{prefix}.last"),
                Tensor::from_vec(last.clone(), last.len(), &dev)?,
            ),
            (
                format!("{prefix}.lrs"),
                Tensor::from_slice(lrs, lrs.len(), &dev)?,
            ),
        ]))
    }

    /// Restores [`RowAdam::state`].
    pub fn load_state(&mut self, prefix: &str, state: &HashMap<String, Tensor>) -> Result<()> {
        let get = |k: &str| {
            state.get(&format!("{prefix}.{k}")).ok_or_else(|| {
                candle_core::Error::Msg(format!("optimizer state lacks `{prefix}.{k}`"))
            })
        };
        let m = get("m")?.to_vec1::<f32>()?;
        let v = get("v")?.to_vec1::<f32>()?;
        let last = get("last")?.to_vec1::<i64>()?;
        let lrs = get("lrs")?.to_vec1::<f64>()?;
        let last = last.into_iter().map(|x| x.max(0) as u64).collect();
        self.rows
            .restore(m, v, last, lrs)
            .map_err(|e| candle_core::Error::Msg(format!("optimizer state for `{prefix}`: {e}")))
    }
}
