//! Training never goes on in silence on garbage: a non-finite loss stops the run with the
//! last good checkpoint kept, settings out of range are refused, a resume with other data
//! is refused before anything is rewritten, and a corrupt optimiser state is an error.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use common::sst2_slice;
use distill_data::{
    split::stratified_split_indices, Dataset, LabelSet, LogitsMeta, Normalizer, TeacherLogits,
    TextEncoder, Tokenization, VocabBuilder,
};
use distill_student::{StudentConfig, StudentPreset};
use distill_trainer::{train, EncodedSet, Error, Loss, StudentRun, TrainConfig};

/// Every file under `dir` (relative path → bytes), to show a folder was not touched.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Train and validation sets of a small SST-2 slice with made-up teacher logits (the
/// gold label's logit raised), encoded in memory so a test can plant NaN in them.
struct Sets {
    encoder: TextEncoder,
    student: StudentConfig,
    train: EncodedSet,
    val: EncodedSet,
}

fn sets(dir: &Path) -> Sets {
    let data = Dataset::read(&sst2_slice(dir, 300), &LabelSet::binary()).unwrap();
    let (tr, va) = stratified_split_indices(&data, 0.2, 0);
    let tokenization = Tokenization::Words(Normalizer::new(true));
    let tokens: Vec<Vec<String>> = tr
        .iter()
        .map(|&i| tokenization.tokens(&data.examples[i].text))
        .collect();
    let vocab = VocabBuilder::default().build(tokens.iter().map(Vec::as_slice));
    let encoder = TextEncoder::new(tokenization, vocab);
    let encode = |rows: &[usize]| {
        let texts: Vec<&str> = rows
            .iter()
            .map(|&i| data.examples[i].text.as_str())
            .collect();
        let gold: Vec<Option<u32>> = rows.iter().map(|&i| data.examples[i].label).collect();
        let teacher = gold
            .iter()
            .flat_map(|y| match y {
                Some(1) => [-1.0, 1.0],
                _ => [1.0, -1.0],
            })
            .collect();
        let mut set = EncodedSet::encode(&texts, gold, &encoder, 2);
        set.teacher = Some(teacher);
        set
    };
    let student = StudentConfig::new(&StudentPreset::original(), encoder.vocab.len(), 2);
    Sets {
        train: encode(&tr),
        val: encode(&va),
        encoder,
        student,
    }
}

fn distill_config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        loss: Loss::Distill { alpha: 0.5 },
        progress: false,
        ..TrainConfig::default()
    }
}

#[test]
fn training_stops_at_first_non_finite_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let s = sets(tmp.path());
    let out = tmp.path().join("run");
    let run = |cfg: &TrainConfig, train_set: &EncodedSet| {
        train(
            cfg,
            &s.student,
            &s.encoder,
            train_set,
            &s.val,
            &out,
            &Device::Cpu,
        )
    };
    run(&distill_config(1), &s.train).unwrap();
    let before = snapshot(&out);

    // The teacher's row 7 turns NaN: epoch 2 must stop at the batch holding it.
    let mut poisoned = s.train.clone();
    poisoned.teacher.as_mut().unwrap()[14] = f32::NAN;
    let err = run(&distill_config(3), &poisoned).unwrap_err();
    let msg = err.to_string();
    match err {
        Error::NonFiniteLoss {
            epoch,
            step,
            steps,
            loss,
            kept,
            ..
        } => {
            assert_eq!((epoch, kept), (2, 1), "{msg}");
            assert!(step >= 1 && step <= steps, "{msg}");
            assert!(loss.is_nan(), "{msg}");
        }
        other => panic!("expected NonFiniteLoss, got {other:?}"),
    }
    assert!(
        msg.contains("epoch 2, step") && msg.contains("NaN"),
        "{msg}"
    );
    assert_eq!(
        snapshot(&out),
        before,
        "the bad epoch must leave the run as it was"
    );

    // The run resumes from the kept epoch once the data is sound again.
    let outcome = run(&distill_config(2), &s.train).unwrap();
    assert_eq!(outcome.records.len(), 2);
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert!(!metrics.contains("null"), "{metrics}");
}

#[test]
fn non_finite_validation_loss_stops_before_saving() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = sets(tmp.path());
    s.val.teacher.as_mut().unwrap()[0] = f32::INFINITY;
    let out = tmp.path().join("run");
    let err = train(
        &distill_config(2),
        &s.student,
        &s.encoder,
        &s.train,
        &s.val,
        &out,
        &Device::Cpu,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFiniteValLoss {
                epoch: 1,
                kept: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("after epoch 1"), "{err}");
    for f in ["metrics.jsonl", "best", "last"] {
        assert!(!out.join(f).exists(), "{f} must not be written");
    }
}

#[test]
fn settings_out_of_range_are_refused() {
    let loss_cases = [
        (Loss::Distill { alpha: f64::NAN }, "alpha"),
        (Loss::Distill { alpha: 1.5 }, "alpha"),
        (
            Loss::Kl {
                alpha: 0.5,
                temperature: 0.0,
            },
            "temperature",
        ),
        (
            Loss::Kl {
                alpha: 0.5,
                temperature: f64::INFINITY,
            },
            "temperature",
        ),
        (
            Loss::WeightedMse {
                alpha: 0.5,
                k: f64::NAN,
            },
            "k",
        ),
    ];
    for (loss, name) in loss_cases {
        let err = loss.validate().unwrap_err();
        assert!(
            matches!(err, Error::InvalidSetting { name: n, .. } if n == name),
            "{loss:?}: {err:?}"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let with = |f: Tweak| {
        let mut run = StudentRun::new(tmp.path().join("missing.tsv"), tmp.path().join("run"));
        f(&mut run);
        run.run(&Device::Cpu).unwrap_err()
    };
    let cases: [(Tweak, &str); 4] = [
        (|r: &mut StudentRun| r.train.lr = f64::NAN, "lr"),
        (|r: &mut StudentRun| r.train.lr = 0.0, "lr"),
        (|r: &mut StudentRun| r.train.gamma = f64::INFINITY, "gamma"),
        (|r: &mut StudentRun| r.val_share = f64::NAN, "val_share"),
    ];
    for (set, name) in cases {
        // Refused before the (missing) training file is read.
        let err = with(set);
        assert!(
            matches!(err, Error::InvalidSetting { name: n, .. } if n == name),
            "{name}: {err:?}"
        );
    }
    assert!(!tmp.path().join("run").exists());
}

/// A change to a run's settings.
type Tweak = fn(&mut StudentRun);

fn student_run(train: &Path, out: &Path, epochs: usize) -> StudentRun {
    let mut run = StudentRun::new(train.to_path_buf(), out.to_path_buf());
    run.train.epochs = epochs;
    run.train.progress = false;
    run
}

/// A logit cache over `train` whose values are `scale` times a fixed pattern.
fn logits_file(train: &Path, path: &Path, scale: f32) -> PathBuf {
    let data = Dataset::read(train, &LabelSet::binary()).unwrap();
    let values = (0..data.len() * 2)
        .map(|i| scale * if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let meta = LogitsMeta {
        teacher: "test-teacher".into(),
        teacher_sha256: "0".repeat(64),
        labels: vec!["0".into(), "1".into()],
        data_sha256: data.fingerprint(),
        count: data.len(),
        shard: None,
        precision: "f32".into(),
    };
    TeacherLogits::new(values, 2, meta)
        .unwrap()
        .save(path)
        .unwrap();
    path.to_path_buf()
}

fn refused(run: &StudentRun, out: &Path, what: &str) {
    let before = snapshot(out);
    let err = run.run(&Device::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::DataChanged { .. }), "{what}: {err:?}");
    assert!(msg.contains(what), "{msg}");
    assert!(msg.contains("delete"), "{msg}");
    assert_eq!(
        snapshot(out),
        before,
        "{what}: the run folder must be untouched"
    );
}

#[test]
fn resume_with_other_data_is_refused_before_anything_is_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    let train_a = sst2_slice(tmp.path(), 300);
    let other_dir = tmp.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let train_b = sst2_slice(&other_dir, 320);
    let out = tmp.path().join("run");
    student_run(&train_a, &out, 1).run(&Device::Cpu).unwrap();

    refused(&student_run(&train_b, &out, 2), &out, "--train file");
    let mut share = student_run(&train_a, &out, 2);
    share.val_share = 0.3;
    refused(&share, &out, "--val-share was 0.2, now 0.3");
    let mut seed = student_run(&train_a, &out, 2);
    seed.split_seed = 1;
    refused(&seed, &out, "split seed was 0, now 1");

    // Distillation: another logit cache over the same sentences.
    let out = tmp.path().join("distilled");
    let distill = |logits: PathBuf| {
        let mut run = student_run(&train_a, &out, 1);
        run.train.loss = Loss::Distill { alpha: 0.5 };
        run.logits = Some(logits);
        run
    };
    distill(logits_file(&train_a, &tmp.path().join("a.logits"), 1.0))
        .run(&Device::Cpu)
        .unwrap();
    let mut other = distill(logits_file(&train_a, &tmp.path().join("b.logits"), 2.0));
    other.train.epochs = 2;
    refused(&other, &out, "--logits");
}

#[test]
fn resume_with_the_same_data_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let train_a = sst2_slice(tmp.path(), 300);
    let out = tmp.path().join("run");
    student_run(&train_a, &out, 1).run(&Device::Cpu).unwrap();
    let outcome = student_run(&train_a, &out, 2).run(&Device::Cpu).unwrap();
    assert_eq!(outcome.records.len(), 2);
    let state = std::fs::read_to_string(out.join("last/state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["data"]["val_share"], 0.2, "{state}");
    assert_eq!(
        state["data"]["train"].as_str().unwrap().len(),
        64,
        "{state}"
    );
}

#[test]
fn corrupt_optimizer_state_on_resume_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let train_a = sst2_slice(tmp.path(), 300);
    let out = tmp.path().join("run");
    student_run(&train_a, &out, 1).run(&Device::Cpu).unwrap();
    let opt = out.join("last/optimizer.safetensors");
    let good = std::fs::read(&opt).unwrap();
    let empty_step = {
        // A well-formed file whose `step` tensor has no element.
        let mut t = candle_core::safetensors::load(&opt, &Device::Cpu).unwrap();
        t.insert(
            "step".into(),
            candle_core::Tensor::zeros(0, candle_core::DType::F64, &Device::Cpu).unwrap(),
        );
        let p = tmp.path().join("empty_step.safetensors");
        candle_core::safetensors::save(&t, &p).unwrap();
        std::fs::read(&p).unwrap()
    };
    let corruptions: [(&str, Vec<u8>); 4] = [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("garbage", vec![0xAB; 64]),
        ("empty", Vec::new()),
        ("empty step", empty_step),
    ];
    for (what, bytes) in corruptions {
        std::fs::write(&opt, &bytes).unwrap();
        let err = student_run(&train_a, &out, 2)
            .run(&Device::Cpu)
            .unwrap_err();
        assert!(
            matches!(&err, Error::Format { path, .. } if path == &opt),
            "{what}: {err:?}"
        );
        assert!(
            err.to_string().contains("optimizer.safetensors"),
            "{what}: {err}"
        );
    }
}
