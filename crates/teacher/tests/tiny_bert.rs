//! Parity with PyTorch/transformers on the tiny random BERT in `fixtures/tiny-bert`
//! (see `fixtures/README.md`): token ids exactly, logits and loss to 1e-4, gradients to
//! 1e-3 relative; and gradients that reach the embeddings and the first layer. On the CPU,
//! or on a GPU with `DISTILL_TEST_DEVICE=cuda` (same goldens, same tolerances).

mod common;

use std::collections::HashMap;

use candle_core::Tensor;
use common::{device, fixture, tensor_max_abs_diff};
use distill_teacher::{pad_batch, LoadOptions, Mode, Teacher};
use serde_json::Value;

struct Golden {
    sentences: Vec<String>,
    ids: Vec<Vec<u32>>,
    mask: Vec<Vec<u32>>,
    logits: Vec<Vec<f32>>,
    labels: Vec<u32>,
    loss: f32,
    grad_norms: HashMap<String, f32>,
}

fn golden() -> Golden {
    let text = std::fs::read_to_string(fixture("tiny-bert/golden.json")).expect("golden.json");
    let g: Value = serde_json::from_str(&text).expect("golden.json parses");
    let matrix_u32 =
        |key: &str| -> Vec<Vec<u32>> { serde_json::from_value(g[key].clone()).expect(key) };
    Golden {
        sentences: serde_json::from_value(g["sentences"].clone()).expect("sentences"),
        ids: matrix_u32("input_ids"),
        mask: matrix_u32("attention_mask"),
        logits: serde_json::from_value(g["logits"].clone()).expect("logits"),
        labels: serde_json::from_value(g["labels"].clone()).expect("labels"),
        loss: g["ce_loss_no_dropout"].as_f64().expect("loss") as f32,
        grad_norms: serde_json::from_value(g["grad_l2_norms"].clone()).expect("grad norms"),
    }
}

fn teacher() -> Teacher {
    let dir = fixture("tiny-bert");
    Teacher::load(
        dir.to_str().expect("utf-8 path"),
        &LoadOptions::default(),
        &device(),
    )
    .expect("tiny-bert loads")
}

/// The golden batch, tokenised by us and padded to the longest sentence.
fn batch(t: &Teacher, g: &Golden) -> (Tensor, Tensor) {
    let ids = t.tokenizer.encode_all(&g.sentences).expect("tokenises");
    let seqs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    pad_batch(&seqs, t.tokenizer.pad_id(), &device()).expect("pads")
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn token_ids_match_transformers_exactly() {
    let (t, g) = (teacher(), golden());
    let (ids, mask) = batch(&t, &g);
    assert_eq!(ids.to_vec2::<u32>().unwrap(), g.ids, "padded ids");
    assert_eq!(mask.to_vec2::<u32>().unwrap(), g.mask, "attention mask");
    assert_eq!(
        t.tokenizer.encode("").unwrap(),
        vec![101, 102],
        "empty sentence"
    );
}

#[test]
fn logits_and_loss_match_transformers() {
    let (t, g) = (teacher(), golden());
    let (ids, mask) = batch(&t, &g);
    let expected: Vec<f32> = g.logits.concat();
    for mode in [Mode::Eval, Mode::Grad] {
        let logits = t.model.forward(&ids, &mask, mode).unwrap();
        let got = logits.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let err = max_abs_diff(&got, &expected);
        println!("tiny-bert logits, {mode:?}: max abs error {err:.2e}");
        assert!(err < 1e-4, "{mode:?} logits differ by {err}");
    }
    let logits = t.model.forward(&ids, &mask, Mode::Grad).unwrap();
    let ys = Tensor::new(g.labels.as_slice(), &device()).unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &ys)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    println!(
        "tiny-bert loss: {loss} vs {} (error {:.2e})",
        g.loss,
        (loss - g.loss).abs()
    );
    assert!((loss - g.loss).abs() < 1e-4, "loss {loss} vs {}", g.loss);
}

#[test]
fn gradients_match_transformers() {
    let (t, g) = (teacher(), golden());
    let (ids, mask) = batch(&t, &g);
    let logits = t.model.forward(&ids, &mask, Mode::Grad).unwrap();
    let ys = Tensor::new(g.labels.as_slice(), &device()).unwrap();
    let grads = candle_nn::loss::cross_entropy(&logits, &ys)
        .unwrap()
        .backward()
        .unwrap();
    let grad = |name: &str| -> Vec<f32> {
        let p = t.model.params().get(name).unwrap();
        let gr = grads
            .get(&p)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        gr.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    let expected =
        candle_core::safetensors::load(fixture("tiny-bert/golden_grads.safetensors"), &device())
            .unwrap();
    assert_eq!(expected.len(), 4);
    for (name, want) in &expected {
        let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let got = grad(name);
        let norm = want.iter().map(|x| x * x).sum::<f32>().sqrt();
        let diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            .sqrt();
        let elem = max_abs_diff(&got, &want) / want.iter().fold(0f32, |m, x| m.max(x.abs()));
        println!(
            "grad {name}: relative L2 error {:.2e}, max elementwise {elem:.2e}",
            diff / norm
        );
        assert!(diff / norm < 1e-3, "{name}: relative error {}", diff / norm);
        assert!(elem < 1e-3, "{name}: elementwise relative error {elem}");
    }
    for (name, want) in &g.grad_norms {
        let got = grad(name).iter().map(|x| x * x).sum::<f32>().sqrt();
        println!("grad norm {name}: {got} vs {want}");
        assert!(
            (got - want).abs() / want < 1e-3,
            "{name}: norm {got} vs {want}"
        );
    }
}

#[test]
fn training_gradients_reach_the_embeddings_and_layer_0() {
    let (t, g) = (teacher(), golden());
    let (ids, mask) = batch(&t, &g);
    t.model.seed_dropout(7);
    let logits = t.model.forward(&ids, &mask, Mode::Train).unwrap();
    let ys = Tensor::new(g.labels.as_slice(), &device()).unwrap();
    let grads = candle_nn::loss::cross_entropy(&logits, &ys)
        .unwrap()
        .backward()
        .unwrap();
    let mut missing = Vec::new();
    for (name, var) in t.model.params().iter() {
        match grads.get(var.as_tensor()) {
            Some(gr)
                if gr
                    .abs()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
                    > 0.0 => {}
            _ => missing.push(name.to_string()),
        }
    }
    assert!(
        missing.is_empty(),
        "parameters without gradient: {missing:?}"
    );
    for name in [
        "bert.embeddings.word_embeddings.weight",
        "bert.embeddings.position_embeddings.weight",
        "bert.embeddings.LayerNorm.weight",
        "bert.encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.0.attention.output.LayerNorm.weight",
    ] {
        let p = t.model.params().get(name).unwrap();
        assert!(grads.get(&p).is_some(), "{name}");
    }
}

#[test]
fn dropout_is_real_in_training_and_seeded() {
    let (t, g) = (teacher(), golden());
    let (ids, mask) = batch(&t, &g);
    let run = |seed| {
        t.model.seed_dropout(seed);
        let l = t.model.forward(&ids, &mask, Mode::Train).unwrap();
        l.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    let eval = t
        .model
        .forward(&ids, &mask, Mode::Eval)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let (a, b, c) = (run(1), run(1), run(2));
    assert_eq!(a, b, "same seed, same dropout");
    assert!(
        max_abs_diff(&a, &c) > 1e-3,
        "another seed drops other units"
    );
    assert!(
        max_abs_diff(&a, &eval) > 1e-3,
        "dropout changes the training logits"
    );
}

#[test]
fn the_sparse_word_gradient_equals_the_dense_one() {
    let (t, g) = (teacher(), golden());
    let (ids, mask) = batch(&t, &g);
    let ys = Tensor::new(g.labels.as_slice(), &device()).unwrap();
    let table = t
        .model
        .params()
        .get(distill_teacher::model::WORD_EMBEDDINGS)
        .unwrap();

    let logits = t.model.forward(&ids, &mask, Mode::Grad).unwrap();
    let dense = candle_nn::loss::cross_entropy(&logits, &ys)
        .unwrap()
        .backward()
        .unwrap();
    let dense = dense.get(&table).expect("dense gradient").clone();

    let (logits, rows) = t
        .model
        .forward_sparse(&ids, None, &mask, Mode::Grad)
        .unwrap();
    let rows = rows.expect("a differentiable pass records its rows");
    let grads = candle_nn::loss::cross_entropy(&logits, &ys)
        .unwrap()
        .backward()
        .unwrap();
    assert!(
        grads.get(&table).is_none(),
        "the table itself gets no dense gradient"
    );
    let mut distinct: Vec<u32> = g.ids.concat();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(rows.rows, distinct);
    let sparse = t
        .model
        .dense_word_grad(&rows, &grads)
        .unwrap()
        .expect("rows gradient");
    let diff = tensor_max_abs_diff(&sparse, &dense);
    assert!(diff < 1e-7, "{diff}");
}

#[test]
fn a_pytorch_model_bin_gives_the_same_logits() {
    // tiny-bert with its weights as `torch.save` writes them (scripts/golden/make_pytorch_bin.py)
    // instead of safetensors: candle's pickle reader must give back every tensor.
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture("tiny-bert").join(f), dir.path().join(f)).unwrap();
    }
    std::fs::copy(
        fixture("tiny-bert-pth/pytorch_model.bin"),
        dir.path().join("pytorch_model.bin"),
    )
    .unwrap();
    let t = Teacher::load(
        dir.path().to_str().unwrap(),
        &LoadOptions::default(),
        &device(),
    )
    .expect("loads from pytorch_model.bin");
    let reference = teacher();
    assert_eq!(
        t.model.params().iter().count(),
        reference.model.params().iter().count()
    );
    for (name, var) in reference.model.params().iter() {
        let got = t.model.params().get(name).unwrap();
        assert_eq!(
            tensor_max_abs_diff(&got, var.as_tensor()),
            0.0,
            "{name} differs"
        );
    }
    let g = golden();
    let (ids, mask) = batch(&t, &g);
    let logits = t.model.forward(&ids, &mask, Mode::Eval).unwrap();
    let got = logits.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let err = max_abs_diff(&got, &g.logits.concat());
    assert!(err < 1e-4, "pytorch_model.bin logits differ by {err}");
}
