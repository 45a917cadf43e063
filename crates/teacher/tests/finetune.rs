//! A short fine-tuning run of the tiny BERT: it learns a separable toy task, writes
//! `metrics.jsonl` and a checkpoint that reloads with the logged dev accuracy.

mod common;

use candle_core::Device;
use common::toy;
use distill_data::LabelSet;
use distill_teacher::{evaluate, finetune, FinetuneConfig, InferOptions, LoadOptions, Teacher};

#[test]
fn fine_tuning_learns_and_saves_the_best_checkpoint() {
    let out = tempfile::tempdir().unwrap();
    let teacher = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/tiny-bert");
    let cfg = FinetuneConfig {
        teacher: teacher.into(),
        out: out.path().to_path_buf(),
        lr: 1e-3,
        batch_size: 8,
        epochs: 3,
        eval_every: Some(10),
        warmup_ratio: 0.1,
        labels: LabelSet::binary(),
        progress: false,
        ..Default::default()
    };
    let (train, dev) = (toy(96, 0), toy(32, 1));
    let report = finetune(&cfg, &train, &dev, &Device::Cpu).unwrap();
    assert_eq!(report.steps, 36);
    // Evaluations at steps 10, 12 (epoch), 20, 24 (epoch), 30, 36 (epoch).
    let steps: Vec<usize> = report.history.iter().filter_map(|r| r.step).collect();
    assert_eq!(steps, vec![10, 12, 20, 24, 30, 36]);
    let first = &report.history[0];
    let last = report.history.last().unwrap();
    assert!(
        last.train_loss < first.train_loss,
        "{} → {}",
        first.train_loss,
        last.train_loss
    );
    assert!(
        report.best.val_acc >= 0.9,
        "best dev accuracy {}",
        report.best.val_acc
    );

    let lines = std::fs::read_to_string(out.path().join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 6);
    let line: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    for key in [
        "epoch",
        "step",
        "train_loss",
        "val_loss",
        "val_acc",
        "val_ap",
        "val_f1",
        "lr",
        "epoch_seconds",
    ] {
        assert!(line.get(key).is_some(), "metrics.jsonl lacks {key}");
    }

    let settings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("training.json")).unwrap())
            .unwrap();
    assert_eq!(settings["precision"], "f32");
    assert_eq!(settings["lr"], 1e-3);

    let saved = Teacher::load(
        out.path().to_str().unwrap(),
        &LoadOptions::default(),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(saved.labels(), ["0", "1"]);
    let opts = InferOptions {
        progress: false,
        ..Default::default()
    };
    let eval = evaluate(&saved, &dev, &opts).unwrap();
    assert!((eval.metrics.acc - report.best.val_acc).abs() < 1e-9);
    assert!((eval.loss - report.best.val_loss).abs() < 1e-4);
}

#[test]
fn max_steps_shortens_the_run() {
    let out = tempfile::tempdir().unwrap();
    let cfg = FinetuneConfig {
        teacher: concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/tiny-bert").into(),
        out: out.path().to_path_buf(),
        batch_size: 8,
        max_steps: Some(3),
        labels: LabelSet::binary(),
        progress: false,
        ..Default::default()
    };
    let report = finetune(&cfg, &toy(64, 0), &toy(16, 1), &Device::Cpu).unwrap();
    assert_eq!(report.steps, 3);
    assert_eq!(report.history.len(), 1);
    assert!(out.path().join("model.safetensors").is_file());
}
