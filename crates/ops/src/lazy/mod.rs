//! AdamW for a `(rows, dim)` table whose gradient touches a few rows per step, updated
//! lazily: the rule of [`crate::adamw`], with each row brought up to date only when it is
//! touched (or at [`LazyRows::sync`], before the table is read or saved).
//!
//! Dense AdamW moves every row every step, also rows whose gradient is zero (momentum and
//! decay keep them moving). Over the student's 160k-entry table that pass cost more than the
//! rest of a training step. Here the skipped zero-gradient steps of a row are replayed one by
//! one for the first [`EXACT_STEPS`], exactly as dense AdamW takes them (same f32 operations,
//! so bit for bit); beyond that the moments decay in closed form (`m·β₁ᵏ`, `v·β₂ᵏ`), the
//! weight decay in closed form (`p·Πₛ(1 − lrₛ·λ)`), and the momentum's movement is left out:
//! it is below `Σ_{j≥200} lr·3.2·0.9005ʲ < 1e-10`, far under f32 resolution of weights of
//! order 1. The tests compare the table with dense AdamW's. Within the window, a replay stops
//! moving a row's weights once no remaining step can change them (`replay`, bit for bit).

use std::collections::HashMap;

use rayon::prelude::*;

use crate::adamw::{AdamWConfig, StepRule};
use crate::error::{check_len, Error, Result};

mod replay;

/// Skipped steps replayed exactly when a row catches up.
pub const EXACT_STEPS: u64 = 200;

/// Lazily updated AdamW state of a `(rows, dim)` table.
#[derive(Debug, Clone)]
pub struct LazyRows {
    config: AdamWConfig,
    decay: bool,
    dim: usize,
    m: Vec<f32>,
    v: Vec<f32>,
    /// Step each row is up to date with.
    last: Vec<u64>,
    /// Learning rate of each step taken (index `t − 1`), for replaying.
    lrs: Vec<f64>,
    /// The rule of each step taken (from `lrs`): building it anew for every replayed step
    /// of every row (two `powi`) took longer than the replay itself.
    rules: Vec<StepRule>,
}

impl LazyRows {
    /// Zero moments for a table of `rows × dim`, decayed (`decay`) or exempt.
    pub fn new(rows: usize, dim: usize, config: AdamWConfig, decay: bool) -> Self {
        Self {
            config,
            decay,
            dim,
            m: vec![0.0; rows * dim],
            v: vec![0.0; rows * dim],
            last: vec![0; rows],
            lrs: Vec::new(),
            rules: Vec::new(),
        }
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.lrs.len() as u64
    }

    /// One step at learning rate `lr` on `table` (`rows × dim`): `grads` holds one
    /// `dim`-row per entry of `rows` (distinct row ids, any order); every other row has
    /// zero gradient. After an error other than a size error, the state is not usable.
    pub fn step(&mut self, table: &mut [f32], lr: f64, rows: &[u32], grads: &[f32]) -> Result<()> {
        let d = self.dim;
        check_len("table", self.m.len(), table.len())?;
        check_len("row gradients", rows.len() * d, grads.len())?;
        if let Some(&row) = rows.iter().find(|&&r| r as usize >= self.last.len()) {
            return Err(Error::RowOutOfRange {
                row,
                rows: self.last.len(),
            });
        }
        self.lrs.push(lr);
        let t = self.steps();
        let rule = StepRule::new(&self.config, t, lr, self.decay);
        self.rules.push(rule);
        for (k, &row) in rows.iter().enumerate() {
            let r = row as usize;
            if self.last[r] == t {
                return Err(Error::RowRepeated { row });
            }
            let p = &mut table[r * d..(r + 1) * d];
            self.catch_up(p, r, t - 1);
            let (m, v) = (
                &mut self.m[r * d..(r + 1) * d],
                &mut self.v[r * d..(r + 1) * d],
            );
            rule.serial(p, m, v, Some(&grads[k * d..(k + 1) * d]));
            self.last[r] = t;
        }
        Ok(())
    }

    /// Brings every row of `table` up to date (rows are independent: blocks of them on
    /// every core).
    pub fn sync(&mut self, table: &mut [f32]) -> Result<()> {
        check_len("table", self.m.len(), table.len())?;
        let (t, d) = (self.steps(), self.dim.max(1));
        let block = 256;
        let (replayer, m, v, last) = self.split_state();
        table
            .par_chunks_mut(block * d)
            .zip(m.par_chunks_mut(block * d))
            .zip(v.par_chunks_mut(block * d))
            .zip(last.par_chunks_mut(block))
            .for_each(|(((p, m), v), last)| {
                for (r, last) in last.iter_mut().enumerate() {
                    let row = r * d..(r + 1) * d;
                    replayer.catch_up(
                        &mut p[row.clone()],
                        &mut m[row.clone()],
                        &mut v[row],
                        last,
                        t,
                    );
                }
            });
        Ok(())
    }

    /// Brings `rows` (distinct or not, any order) up to date with the steps taken so far,
    /// as the next [`LazyRows::step`] would before applying its gradient to them. A caller
    /// may do this while it computes that gradient; the result is the same.
    pub fn catch_up_rows(&mut self, table: &mut [f32], rows: &[u32]) -> Result<()> {
        self.check_rows(table, rows)?;
        let (t, d) = (self.steps(), self.dim);
        for &row in rows {
            let r = row as usize;
            self.catch_up(&mut table[r * d..(r + 1) * d], r, t);
        }
        Ok(())
    }

    /// [`LazyRows::catch_up_rows`] as two independent halves of about the same work, for
    /// two threads: `rows` (distinct) are split at a row id such that each half replays
    /// about as many steps, and `run` is given the two halves to call (it may call them
    /// one after the other). Same result as [`LazyRows::catch_up_rows`], repeated rows
    /// included.
    pub fn catch_up_rows_in_two(
        &mut self,
        table: &mut [f32],
        rows: &[u32],
        run: impl FnOnce(&mut (dyn FnMut() + Send), &mut (dyn FnMut() + Send)),
    ) -> Result<()> {
        self.check_rows(table, rows)?;
        let (t, d) = (self.steps(), self.dim);
        let mut sorted = rows.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        // A row's work is the steps it replays one by one (the rest is closed form).
        let work = |r: u32| t.saturating_sub(self.last[r as usize]).min(EXACT_STEPS) + 1;
        let total: u64 = sorted.iter().map(|&r| work(r)).sum();
        let mut acc = 0;
        let half = sorted
            .iter()
            .position(|&r| {
                acc += work(r);
                2 * acc >= total
            })
            .map_or(sorted.len(), |i| i + 1);
        let (low, high) = sorted.split_at(half);
        let split = high.first().map_or(self.last.len(), |&r| r as usize);
        let (replayer, m, v, last) = self.split_state();
        let (p_low, p_high) = table.split_at_mut(split * d);
        let (m_low, m_high) = m.split_at_mut(split * d);
        let (v_low, v_high) = v.split_at_mut(split * d);
        let (last_low, last_high) = last.split_at_mut(split);
        // `rows` of a part of the table whose first row is `base`.
        let replay = |rows: &[u32],
                      base: usize,
                      p: &mut [f32],
                      m: &mut [f32],
                      v: &mut [f32],
                      last: &mut [u64]| {
            for &r in rows {
                let r = r as usize - base;
                let row = r * d..(r + 1) * d;
                let (p, m, v) = (&mut p[row.clone()], &mut m[row.clone()], &mut v[row]);
                replayer.catch_up(p, m, v, &mut last[r], t);
            }
        };
        run(
            &mut || replay(low, 0, p_low, m_low, v_low, last_low),
            &mut || replay(high, split, p_high, m_high, v_high, last_high),
        );
        Ok(())
    }

    /// `table` has this state's shape and every row is in it.
    fn check_rows(&self, table: &[f32], rows: &[u32]) -> Result<()> {
        check_len("table", self.m.len(), table.len())?;
        match rows.iter().find(|&&r| r as usize >= self.last.len()) {
            Some(&row) => Err(Error::RowOutOfRange {
                row,
                rows: self.last.len(),
            }),
            None => Ok(()),
        }
    }

    /// The replay rule and the per-row moments and clocks, borrowed apart so that disjoint
    /// rows can be replayed at once.
    fn split_state(&mut self) -> (Replayer<'_>, &mut [f32], &mut [f32], &mut [u64]) {
        let Self {
            config,
            decay,
            m,
            v,
            last,
            lrs,
            rules,
            ..
        } = self;
        let replayer = Replayer {
            config,
            decay: *decay,
            lrs,
            rules,
        };
        (replayer, m, v, last)
    }

    /// Replays zero-gradient steps for `row` (its weights `p`) up to step `target`.
    fn catch_up(&mut self, p: &mut [f32], row: usize, target: u64) {
        let d = self.dim;
        let replayer = Replayer {
            config: &self.config,
            decay: self.decay,
            lrs: &self.lrs,
            rules: &self.rules,
        };
        replayer.catch_up(
            p,
            &mut self.m[row * d..(row + 1) * d],
            &mut self.v[row * d..(row + 1) * d],
            &mut self.last[row],
            target,
        );
    }

    /// The moments `(m, v)`, each `rows × dim`.
    pub fn moments(&self) -> (&[f32], &[f32]) {
        (&self.m, &self.v)
    }

    /// The step each row is up to date with.
    pub fn row_steps(&self) -> &[u64] {
        &self.last
    }

    /// The learning rate of each step taken.
    pub fn learning_rates(&self) -> &[f64] {
        &self.lrs
    }

    /// Puts back what [`LazyRows::moments`], [`LazyRows::row_steps`] and
    /// [`LazyRows::learning_rates`] gave (for resuming from a checkpoint).
    pub fn restore(
        &mut self,
        m: Vec<f32>,
        v: Vec<f32>,
        last: Vec<u64>,
        lrs: Vec<f64>,
    ) -> Result<()> {
        check_len("first moment", self.m.len(), m.len())?;
        check_len("second moment", self.v.len(), v.len())?;
        check_len("row steps", self.last.len(), last.len())?;
        let steps = lrs.len() as u64;
        if let Some(&row_step) = last.iter().find(|&&s| s > steps) {
            return Err(Error::StateAhead { row_step, steps });
        }
        self.rules = (1..=steps)
            .map(|t| StepRule::new(&self.config, t, lrs[t as usize - 1], self.decay))
            .collect();
        (self.m, self.v, self.last, self.lrs) = (m, v, last, lrs);
        Ok(())
    }
}

/// What replaying a row needs of the table's state (so that rows can replay in parallel).
struct Replayer<'a> {
    config: &'a AdamWConfig,
    decay: bool,
    lrs: &'a [f64],
    rules: &'a [StepRule],
}

impl Replayer<'_> {
    /// Replays the zero-gradient steps of one row from its clock `last` up to `target`.
    fn catch_up(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], last: &mut u64, target: u64) {
        let from = *last;
        if from >= target {
            return;
        }
        let exact_end = target.min(from + EXACT_STEPS);
        replay::replay(p, m, v, &self.rules[from as usize..exact_end as usize]);
        if target > exact_end {
            let k = (target - exact_end).min(i32::MAX as u64) as i32;
            let (d1, d2) = (
                self.config.beta1.powi(k) as f32,
                self.config.beta2.powi(k) as f32,
            );
            m.iter_mut().for_each(|x| *x *= d1);
            v.iter_mut().for_each(|x| *x *= d2);
            if self.decay && self.config.weight_decay != 0.0 {
                let shrink: f64 = self.lrs[exact_end as usize..target as usize]
                    .iter()
                    .map(|lr| 1.0 - lr * self.config.weight_decay)
                    .product();
                let shrink = shrink as f32;
                p.iter_mut().for_each(|x| *x *= shrink);
            }
        }
        *last = target;
    }
}

/// Sums the gradient of embedded inputs `(B, T, E)` into one row per distinct id, skipping
/// padding positions (`t ≥ lengths[b]`). Returns `(rows, grads)` for [`LazyRows::step`]:
/// the rows in order of first appearance, each with its summed gradient. `ids` is `(B, T)`
/// and `grad_x` `(B, T, dim)`, `B = lengths.len()`, `T = time` (it panics if shorter).
pub fn row_gradients(
    ids: &[u32],
    lengths: &[usize],
    time: usize,
    grad_x: &[f32],
    dim: usize,
) -> (Vec<u32>, Vec<f32>) {
    let mut slot: HashMap<u32, usize> = HashMap::new();
    let mut rows = Vec::new();
    let mut grads: Vec<f32> = Vec::new();
    for (b, &len) in lengths.iter().enumerate() {
        for t in 0..len.min(time) {
            let pos = b * time + t;
            let id = ids[pos];
            let k = *slot.entry(id).or_insert_with(|| {
                rows.push(id);
                grads.extend(std::iter::repeat_n(0.0, dim));
                rows.len() - 1
            });
            let g = &grad_x[pos * dim..(pos + 1) * dim];
            grads[k * dim..(k + 1) * dim]
                .iter_mut()
                .zip(g)
                .for_each(|(a, b)| *a += b);
        }
    }
    (rows, grads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// 400 steps touching a few rows each, Zipf-like (row 0 often, high rows rarely), so
    /// rows sit idle both shorter and longer than the exactly replayed window; the dense
    /// kernel takes the same steps with the zero rows written out. Returns both tables.
    fn lazy_and_dense(config: AdamWConfig, decay: bool) -> (Vec<f32>, Vec<f32>) {
        let (rows, dim) = (50usize, 4usize);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let init: Vec<f32> = (0..rows * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let (mut dense, mut table) = (init.clone(), init);
        let (mut m, mut v) = (vec![0f32; rows * dim], vec![0f32; rows * dim]);
        let mut lazy = LazyRows::new(rows, dim, config, decay);
        for step in 0..400 {
            let lr = 0.01 * 0.99f64.powi(step / 50);
            let mut touched: Vec<u32> = (0..3)
                .map(|_| (rng.gen_range(0.0f64..1.0).powi(4) * rows as f64) as u32)
                .collect();
            touched.sort_unstable();
            touched.dedup();
            let mut g_dense = vec![0.0f32; rows * dim];
            let mut g_rows = Vec::new();
            for &r in &touched {
                for i in 0..dim {
                    let g: f32 = rng.gen_range(-1.0..1.0);
                    g_dense[r as usize * dim + i] = g;
                    g_rows.push(g);
                }
            }
            StepRule::new(&config, step as u64 + 1, lr, decay)
                .dense(&mut dense, &mut m, &mut v, &g_dense)
                .unwrap();
            lazy.step(&mut table, lr, &touched, &g_rows).unwrap();
        }
        lazy.sync(&mut table).unwrap();
        (table, dense)
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn lazy_rows_equal_dense_adam() {
        let (lazy, dense) = lazy_and_dense(AdamWConfig::default(), false);
        let diff = max_diff(&lazy, &dense);
        assert!(diff < 1e-6, "lazy and dense Adam differ by {diff}");
    }

    /// With decay the long-idle rows shrink by one product instead of 200+ rounded f32
    /// multiplications, so the two differ by rounding (≈ √steps · 6e-8 for weights ≤ 1).
    #[test]
    fn lazy_rows_equal_dense_adamw_with_weight_decay() {
        let config = AdamWConfig {
            weight_decay: 0.1,
            ..AdamWConfig::default()
        };
        let (lazy, dense) = lazy_and_dense(config, true);
        let diff = max_diff(&lazy, &dense);
        assert!(diff < 2e-6, "lazy and dense AdamW differ by {diff}");
        // The decay really acts: the exempt table ends elsewhere.
        let (exempt, _) = lazy_and_dense(config, false);
        let moved = max_diff(&lazy, &exempt);
        assert!(moved > 1e-3, "decay moved the table by only {moved}");
    }

    #[test]
    fn replay_is_exact_within_the_window() {
        // One row touched at step 1, then idle for 30 steps: bit for bit the dense steps.
        let config = AdamWConfig {
            weight_decay: 0.01,
            ..AdamWConfig::default()
        };
        let (mut p, mut m, mut v) = (vec![0.5f32, -0.25], vec![0f32; 2], vec![0f32; 2]);
        let mut table = p.clone();
        let mut lazy = LazyRows::new(1, 2, config, true);
        let g = [0.3f32, -0.7];
        for t in 1..=31u64 {
            let grad = if t == 1 { g } else { [0.0; 2] };
            StepRule::new(&config, t, 0.01, true)
                .dense(&mut p, &mut m, &mut v, &grad)
                .unwrap();
            let rows: &[u32] = if t == 1 { &[0] } else { &[] };
            let grads: &[f32] = if t == 1 { &g } else { &[] };
            lazy.step(&mut table, 0.01, rows, grads).unwrap();
        }
        lazy.sync(&mut table).unwrap();
        assert_eq!(table, p);
        assert_eq!(lazy.moments(), (&m[..], &v[..]));
    }

    /// For step `step` touching `touched` (made distinct and sorted): a random gradient row
    /// per touched row, and a decaying learning rate.
    fn step_inputs(
        touched: &mut Vec<u32>,
        dim: usize,
        step: i32,
        rng: &mut impl Rng,
    ) -> (Vec<f32>, f64) {
        touched.sort_unstable();
        touched.dedup();
        let g = (0..touched.len() * dim)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        (g, 1e-2 * 0.9f64.powi(step / 100))
    }

    /// Catching the rows a step touches up before the step (as the fused trainer does while
    /// it computes their gradient) gives the same table, moments and clocks.
    #[test]
    fn catching_up_first_changes_nothing() {
        let (rows, dim) = (40usize, 16usize);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let init: Vec<f32> = (0..rows * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let (mut a, mut b) = (init.clone(), init);
        let config = AdamWConfig {
            weight_decay: 0.0,
            ..AdamWConfig::default()
        };
        let mut plain = LazyRows::new(rows, dim, config, false);
        let mut early = LazyRows::new(rows, dim, config, false);
        for step in 0..600 {
            let mut touched: Vec<u32> = (0..4)
                .map(|_| (rng.gen_range(0.0f64..1.0).powi(3) * rows as f64) as u32)
                .collect();
            let (g, lr) = step_inputs(&mut touched, dim, step, &mut rng);
            plain.step(&mut a, lr, &touched, &g).unwrap();
            early.catch_up_rows(&mut b, &touched).unwrap();
            early.step(&mut b, lr, &touched, &g).unwrap();
        }
        plain.sync(&mut a).unwrap();
        early.sync(&mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(plain.moments(), early.moments());
        assert_eq!(plain.row_steps(), early.row_steps());
        assert_eq!(
            early.catch_up_rows(&mut b, &[40]),
            Err(Error::RowOutOfRange { row: 40, rows: 40 })
        );
    }

    /// The two halves of a catch-up, run in either order, give what one pass gives, bit
    /// for bit, also for unsorted rows with repeats.
    #[test]
    fn catching_up_in_two_halves_equals_one_pass() {
        let (rows, dim) = (60usize, 8usize);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let init: Vec<f32> = (0..rows * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let config = AdamWConfig::default();
        // One pass; the halves in order; the halves the other way round.
        let (mut one, mut ab, mut ba) = (init.clone(), init.clone(), init);
        let new = || LazyRows::new(rows, dim, config, true);
        let (mut lazy_one, mut lazy_ab, mut lazy_ba) = (new(), new(), new());
        for step in 0..300 {
            let mut touched: Vec<u32> = (0..6)
                .map(|_| (rng.gen_range(0.0f64..1.0).powi(3) * rows as f64) as u32)
                .collect();
            // Repeats are allowed in a catch-up (not in a step), in any order.
            let mut asked = touched.clone();
            asked.push(touched[0]);
            asked.reverse();
            lazy_one.catch_up_rows(&mut one, &asked).unwrap();
            let in_order = |x: &mut (dyn FnMut() + Send), y: &mut (dyn FnMut() + Send)| {
                x();
                y();
            };
            let reversed = |x: &mut (dyn FnMut() + Send), y: &mut (dyn FnMut() + Send)| {
                y();
                x();
            };
            lazy_ab
                .catch_up_rows_in_two(&mut ab, &asked, in_order)
                .unwrap();
            lazy_ba
                .catch_up_rows_in_two(&mut ba, &asked, reversed)
                .unwrap();
            let (g, lr) = step_inputs(&mut touched, dim, step, &mut rng);
            lazy_one.step(&mut one, lr, &touched, &g).unwrap();
            lazy_ab.step(&mut ab, lr, &touched, &g).unwrap();
            lazy_ba.step(&mut ba, lr, &touched, &g).unwrap();
        }
        assert_eq!(one, ab);
        assert_eq!(one, ba);
        assert_eq!(lazy_one.moments(), lazy_ab.moments());
        assert_eq!(lazy_one.moments(), lazy_ba.moments());
        assert_eq!(lazy_one.row_steps(), lazy_ba.row_steps());
        assert_eq!(
            lazy_ab.catch_up_rows_in_two(&mut ab, &[3, 60], |_, _| {}),
            Err(Error::RowOutOfRange { row: 60, rows: 60 })
        );
    }

    #[test]
    fn row_gradients_sum_repeated_ids_and_skip_padding() {
        // Two sequences of time 3, dim 2: ids [[5, 2, 5], [2, 9, 9]], lengths 3 and 1.
        let ids = [5u32, 2, 5, 2, 9, 9];
        let grad_x: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let (rows, grads) = row_gradients(&ids, &[3, 1], 3, &grad_x, 2);
        assert_eq!(rows, [5, 2]);
        // Row 5: positions 0 and 2; row 2: positions 1 and 3; id 9 only in padding.
        assert_eq!(grads, [0. + 4., 1. + 5., 2. + 6., 3. + 7.]);
    }

    #[test]
    fn bad_rows_sizes_and_states_are_refused() {
        let mut lazy = LazyRows::new(3, 2, AdamWConfig::default(), false);
        let mut table = vec![0f32; 6];
        assert_eq!(
            lazy.step(&mut table, 0.1, &[3], &[0.0; 2]),
            Err(Error::RowOutOfRange { row: 3, rows: 3 })
        );
        assert!(lazy.step(&mut table, 0.1, &[1], &[0.0; 3]).is_err());
        assert!(lazy.step(&mut table[..4], 0.1, &[], &[]).is_err());
        assert_eq!(lazy.steps(), 0, "refused steps are not counted");
        assert_eq!(
            lazy.step(&mut table, 0.1, &[1, 1], &[0.0; 4]),
            Err(Error::RowRepeated { row: 1 })
        );
        assert!(lazy.sync(&mut table[..5]).is_err());
        let mut fresh = LazyRows::new(3, 2, AdamWConfig::default(), false);
        assert_eq!(
            fresh.restore(vec![0.0; 6], vec![0.0; 6], vec![0, 2, 0], vec![0.1]),
            Err(Error::StateAhead {
                row_step: 2,
                steps: 1
            })
        );
        assert!(fresh
            .restore(vec![0.0; 5], vec![0.0; 6], vec![0; 3], vec![])
            .is_err());
        fresh
            .restore(vec![1.0; 6], vec![2.0; 6], vec![1, 0, 1], vec![0.1])
            .unwrap();
        assert_eq!(fresh.steps(), 1);
        assert_eq!(fresh.row_steps(), &[1, 0, 1]);
        assert_eq!(fresh.learning_rates(), &[0.1]);
    }
}
