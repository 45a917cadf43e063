//! The optimiser against PyTorch's update rule, and the training loop's guarantees:
//! determinism, resume equals an uninterrupted run, learning on a small slice of SST-2.

mod common;

use std::path::Path;

use candle_core::{Device, Tensor, Var};
use common::{records, sst2_slice};
use distill_trainer::optim::{Adam, AdamConfig, StepLr};
use distill_trainer::{EpochRecord, StudentRun};

#[test]
fn adam_follows_pytorchs_update() {
    let p0 = [0.5f32, -1.0, 2.0];
    let var = Var::from_tensor(&Tensor::new(&p0, &Device::Cpu).unwrap()).unwrap();
    let cfg = AdamConfig {
        lr: 0.1,
        ..AdamConfig::default()
    };
    let mut adam = Adam::new(vec![("p".into(), var.clone())], cfg);
    let grads_seq = [[0.3f64, -0.2, 0.0], [0.1, 0.4, -1.0]];
    let (mut m, mut v, mut p) = ([0.0f64; 3], [0.0f64; 3], p0.map(|x| x as f64));
    for (step, g) in grads_seq.iter().enumerate() {
        // loss = Σ g·p gives exactly gradient g.
        let gt = Tensor::new(&g.map(|x| x as f32), &Device::Cpu).unwrap();
        let loss = (var.as_tensor() * &gt).unwrap().sum_all().unwrap();
        adam.step(&loss.backward().unwrap()).unwrap();
        let t = (step + 1) as i32;
        for i in 0..3 {
            m[i] = 0.9 * m[i] + 0.1 * g[i];
            v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
            let mh = m[i] / (1.0 - 0.9f64.powi(t));
            let vh = v[i] / (1.0 - 0.999f64.powi(t));
            p[i] -= 0.1 * mh / (vh.sqrt() + 1e-8);
        }
        let got = var.as_tensor().to_vec1::<f32>().unwrap();
        for i in 0..3 {
            assert!(
                (got[i] as f64 - p[i]).abs() < 1e-6,
                "step {t} param {i}: {} vs {}",
                got[i],
                p[i]
            );
        }
    }
    let lr = StepLr {
        base_lr: 1e-3,
        gamma: 0.9,
        step_size: 1,
    };
    assert!((lr.lr_at(2) - 1e-3 * 0.81).abs() < 1e-15);
}

fn run(train: &Path, out: &Path, epochs: usize) -> distill_trainer::TrainOutcome {
    let mut run = StudentRun::new(train.to_path_buf(), out.to_path_buf());
    run.train.epochs = epochs;
    run.train.seed = 42;
    run.train.progress = false;
    run.run(&Device::Cpu).unwrap()
}

fn same_numbers(a: &[EpochRecord], b: &[EpochRecord]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            (x.epoch, x.train_loss, x.val_loss, x.val_acc, x.lr),
            (y.epoch, y.train_loss, y.val_loss, y.val_acc, y.lr)
        );
    }
}

#[test]
fn same_seed_same_run_and_resume_equals_uninterrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let train = sst2_slice(tmp.path(), 1500);
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    run(&train, &a, 3);
    run(&train, &b, 3);
    same_numbers(&records(&a), &records(&b));
    let weights = |d: &Path| std::fs::read(d.join("best/model.safetensors")).unwrap();
    assert_eq!(
        weights(&a),
        weights(&b),
        "same seed must give the same model"
    );

    // Stop after one epoch, then continue to three: as if never interrupted.
    run(&train, &c, 1);
    assert_eq!(records(&c).len(), 1);
    run(&train, &c, 3);
    same_numbers(&records(&a), &records(&c));
    assert_eq!(
        weights(&a),
        weights(&c),
        "resumed run must end with the same model"
    );
    let last = |d: &Path| std::fs::read(d.join("last/model.safetensors")).unwrap();
    assert_eq!(last(&a), last(&c));
}

#[test]
fn a_small_slice_of_sst2_is_learned() {
    let tmp = tempfile::tempdir().unwrap();
    let train = sst2_slice(tmp.path(), 10_000);
    let mut run = StudentRun::new(train, tmp.path().join("run"));
    run.train.epochs = 5;
    run.train.lr = 5e-3; // a small set learns slowly at the original 1e-3
    run.train.progress = false;
    let out = run.run(&Device::Cpu).unwrap();
    let recs = &out.records;
    assert!(
        recs.last().unwrap().train_loss < recs[0].train_loss,
        "training loss should fall: {recs:?}"
    );
    let best = recs.iter().find(|r| r.epoch == out.best_epoch).unwrap();
    assert!(
        best.val_acc > 0.7,
        "validation accuracy {} should beat chance",
        best.val_acc
    );
    assert!(tmp.path().join("run/best/model.safetensors").exists());
}

#[test]
fn a_run_with_other_settings_is_not_resumed_silently() {
    let tmp = tempfile::tempdir().unwrap();
    let train = sst2_slice(tmp.path(), 300);
    let out = tmp.path().join("run");
    run(&train, &out, 1);
    let mut other = StudentRun::new(train.clone(), out.clone());
    other.train.epochs = 2;
    other.train.seed = 7;
    other.train.progress = false;
    let err = other.run(&Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("different settings"), "{err}");
}

#[test]
fn lazy_row_adam_equals_dense_adam() {
    use distill_trainer::row_adam::RowAdam;
    use rand::{Rng, SeedableRng};
    let (rows, dim) = (50usize, 4usize);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let init: Vec<f32> = (0..rows * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let dense =
        Var::from_tensor(&Tensor::from_vec(init.clone(), (rows, dim), &Device::Cpu).unwrap())
            .unwrap();
    let table = Tensor::from_vec(init, (rows, dim), &Device::Cpu).unwrap();
    let cfg = AdamConfig {
        lr: 0.01,
        ..AdamConfig::default()
    };
    let mut adam = Adam::new(vec![("t".into(), dense.clone())], cfg);
    let mut lazy = RowAdam::new(rows, dim, cfg);
    // The fused engine's way: the same optimiser on a plain slice, rows caught up before
    // each step's update (while the step computes its gradient).
    let mut slice = table.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let mut lazy_slice = RowAdam::new(rows, dim, cfg);
    // 400 steps touching a few rows each, Zipf-like (row 0 often, high rows rarely), so
    // rows sit idle both shorter and longer than the exactly replayed window.
    for step in 0..400 {
        let lr = 0.01 * 0.99f64.powi(step / 50);
        adam.set_lr(lr);
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
        let gt = Tensor::from_vec(g_dense, (rows, dim), &Device::Cpu).unwrap();
        let loss = (dense.as_tensor() * &gt).unwrap().sum_all().unwrap();
        adam.step(&loss.backward().unwrap()).unwrap();
        lazy.step(&table, lr, &touched, &g_rows).unwrap();
        lazy_slice.catch_up_slice(&mut slice, &touched);
        lazy_slice.step_slice(&mut slice, lr, &touched, &g_rows);
    }
    lazy.sync(&table).unwrap();
    lazy_slice.sync_slice(&mut slice);
    assert_eq!(
        slice,
        table.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        "catching up first changes nothing"
    );
    let diff = (dense.as_tensor() - &table)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff < 1e-6, "lazy and dense Adam differ by {diff}");
}
