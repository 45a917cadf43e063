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

/// The candle side of the lazy embedding optimiser (the rule itself is tested against dense
/// AdamW in `distill_ops::lazy`): it updates the table tensor in place like [`Adam`] does
/// the same variable, and a run saved and restored midway ends where an uninterrupted one
/// does.
#[test]
fn row_adam_on_a_tensor_matches_adam_and_resumes() {
    use distill_trainer::row_adam::RowAdam;
    let (rows, dim) = (6usize, 3usize);
    let init: Vec<f32> = (0..rows * dim).map(|i| (i as f32 * 0.37).sin()).collect();
    let tensor = |v: &[f32]| Tensor::from_slice(v, (rows, dim), &Device::Cpu).unwrap();
    let dense = Var::from_tensor(&tensor(&init)).unwrap();
    let table = tensor(&init);
    let cfg = AdamConfig {
        lr: 0.05,
        ..AdamConfig::default()
    };
    let mut adam = Adam::new(vec![("t".into(), dense.clone())], cfg);
    let mut lazy = RowAdam::new(rows, dim, cfg);
    let mut resumed: Option<(RowAdam, Tensor)> = None;
    for step in 0..12u32 {
        // Row 0 every step, row 4 on every third, the rest never.
        let touched: Vec<u32> = if step % 3 == 0 { vec![0, 4] } else { vec![0] };
        let values: Vec<f32> = (0..touched.len() * dim)
            .map(|i| ((step as usize * 7 + i) as f32).cos())
            .collect();
        let mut full = vec![0f32; rows * dim];
        for (k, &r) in touched.iter().enumerate() {
            let r = r as usize;
            full[r * dim..(r + 1) * dim].copy_from_slice(&values[k * dim..(k + 1) * dim]);
        }
        let loss = (dense.as_tensor() * tensor(&full))
            .unwrap()
            .sum_all()
            .unwrap();
        adam.step(&loss.backward().unwrap()).unwrap();
        lazy.step(&table, 0.05, &touched, &values).unwrap();
        if let Some((second, copy)) = resumed.as_mut() {
            second.step(copy, 0.05, &touched, &values).unwrap();
        }
        if step == 5 {
            // Save midway, as a checkpoint does; restore into a fresh optimiser.
            lazy.sync(&table).unwrap();
            let mut second = RowAdam::new(rows, dim, cfg);
            second
                .load_state("emb", &lazy.state("emb").unwrap())
                .unwrap();
            assert_eq!(second.steps(), 6);
            resumed = Some((second, table.copy().unwrap()));
        }
    }
    lazy.sync(&table).unwrap();
    let (mut second, resumed) = resumed.expect("saved at step 5");
    second.sync(&resumed).unwrap();
    let max_diff = |a: &Tensor, b: &Tensor| {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let diff = max_diff(dense.as_tensor(), &table);
    assert!(diff < 1e-6, "lazy and dense Adam differ by {diff}");
    assert_eq!(
        max_diff(&table, &resumed),
        0.0,
        "resumed run ends elsewhere"
    );
    // Rows never touched did not move; a bad state is refused with its name.
    assert_eq!(table.get(2).unwrap().to_vec1::<f32>().unwrap(), init[6..9]);
    let mut bad = lazy.state("emb").unwrap();
    bad.insert(
        "emb.m".into(),
        Tensor::zeros(5, candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    let err = RowAdam::new(rows, dim, cfg)
        .load_state("emb", &bad)
        .unwrap_err();
    assert!(err.to_string().contains("`emb`"), "{err}");
}
