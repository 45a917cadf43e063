//! The two training engines in the trainer: each is deterministic for a seed, a
//! run resumes on the other engine (both ways) and ends close to an uninterrupted one, the
//! engines train to the same numbers up to rounding, and a checkpoint from before the
//! engine was recorded still resumes.

mod common;

use std::path::{Path, PathBuf};

use candle_core::Device;
use common::{records, sst2_slice};
use distill_trainer::{Engine, EpochRecord, StudentRun};

fn run(train: &Path, out: &Path, epochs: usize, engine: Engine) -> Vec<EpochRecord> {
    let mut run = StudentRun::new(train.to_path_buf(), out.to_path_buf());
    run.train.epochs = epochs;
    run.train.seed = 5;
    run.train.engine = engine;
    run.train.progress = false;
    run.run(&Device::Cpu).unwrap().records
}

/// The engines differ in rounding only (on this machine the losses of 3 short epochs agree
/// to 1e-8); differences may grow over a run, so the numbers must agree to 1e-4.
fn close(a: &[EpochRecord], b: &[EpochRecord], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: epochs");
    for (x, y) in a.iter().zip(b) {
        for (name, u, v) in [
            ("train loss", x.train_loss, y.train_loss),
            ("val loss", x.val_loss, y.val_loss),
        ] {
            assert!(
                (u - v).abs() <= 1e-4 * v.abs(),
                "{what}, epoch {}: {name} {u} vs {v}",
                x.epoch
            );
        }
        assert!(
            (x.val_acc - y.val_acc).abs() <= 0.002,
            "{what}, epoch {}: accuracy {} vs {}",
            x.epoch,
            x.val_acc,
            y.val_acc
        );
        assert_eq!(x.lr, y.lr);
    }
}

#[test]
fn both_engines_train_to_the_same_numbers_and_resume_on_each_other() {
    let tmp = tempfile::tempdir().unwrap();
    let train = sst2_slice(tmp.path(), 1500);
    let dir = |name: &str| tmp.path().join(name);
    let fused = run(&train, &dir("fused"), 3, Engine::Fused);
    let candle = run(&train, &dir("candle"), 3, Engine::Candle);
    close(&fused, &candle, "fused vs candle");
    assert_ne!(
        fused[2].train_loss, candle[2].train_loss,
        "the engines differ in rounding: equal losses would mean one engine ran twice"
    );

    // Fused for one epoch, then candle to three; and the reverse.
    run(&train, &dir("f-then-c"), 1, Engine::Fused);
    let resumed = run(&train, &dir("f-then-c"), 3, Engine::Candle);
    assert_eq!(records(&dir("f-then-c")).len(), 3);
    assert_eq!(
        resumed[0].train_loss, fused[0].train_loss,
        "epoch 1 is kept"
    );
    close(&resumed, &fused, "fused, then candle");

    run(&train, &dir("c-then-f"), 2, Engine::Candle);
    let resumed = run(&train, &dir("c-then-f"), 3, Engine::Auto);
    assert_eq!(
        resumed[1].train_loss, candle[1].train_loss,
        "epoch 2 is kept"
    );
    close(&resumed, &candle, "candle, then fused");
}

#[test]
fn each_engine_repeats_itself_for_a_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let train = sst2_slice(tmp.path(), 800);
    for engine in [Engine::Fused, Engine::Candle] {
        let dir = |run: &str| tmp.path().join(format!("{engine}-{run}"));
        let a = run(&train, &dir("a"), 2, engine);
        let b = run(&train, &dir("b"), 2, engine);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                (x.train_loss, x.val_loss, x.val_acc),
                (y.train_loss, y.val_loss, y.val_acc),
                "{engine}"
            );
        }
        let weights = |d: PathBuf| std::fs::read(d.join("last/model.safetensors")).unwrap();
        assert_eq!(weights(dir("a")), weights(dir("b")), "{engine}");
    }
}

#[test]
fn a_checkpoint_from_before_the_engine_setting_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let train = sst2_slice(tmp.path(), 400);
    let out = tmp.path().join("run");
    run(&train, &out, 1, Engine::Auto);
    let state_path = out.join("last/state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    let config = state["config"].as_object_mut().unwrap();
    assert!(config.remove("engine").is_some(), "the engine is recorded");
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();
    let records = run(&train, &out, 2, Engine::Fused);
    assert_eq!(records.len(), 2);
}

#[test]
fn engines_parse_and_resolve() {
    assert_eq!("fused".parse::<Engine>(), Ok(Engine::Fused));
    assert_eq!("candle".parse::<Engine>(), Ok(Engine::Candle));
    assert!("gpu"
        .parse::<Engine>()
        .unwrap_err()
        .contains("auto, fused, candle"));
    assert_eq!(Engine::default(), Engine::Auto);
    let cpu = Device::Cpu;
    assert_eq!(Engine::Auto.resolve(&cpu).unwrap(), Engine::Fused);
    assert_eq!(Engine::Candle.resolve(&cpu).unwrap(), Engine::Candle);
}
