//! bf16 inference (AMX tiles or AVX512-BF16) (`Precision::Bf16`): logits close to transformers' f32
//! golden yet not bit-equal to our f32 path (so the tiles really ran), no gradients, and a
//! logit cache that records its precision and refuses to mix with f32 logits.

mod common;

use common::fixture;
use distill_data::Dataset;
use distill_teacher::{label, InferOptions, LoadOptions, Mode, Precision, Teacher};

fn load(precision: Precision) -> Teacher {
    let dir = fixture("tiny-bert");
    let opts = LoadOptions {
        precision,
        ..LoadOptions::default()
    };
    Teacher::load(
        dir.to_str().expect("utf-8 path"),
        &opts,
        &candle_core::Device::Cpu,
    )
    .expect("tiny-bert loads")
}

fn sentences() -> Vec<String> {
    let text = std::fs::read_to_string(fixture("tiny-bert/golden.json")).expect("golden.json");
    let g: serde_json::Value = serde_json::from_str(&text).expect("golden.json parses");
    serde_json::from_value(g["sentences"].clone()).expect("sentences")
}

#[test]
fn bf16_logits_are_close_to_f32_and_their_cache_does_not_mix() {
    if !Precision::Bf16.is_supported() {
        eprintln!("skipped: this machine has neither AMX tiles nor AVX512-BF16");
        return;
    }
    let data = Dataset::from_texts(sentences());
    let opts = InferOptions {
        batch_size: 4,
        progress: false,
    };
    let f32_teacher = load(Precision::F32);
    let bf16_teacher = load(Precision::Bf16);
    assert_eq!(bf16_teacher.precision(), Precision::Bf16);
    let exact = label(&f32_teacher, &data, &opts).expect("f32 labels");
    let rounded = label(&bf16_teacher, &data, &opts).expect("bf16 labels");
    let diff = exact
        .logits
        .iter()
        .zip(&rounded.logits)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let scale = exact.logits.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(
        diff > 0.0,
        "bf16 logits equal f32's bit for bit: the tiles did not run"
    );
    // Inputs keep 8 significant bits (2⁻⁹ relative); through two layers the logits move by
    // about a percent of their scale.
    assert!(
        diff < 2e-2 * scale,
        "bf16 logits {diff} away from f32 (scale {scale})"
    );
    assert_eq!(exact.meta.precision, "f32");
    assert_eq!(rounded.meta.precision, "bf16");

    // The precision survives a save and load, and caches of two precisions do not mix.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bf16.safetensors");
    rounded.save(&path).expect("saves");
    let back = distill_data::TeacherLogits::load(&path).expect("loads");
    assert_eq!(back.meta.precision, "bf16");
    let err = exact
        .check_compatible(&back)
        .expect_err("f32 and bf16 mix")
        .to_string();
    assert!(err.contains("precision f32 vs bf16"), "{err}");
}

#[test]
fn a_bf16_teacher_refuses_gradients() {
    if !Precision::Bf16.is_supported() {
        eprintln!("skipped: this machine has neither AMX tiles nor AVX512-BF16");
        return;
    }
    let t = load(Precision::Bf16);
    let ids = t.tokenizer.encode_all(&sentences()).expect("tokenises");
    let seqs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let (ids, mask) =
        distill_teacher::pad_batch(&seqs, t.tokenizer.pad_id(), &candle_core::Device::Cpu)
            .expect("pads");
    assert!(t.model.forward(&ids, &mask, Mode::Eval).is_ok());
    let err = t
        .model
        .forward(&ids, &mask, Mode::Grad)
        .expect_err("no gradients in bf16");
    assert!(err.to_string().contains("inference only"), "{err}");
}
