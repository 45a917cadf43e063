//! The fused kernel against the plain-op reference on random batches (empty rows included),
//! and the tensor-free predictor against the candle model.

mod common;

use std::collections::HashMap;

use candle_core::{Device, Tensor, Var};
use common::rel_err;
use distill_data::{Normalizer, TextEncoder, Tokenization, Vocab, VocabBuilder};
use distill_student::{
    BiLstm, BiLstmClassifier, Predictor, Recurrence, StudentConfig, StudentModel, StudentPreset,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_lstm(
    layers: usize,
    input: usize,
    hidden: usize,
    rng: &mut ChaCha8Rng,
) -> HashMap<String, Var> {
    let mut vars = HashMap::new();
    for l in 0..layers {
        let inp = if l == 0 { input } else { 2 * hidden };
        for sfx in ["", "_reverse"] {
            for (name, shape) in [
                (format!("weight_ih_l{l}{sfx}"), vec![4 * hidden, inp]),
                (format!("weight_hh_l{l}{sfx}"), vec![4 * hidden, hidden]),
                (format!("bias_ih_l{l}{sfx}"), vec![4 * hidden]),
                (format!("bias_hh_l{l}{sfx}"), vec![4 * hidden]),
            ] {
                let n = shape.iter().product();
                let v: Vec<f32> = (0..n).map(|_| rng.gen_range(-0.6..0.6)).collect();
                vars.insert(
                    name,
                    Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).unwrap()).unwrap(),
                );
            }
        }
    }
    vars
}

#[test]
fn fused_kernel_matches_reference_on_random_batches() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // Hidden sizes 8, 16 and 64 run compile-time specialisations, 4 and 12 the generic loop.
    for (layers, input, hidden, batch, time) in [
        (1, 16, 8, 9, 11),
        (2, 5, 4, 6, 7),
        (1, 3, 16, 40, 5),
        (1, 6, 64, 5, 6),
        (2, 4, 12, 4, 5),
    ] {
        let vars = random_lstm(layers, input, hidden, &mut rng);
        let tensors: HashMap<String, Tensor> = vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect();
        // Lengths from 0 (an empty sentence) up to the full width.
        let lengths: Vec<usize> = (0..batch)
            .map(|b| if b == 0 { 0 } else { rng.gen_range(1..=time) })
            .collect();
        let xv: Vec<f32> = (0..batch * time * input)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let x =
            Var::from_tensor(&Tensor::from_vec(xv, (batch, time, input), &Device::Cpu).unwrap())
                .unwrap();
        let weights: Vec<f32> = (0..batch * time * 2 * hidden)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let w = Tensor::from_vec(weights, (batch, time, 2 * hidden), &Device::Cpu).unwrap();

        let run = |rec: Recurrence| {
            let lstm = BiLstm::from_tensors(&tensors, "", layers)
                .unwrap()
                .with_recurrence(rec);
            let out = lstm.forward(x.as_tensor(), &lengths).unwrap();
            let loss = ((out.outputs.clone() * &w).unwrap().sum_all().unwrap()
                + out.h_n.sqr().unwrap().sum_all().unwrap()
                + out.c_n.sum_all().unwrap())
            .unwrap();
            let grads = loss.backward().unwrap();
            let mut g: Vec<(String, Tensor)> = vars
                .iter()
                .map(|(k, v)| (k.clone(), grads.get(v.as_tensor()).unwrap().clone()))
                .collect();
            g.push(("x".into(), grads.get(x.as_tensor()).unwrap().clone()));
            (out, g)
        };
        let (fused, fused_grads) = run(Recurrence::Auto);
        let (reference, ref_grads) = run(Recurrence::Reference);
        assert!(rel_err(&fused.outputs, &reference.outputs) < 1e-5);
        assert!(rel_err(&fused.h_n, &reference.h_n) < 1e-5);
        assert!(rel_err(&fused.c_n, &reference.c_n) < 1e-5);
        for ((name, a), (_, b)) in fused_grads.iter().zip(&ref_grads) {
            let e = rel_err(a, b);
            assert!(e < 1e-5, "gradient of {name}: relative error {e:e}");
        }
        // The empty row has zero state and no gradient reaches its input.
        let h0 = fused
            .h_n
            .narrow(1, 0, 1)
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(h0, 0.0);
        let gx = &fused_grads.last().unwrap().1;
        let gx0 = gx
            .get(0)
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(gx0, 0.0);
    }
}

#[test]
fn padding_never_changes_a_sentence_result() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let config = StudentConfig::new(&StudentPreset::original(), 30, 2);
    let tensors = BiLstmClassifier::init_tensors(&config, &mut rng, &Device::Cpu).unwrap();
    let model = BiLstmClassifier::from_tensors(&config, &tensors).unwrap();
    let alone = Tensor::new(&[[4u32, 9, 12]], &Device::Cpu).unwrap();
    let padded = Tensor::new(
        &[[4u32, 9, 12, 1, 1, 1, 1], [5, 6, 7, 8, 9, 10, 11]],
        &Device::Cpu,
    )
    .unwrap();
    let a = model.forward(&alone, &[3], None).unwrap();
    let b = model
        .forward(&padded, &[3, 7], None)
        .unwrap()
        .narrow(0, 0, 1)
        .unwrap();
    assert!(
        rel_err(&a, &b) < 1e-6,
        "padding leaked into the final states"
    );
}

fn tiny_model(rng: &mut ChaCha8Rng, preset: StudentPreset) -> StudentModel {
    let sentences = [["good", "film"], ["bad", "plot"], ["fine", "acting"]];
    let tokens: Vec<Vec<String>> = sentences
        .iter()
        .map(|s| s.iter().map(|w| w.to_string()).collect())
        .collect();
    let vocab: Vocab = VocabBuilder::default().build(tokens.iter().map(Vec::as_slice));
    let mut config = StudentConfig::new(&preset, vocab.len(), 2);
    config.normalize = false;
    let tensors = BiLstmClassifier::init_tensors(&config, rng, &Device::Cpu).unwrap();
    let classifier = BiLstmClassifier::from_tensors(&config, &tensors).unwrap();
    StudentModel {
        config,
        encoder: TextEncoder::new(Tokenization::Words(Normalizer::plain()), vocab),
        classifier,
    }
}

#[test]
fn predictor_matches_candle_model_and_saved_folder_round_trips() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut two_layers = StudentPreset::original();
    two_layers.num_layers = 2;
    for preset in [StudentPreset::original(), two_layers] {
        let model = tiny_model(&mut rng, preset);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("student");
        model.save_to(&path).unwrap();
        let loaded = StudentModel::load(&path, &Device::Cpu).unwrap();
        assert_eq!(loaded.config, model.config);
        let predictor = Predictor::new(&loaded).unwrap();
        let ids = [2u32, 5, 0, 7, 3];
        let candle = model
            .classifier
            .forward(&Tensor::new(&[ids], &Device::Cpu).unwrap(), &[5], None)
            .unwrap();
        let fast = Tensor::new(predictor.logits(&ids), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        assert!(rel_err(&fast, &candle) < 1e-5);
    }
}

#[test]
fn odd_input_gets_a_defined_prediction() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let predictor = Predictor::new(&tiny_model(&mut rng, StudentPreset::original())).unwrap();
    let long = "good ".repeat(10_000);
    for text in ["", "   ", "?!...", long.as_str(), "ünïcödé ✓"] {
        let p = predictor.predict(text);
        assert!(
            p.probabilities.iter().all(|p| (0.0..=1.0).contains(p))
                && (p.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-6,
            "{text:?}: {p:?}"
        );
        assert!(p.logits.iter().all(|l| l.is_finite()));
    }
    // An empty sentence reads as the initial states: the same answer as no tokens at all.
    assert_eq!(predictor.predict("").logits, predictor.logits(&[]));
}

#[test]
fn loading_a_folder_with_wrong_shapes_names_the_file_and_tensor() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let model = tiny_model(&mut rng, StudentPreset::original());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("student");
    model.save_to(&path).unwrap();
    let mut tensors = model.classifier.tensors();
    tensors.insert(
        "fc.weight".into(),
        Tensor::zeros((3, 16), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&tensors, path.join("model.safetensors")).unwrap();
    let err = StudentModel::load(&path, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("fc.weight"),
        "{err}"
    );
    std::fs::remove_file(path.join("model.safetensors")).unwrap();
    let err = StudentModel::load(&path, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.safetensors"), "{err}");
}
