//! The siamese pair student: parity with PyTorch (logits, distillation loss and every
//! gradient; fixture from scripts/golden/student_pair.py), the tensor-free predictor against
//! the candle model, empty texts, and the model folder round trip with label names.

mod common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::loss::cross_entropy;
use common::{fixture, rel_err};
use distill_data::{LabelSet, Normalizer, TextEncoder, Tokenization, Vocab, VocabBuilder};
use distill_student::{
    BiLstmClassifier, Predictor, Recurrence, StudentConfig, StudentModel, StudentPreset,
};

fn assert_close(what: &str, a: &Tensor, b: &Tensor, tol: f32) -> f32 {
    let e = rel_err(a, b);
    assert!(e <= tol, "{what}: relative error {e:e} > {tol:e}");
    e
}

/// The fixture's architecture: vocab 50, embedding 16, hidden 8, 3 labels, a pair model.
fn pair_config() -> StudentConfig {
    let mut config = StudentConfig::new(&StudentPreset::original(), 50, 3).with_pair(true);
    config.dropout = 0.0;
    config
}

/// Batch-first u32 ids and lengths of the fixture's time-major `ids_{side}`.
fn side(g: &HashMap<String, Tensor>, side: &str) -> (Tensor, Vec<usize>) {
    let ids = g[&format!("ids_{side}")]
        .t()
        .unwrap()
        .to_dtype(DType::U32)
        .unwrap()
        .contiguous()
        .unwrap();
    let lengths = g[&format!("lengths_{side}")]
        .to_vec1::<i64>()
        .unwrap()
        .into_iter()
        .map(|l| l as usize)
        .collect();
    (ids, lengths)
}

fn pair_student_matches_pytorch(recurrence: Recurrence) {
    let g = fixture("student_pair.safetensors");
    let config = pair_config();
    let names: Vec<String> = BiLstmClassifier::parameter_shapes(&config)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(names.contains(&"fc.0.weight".to_string()) && names.contains(&"fc.2.bias".into()));
    let vars: HashMap<String, Var> = names
        .iter()
        .map(|n| (n.clone(), Var::from_tensor(&g[n]).unwrap()))
        .collect();
    let tensors = vars
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect();
    let model = BiLstmClassifier::from_tensors(&config, &tensors)
        .unwrap()
        .with_recurrence(recurrence);

    let (ids_a, len_a) = side(&g, "a");
    let (ids_b, len_b) = side(&g, "b");
    let logits = model
        .forward_pair(&ids_a, &len_a, &ids_b, &len_b, None)
        .unwrap();
    let mut worst = assert_close("logits", &logits, &g["logits"], 1e-5);

    let labels = g["labels"].to_dtype(DType::U32).unwrap();
    let ce = cross_entropy(&logits, &labels).unwrap();
    let mse = (&logits - &g["teacher_logits"])
        .unwrap()
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap();
    let loss = ((&ce * 0.5).unwrap() + (&mse * 0.5).unwrap()).unwrap();
    assert_close("ce", &ce.reshape(1).unwrap(), &g["ce"], 1e-5);
    assert_close("mse", &mse.reshape(1).unwrap(), &g["mse"], 1e-5);
    worst = worst.max(assert_close(
        "loss",
        &loss.reshape(1).unwrap(),
        &g["loss"],
        1e-5,
    ));

    let grads = loss.backward().unwrap();
    for name in &names {
        let grad = grads
            .get(vars[name].as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let e = assert_close(
            &format!("grad {name}"),
            grad,
            &g[&format!("grad_{name}")],
            1e-5,
        );
        worst = worst.max(e);
    }
    println!("{recurrence:?}: worst relative error {worst:e}");
}

#[test]
fn pair_student_and_distill_loss_match_pytorch_with_fused_kernel() {
    pair_student_matches_pytorch(Recurrence::Auto);
}

#[test]
fn pair_student_and_distill_loss_match_pytorch_with_reference_ops() {
    pair_student_matches_pytorch(Recurrence::Reference);
}

/// The fixture's weights in a model folder with a 50-token vocabulary and named labels.
fn fixture_model() -> StudentModel {
    let g = fixture("student_pair.safetensors");
    let labels = LabelSet::new(vec![
        "contradiction".into(),
        "neutral".into(),
        "entailment".into(),
    ]);
    let mut config = pair_config().with_labels(&labels);
    config.normalize = false;
    let words: Vec<Vec<String>> = (0..48).map(|i| vec![format!("w{i}")]).collect();
    let vocab: Vocab = VocabBuilder::default().build(words.iter().map(Vec::as_slice));
    assert_eq!(vocab.len(), 50);
    let tensors: HashMap<String, Tensor> = BiLstmClassifier::parameter_shapes(&config)
        .into_iter()
        .map(|(n, _)| (n.clone(), g[&n].clone()))
        .collect();
    StudentModel {
        classifier: BiLstmClassifier::from_tensors(&config, &tensors).unwrap(),
        config,
        encoder: TextEncoder::new(Tokenization::Words(Normalizer::plain()), vocab),
    }
}

#[test]
fn predictor_pair_logits_match_the_model_and_the_folder_round_trips() {
    let g = fixture("student_pair.safetensors");
    let model = fixture_model();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("student");
    model.save_to(&path).unwrap();
    let json = std::fs::read_to_string(path.join("config.json")).unwrap();
    assert!(
        json.contains("\"pair\": true") && json.contains("\"2\": \"entailment\""),
        "{json}"
    );
    let loaded = StudentModel::load(&path, &Device::Cpu).unwrap();
    assert_eq!(loaded.config, model.config);
    let predictor = Predictor::new(&loaded).unwrap();
    assert!(predictor.is_pair());

    let (ids_a, len_a) = side(&g, "a");
    let (ids_b, len_b) = side(&g, "b");
    let rows = |ids: &Tensor, lens: &[usize]| -> Vec<Vec<u32>> {
        ids.to_vec2::<u32>()
            .unwrap()
            .into_iter()
            .zip(lens)
            .map(|(r, &l)| r[..l].to_vec())
            .collect()
    };
    let (a, b) = (rows(&ids_a, &len_a), rows(&ids_b, &len_b));
    let fast = predictor.logits_pair_batch(&a, &b).unwrap();
    let fast = Tensor::new(fast, &Device::Cpu).unwrap();
    let e = rel_err(&fast, &g["logits"]);
    assert!(e < 1e-5, "predictor vs PyTorch: {e:e}");
    let one = predictor.logits_pair(&a[1], &b[1]).unwrap();
    // One pair alone and the batch are within float rounding of the per-sentence path (their
    // AVX-512 kernels fuse multiply-adds and sum in another order).
    let per = predictor.logits_pair_batch_per_sentence(&a, &b).unwrap();
    let per1 = Tensor::new(per[1].as_slice(), &Device::Cpu).unwrap();
    let e = rel_err(&Tensor::new(one.as_slice(), &Device::Cpu).unwrap(), &per1);
    assert!(e < 1e-6, "one pair vs per-sentence: {e:e}");
    let row = Tensor::new(one.as_slice(), &Device::Cpu).unwrap();
    let e = rel_err(&fast.get(1).unwrap(), &row);
    assert!(e < 1e-6, "batched vs one pair: {e:e}");

    let p = predictor.prediction(one);
    assert_eq!(p.probabilities.len(), 3);
    assert!((p.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    assert_eq!(p.probability, p.probabilities[p.label as usize]);
    assert_eq!(
        p.label_name,
        ["contradiction", "neutral", "entailment"][p.label as usize]
    );
}

#[test]
fn empty_texts_give_the_initial_states_not_nan() {
    let model = fixture_model();
    let predictor = Predictor::new(&model).unwrap();
    let dev = Device::Cpu;
    // Row 0 has an empty first text, row 1 an empty second, row 2 both empty.
    let ids_a = Tensor::new(&[[1u32, 1], [5, 6], [1, 1]], &dev).unwrap();
    let ids_b = Tensor::new(&[[7u32, 8, 9], [1, 1, 1], [1, 1, 1]], &dev).unwrap();
    let (la, lb) = ([0, 2, 0], [3, 0, 0]);
    for recurrence in [Recurrence::Auto, Recurrence::Reference] {
        let classifier = model.classifier.clone().with_recurrence(recurrence);
        let logits = classifier
            .forward_pair(&ids_a, &la, &ids_b, &lb, None)
            .unwrap();
        let fast = vec![
            predictor.logits_pair(&[], &[7, 8, 9]).unwrap(),
            predictor.logits_pair(&[5, 6], &[]).unwrap(),
            predictor.logits_pair(&[], &[]).unwrap(),
        ];
        let fast = Tensor::new(fast, &dev).unwrap();
        assert!(rel_err(&logits, &fast) < 1e-5, "{recurrence:?}");
        let v = logits.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{v:?}");
    }
    let p = predictor.predict_pair("", "").unwrap();
    assert!(p.probabilities.iter().all(|p| p.is_finite()), "{p:?}");
    // One text to a pair model reads as a pair whose second text is empty.
    assert_eq!(
        predictor.logits(&[5, 6]),
        predictor.logits_pair(&[5, 6], &[]).unwrap()
    );
}

#[test]
fn pair_and_single_models_refuse_the_other_input() {
    let pair = fixture_model();
    let ids = Tensor::new(&[[3u32, 4]], &Device::Cpu).unwrap();
    let e = pair.classifier.forward(&ids, &[2], None).unwrap_err();
    assert!(e.to_string().contains("forward_pair"), "{e}");

    let mut config = StudentConfig::new(&StudentPreset::original(), 50, 3);
    config.normalize = false;
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let tensors = BiLstmClassifier::init_tensors(&config, &mut rng, &Device::Cpu).unwrap();
    let single = StudentModel {
        classifier: BiLstmClassifier::from_tensors(&config, &tensors).unwrap(),
        config,
        encoder: pair.encoder.clone(),
    };
    assert!(single
        .classifier
        .forward_pair(&ids, &[2], &ids, &[2], None)
        .is_err());
    let predictor = Predictor::new(&single).unwrap();
    assert!(!predictor.is_pair());
    let e = predictor.predict_pair("w1", "w2").unwrap_err();
    assert!(e.to_string().contains("single texts"), "{e}");
    // Three labels, one output each: a softmax over three.
    let p = predictor.predict("w1 w2");
    assert_eq!(p.probabilities.len(), 3);
    assert_eq!(p.label_name, p.label.to_string());
}
