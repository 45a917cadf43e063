//! Mixed-precision training in bf16 (AMX tiles or AVX512-BF16) (`set_training_precision(Precision::Bf16)`): one
//! step's loss and every parameter gradient close to the f32 path's yet not bit-equal (so
//! the tiles really ran), inference passes left in f32, and a short bf16 fine-tuning run
//! that learns and records its precision. Skipped where the machine has neither.

mod common;

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use common::{fixture, toy};
use distill_data::LabelSet;
use distill_teacher::{finetune, pad_batch, FinetuneConfig, LoadOptions, Mode, Precision, Teacher};
use serde_json::Value;

fn teacher(precision: Precision) -> Teacher {
    let dir = fixture("tiny-bert");
    let mut t = Teacher::load(
        dir.to_str().expect("utf-8 path"),
        &LoadOptions::default(),
        &Device::Cpu,
    )
    .expect("tiny-bert loads");
    t.model
        .set_training_precision(precision)
        .expect("training precision");
    t
}

/// The golden batch of `tiny-bert/golden.json`: ids, mask and labels.
fn batch(t: &Teacher) -> (Tensor, Tensor, Tensor) {
    let text = std::fs::read_to_string(fixture("tiny-bert/golden.json")).expect("golden.json");
    let g: Value = serde_json::from_str(&text).expect("golden.json parses");
    let sentences: Vec<String> = serde_json::from_value(g["sentences"].clone()).expect("sentences");
    let labels: Vec<u32> = serde_json::from_value(g["labels"].clone()).expect("labels");
    let ids = t.tokenizer.encode_all(&sentences).expect("tokenises");
    let seqs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let (ids, mask) = pad_batch(&seqs, t.tokenizer.pad_id(), &Device::Cpu).expect("pads");
    let ys = Tensor::new(labels.as_slice(), &Device::Cpu).expect("labels");
    (ids, mask, ys)
}

/// The loss of one deterministic (dropout-free) pass and every parameter's gradient.
fn loss_and_grads(t: &Teacher) -> (f32, HashMap<String, Vec<f32>>) {
    let (ids, mask, ys) = batch(t);
    let logits = t.model.forward(&ids, &mask, Mode::Grad).expect("forward");
    let loss = candle_nn::loss::cross_entropy(&logits, &ys).expect("loss");
    let grads = loss.backward().expect("backward");
    let mut out = HashMap::new();
    for (name, var) in t.model.params().iter() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        out.insert(
            name.to_string(),
            g.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
    }
    (loss.to_scalar::<f32>().unwrap(), out)
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[test]
fn a_bf16_step_has_the_f32_loss_and_gradients_to_bf16_rounding() {
    if !Precision::Bf16.is_supported() {
        eprintln!("skipped: this machine has neither AMX tiles nor AVX512-BF16");
        return;
    }
    let exact = teacher(Precision::F32);
    let mixed = teacher(Precision::Bf16);
    assert_eq!(mixed.model.training_precision(), Precision::Bf16);
    let (loss32, grads32) = loss_and_grads(&exact);
    let (loss16, grads16) = loss_and_grads(&mixed);
    println!("loss f32 {loss32}, bf16 {loss16}");
    assert_ne!(
        loss32, loss16,
        "bf16 loss equals f32's: the tiles did not run"
    );
    // Each product's inputs keep 8 significant bits (2⁻⁹ relative); through two layers the
    // loss moves by well under a percent.
    assert!(
        (loss16 - loss32).abs() < 1e-2 * loss32.abs(),
        "loss {loss16} vs {loss32}"
    );
    assert_eq!(grads32.len(), grads16.len());
    // Some gradients are zero in exact arithmetic (a key bias shifts every score of a query
    // alike, which softmax ignores): f32 leaves round-off there, which no relative bound
    // can hold. They are held to staying as negligible against the largest gradient.
    let largest = grads32.values().map(|g| norm(g)).fold(0f32, f32::max);
    let negligible = 1e-5 * largest;
    let mut worst = (String::new(), 0f32);
    let mut names: Vec<&String> = grads32.keys().collect();
    names.sort();
    for name in names {
        let (want, got) = (&grads32[name], &grads16[name]);
        assert_eq!(got.len(), want.len(), "{name}");
        let (n32, n16) = (norm(want), norm(got));
        let diff = norm(&got.iter().zip(want).map(|(a, b)| a - b).collect::<Vec<_>>());
        if n32 < negligible {
            println!("{name}: zero in exact arithmetic (norm f32 {n32:.1e}, bf16 {n16:.1e})");
            assert!(n16 < negligible, "{name}: norm {n16} vs f32 {n32}");
            continue;
        }
        let rel = diff / n32;
        println!(
            "{name}: norm f32 {n32:.4e} bf16 {n16:.4e} ({:+.2e}), relative L2 error {rel:.2e}",
            (n16 - n32) / n32
        );
        // Gradient norms to 2e-2: each product rounds its inputs to 8 significant bits
        // (2⁻⁹ relative), compounded through two layers forward and back. Whole gradients
        // to 5e-2 relative L2: their small components move relatively more than the norm.
        assert!(
            (n16 - n32).abs() <= 2e-2 * n32,
            "{name}: norm {n16} vs {n32}"
        );
        assert!(rel < 5e-2, "{name}: relative L2 error {rel}");
        if rel > worst.1 {
            worst = (name.clone(), rel);
        }
        // The encoder's products and everything before them see bf16 gradients.
        if name.contains("encoder") || name.contains("embeddings") {
            assert!(rel > 0.0, "{name}: bit-equal to f32: the tiles did not run");
        }
    }
    println!("largest relative L2 error: {} {:.2e}", worst.0, worst.1);
}

#[test]
fn inference_passes_of_a_bf16_trained_model_stay_f32() {
    if !Precision::Bf16.is_supported() {
        eprintln!("skipped: this machine has neither AMX tiles nor AVX512-BF16");
        return;
    }
    let (exact, mixed) = (teacher(Precision::F32), teacher(Precision::Bf16));
    let (ids, mask, _) = batch(&exact);
    let logits = |t: &Teacher, mode| {
        t.model
            .forward(&ids, &mask, mode)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    // Dev evaluation measures the f32 weights as a default load will run them.
    assert_eq!(logits(&exact, Mode::Eval), logits(&mixed, Mode::Eval));
    assert_ne!(logits(&exact, Mode::Grad), logits(&mixed, Mode::Grad));
}

#[test]
fn bf16_fine_tuning_lowers_the_loss_and_records_its_precision() {
    if !Precision::Bf16.is_supported() {
        eprintln!("skipped: this machine has neither AMX tiles nor AVX512-BF16");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let cfg = FinetuneConfig {
        teacher: fixture("tiny-bert").to_str().unwrap().into(),
        out: out.path().to_path_buf(),
        lr: 1e-3,
        batch_size: 8,
        epochs: 3,
        eval_every: Some(10),
        warmup_ratio: 0.1,
        labels: LabelSet::binary(),
        progress: false,
        precision: Precision::Bf16,
        ..Default::default()
    };
    let report = finetune(&cfg, &toy(96, 0), &toy(32, 1), &Device::Cpu).unwrap();
    assert_eq!(report.steps, 36);
    assert_eq!(report.precision, Precision::Bf16);
    let (first, last) = (&report.history[0], report.history.last().unwrap());
    println!(
        "bf16 train loss {} → {}, best dev acc {}",
        first.train_loss, last.train_loss, report.best.val_acc
    );
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
    let text = std::fs::read_to_string(out.path().join("training.json")).unwrap();
    let settings: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(settings["precision"], "bf16");
    assert_eq!(settings["batch_size"], 8);
    // The checkpoint (f32 master weights) reloads as usual.
    let saved = Teacher::load(
        out.path().to_str().unwrap(),
        &LoadOptions::default(),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(saved.labels(), ["0", "1"]);
}
