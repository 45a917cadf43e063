//! Parity with PyTorch: a packed 2-layer BiLSTM and the original student with its distillation
//! loss (fixtures made with PyTorch, see fixtures/README.md). Both recurrences — the
//! fused kernel and the plain-op reference — must match outputs and every gradient.

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::loss::cross_entropy;
use common::rel_err;
use distill_student::{BiLstm, BiLstmClassifier, Recurrence, StudentConfig, StudentPreset};

fn fixture(name: &str) -> HashMap<String, Tensor> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name);
    candle_core::safetensors::load(&path, &Device::Cpu).expect("fixture loads")
}

fn assert_close(what: &str, a: &Tensor, b: &Tensor, tol: f32) {
    let e = rel_err(a, b);
    assert!(e <= tol, "{what}: relative error {e:e} > {tol:e}");
}

fn lengths_of(t: &Tensor) -> Vec<usize> {
    t.to_vec1::<i64>()
        .unwrap()
        .into_iter()
        .map(|l| l as usize)
        .collect()
}

fn packed_bilstm(recurrence: Recurrence) {
    let g = fixture("bilstm_packed.safetensors");
    let names: Vec<String> = g
        .keys()
        .filter(|k| k.starts_with("weight_") || k.starts_with("bias_"))
        .cloned()
        .collect();
    let vars: HashMap<String, Var> = names
        .iter()
        .map(|n| (n.clone(), Var::from_tensor(&g[n]).unwrap()))
        .collect();
    let tensors: HashMap<String, Tensor> = vars
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect();
    let lstm = BiLstm::from_tensors(&tensors, "", 2)
        .unwrap()
        .with_recurrence(recurrence);

    // The fixture is time-major (T, B, F); the model is batch-first.
    let x = Var::from_tensor(&g["x"].transpose(0, 1).unwrap().contiguous().unwrap()).unwrap();
    let lengths = lengths_of(&g["lengths"]);
    let out = lstm.forward(x.as_tensor(), &lengths).unwrap();

    assert_close(
        "outputs",
        &out.outputs.transpose(0, 1).unwrap(),
        &g["outputs"],
        1e-5,
    );
    assert_close("h_n", &out.h_n, &g["h_n"], 1e-5);
    assert_close("c_n", &out.c_n, &g["c_n"], 1e-5);

    let w = &g["w"];
    let top = Tensor::cat(
        &[out.h_n.get(2).unwrap(), out.h_n.get(3).unwrap()],
        D::Minus1,
    )
    .unwrap();
    let loss = (out
        .outputs
        .broadcast_mul(&w.narrow(0, 8, 8).unwrap())
        .unwrap()
        .sum_all()
        .unwrap()
        + top
            .broadcast_mul(&w.narrow(0, 0, 8).unwrap())
            .unwrap()
            .sum_all()
            .unwrap())
    .unwrap();
    assert_close("loss", &loss.reshape(1).unwrap(), &g["loss"], 1e-5);

    let grads = loss.backward().unwrap();
    for name in &names {
        let grad = grads
            .get(vars[name].as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        assert_close(
            &format!("grad {name}"),
            grad,
            &g[&format!("grad_{name}")],
            1e-5,
        );
    }
    let gx = grads
        .get(x.as_tensor())
        .expect("gradient for x")
        .transpose(0, 1)
        .unwrap();
    assert_close("grad x", &gx, &g["grad_x"], 1e-5);
}

#[test]
fn packed_bilstm_matches_pytorch_with_fused_kernel() {
    packed_bilstm(Recurrence::Auto);
}

#[test]
fn packed_bilstm_matches_pytorch_with_reference_ops() {
    packed_bilstm(Recurrence::Reference);
}

fn seed_student(recurrence: Recurrence) {
    let g = fixture("seed_student_distill.safetensors");
    let mut config = StudentConfig::new(&StudentPreset::original(), 50, 2);
    config.dropout = 0.0;
    let names: Vec<String> = BiLstmClassifier::parameter_shapes(&config)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
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

    let ids = g["ids"]
        .t()
        .unwrap()
        .to_dtype(DType::U32)
        .unwrap()
        .contiguous()
        .unwrap();
    let lengths = lengths_of(&g["lengths"]);
    let logits = model.forward(&ids, &lengths, None).unwrap();
    assert_close("logits", &logits, &g["logits"], 1e-5);

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
    assert_close("loss", &loss.reshape(1).unwrap(), &g["loss"], 1e-5);

    let grads = loss.backward().unwrap();
    for name in &names {
        let grad = grads
            .get(vars[name].as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        assert_close(
            &format!("grad {name}"),
            grad,
            &g[&format!("grad_{name}")],
            1e-5,
        );
    }
}

#[test]
fn original_student_and_distill_loss_match_pytorch_with_fused_kernel() {
    seed_student(Recurrence::Auto);
}

#[test]
fn original_student_and_distill_loss_match_pytorch_with_reference_ops() {
    seed_student(Recurrence::Reference);
}
