//! Logit caches meet a student run: the training and transfer caches must come from one
//! teacher, name the run's labels and have one column per student output; each mismatch
//! is a typed error before any training step, never a panic inside a loss.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use common::sst2_slice;
use distill_data::{Dataset, LabelSet, LogitsMeta, TeacherLogits};
use distill_trainer::{Augmentation, Error, Loss, StudentRun};

/// A cache over the sentences of `data` with `labels` as columns, written by a teacher
/// whose weights hash to `teacher_sha256`.
fn cache(data: &Path, out: &Path, labels: &[&str], teacher_sha256: &str) -> PathBuf {
    let d = Dataset::read(data, &LabelSet::binary()).unwrap();
    let c = labels.len();
    let values = (0..d.len() * c).map(|i| (i % 7) as f32 - 3.0).collect();
    let meta = LogitsMeta {
        teacher: "teacher".into(),
        teacher_sha256: teacher_sha256.into(),
        labels: labels.iter().map(|s| s.to_string()).collect(),
        data_sha256: d.fingerprint(),
        count: d.len(),
        shard: None,
        precision: "f32".into(),
    };
    TeacherLogits::new(values, c, meta)
        .unwrap()
        .save(out)
        .unwrap();
    out.to_path_buf()
}

fn run(dir: &Path, loss: Loss, logits: PathBuf) -> StudentRun {
    let train = sst2_slice(dir, 60);
    let mut run = StudentRun::new(train, dir.join("run"));
    run.train.epochs = 1;
    run.train.progress = false;
    run.train.loss = loss;
    run.logits = Some(logits);
    run
}

#[test]
fn weighted_mse_with_a_one_column_cache_is_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let train = sst2_slice(tmp.path(), 60);
    let logits = cache(&train, &tmp.path().join("one.safetensors"), &["1"], "a");
    let r = run(tmp.path(), Loss::WeightedMse { alpha: 0.5, k: 1.5 }, logits);
    let e = r.run(&Device::Cpu).unwrap_err();
    assert!(matches!(e, Error::Data(_)), "{e:?}");
    let m = e.to_string();
    for part in ["one.safetensors", "1 column(s)", "needs 2"] {
        assert!(m.contains(part), "{m} lacks {part}");
    }
    assert!(!tmp.path().join("run/best").exists());
}

#[test]
fn weighted_mse_on_mismatched_teacher_logits_is_an_error_not_a_panic() {
    let s = Tensor::new(&[[0.5f32, -0.5], [1.0, 2.0]], &Device::Cpu).unwrap();
    let one_column = Tensor::new(&[[0.5f32], [1.0]], &Device::Cpu).unwrap();
    let loss = Loss::WeightedMse { alpha: 0.5, k: 1.5 };
    let e = loss
        .compute(&s, &[Some(1), Some(0)], Some(&one_column))
        .unwrap_err();
    assert!(e.to_string().contains("do not match"), "{e}");
    let e = distill_trainer::weighted_mse(&s, &s, &[Some(2), None], 1.0).unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
}

#[test]
fn cache_with_other_label_names_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let train = sst2_slice(tmp.path(), 60);
    let logits = cache(
        &train,
        &tmp.path().join("named.safetensors"),
        &["neg", "pos"],
        "a",
    );
    let e = run(tmp.path(), Loss::Distill { alpha: 0.5 }, logits)
        .run(&Device::Cpu)
        .unwrap_err();
    assert!(
        matches!(e, Error::Data(distill_data::Error::LabelsMismatch { .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains("named.safetensors"), "{e}");
}

#[test]
fn train_and_transfer_caches_from_different_teachers_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let train = sst2_slice(tmp.path(), 60);
    let logits = cache(
        &train,
        &tmp.path().join("train.safetensors"),
        &["0", "1"],
        "a",
    );
    let aug = tmp.path().join("aug.tsv");
    Dataset::from_texts(vec!["a [MASK] film".into(), "dull".into()])
        .write_tsv(&aug)
        .unwrap();
    let aug_logits = cache(&aug, &tmp.path().join("aug.safetensors"), &["0", "1"], "b");
    let mut r = run(tmp.path(), Loss::Distill { alpha: 0.5 }, logits);
    r.augment = Some(Augmentation {
        data: aug.clone(),
        logits: aug_logits,
    });
    let e = r.run(&Device::Cpu).unwrap_err();
    assert!(
        matches!(e, Error::Data(distill_data::Error::TeacherMismatch { .. })),
        "{e:?}"
    );
    let m = e.to_string();
    for part in ["train.safetensors", "aug.safetensors", "sha256"] {
        assert!(m.contains(part), "{m} lacks {part}");
    }
    assert!(!tmp.path().join("run/best").exists());
}
