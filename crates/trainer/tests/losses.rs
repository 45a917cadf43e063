//! Every loss and its gradient against values computed by hand (and PyTorch's, for `distill`).

use candle_core::{Device, Tensor, Var};
use distill_trainer::Loss;

fn t2(rows: &[[f32; 2]]) -> Tensor {
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_vec(flat, (rows.len(), 2), &Device::Cpu).unwrap()
}

fn scalar(t: &Tensor) -> f64 {
    t.to_scalar::<f32>().unwrap() as f64
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-5 * b.abs().max(1.0),
        "{what}: {a} vs {b}"
    );
}

fn softmax(z: [f64; 2]) -> [f64; 2] {
    let m = z[0].max(z[1]);
    let e = [(z[0] - m).exp(), (z[1] - m).exp()];
    [e[0] / (e[0] + e[1]), e[1] / (e[0] + e[1])]
}

const S: [[f32; 2]; 3] = [[0.5, -1.0], [2.0, 0.3], [-0.7, 0.9]];
const T: [[f32; 2]; 3] = [[1.5, -2.0], [-1.0, 1.0], [0.2, 0.1]];
const Y: [Option<u32>; 3] = [Some(0), Some(1), None];

fn f64s(r: [f32; 2]) -> [f64; 2] {
    [r[0] as f64, r[1] as f64]
}

/// CE over labelled rows, by hand, and its gradient w.r.t. each logit.
fn ce_by_hand() -> (f64, Vec<[f64; 2]>) {
    let labelled: Vec<usize> = (0..3).filter(|&i| Y[i].is_some()).collect();
    let n = labelled.len() as f64;
    let mut loss = 0.0;
    let mut grad = vec![[0.0; 2]; 3];
    for &i in &labelled {
        let p = softmax(f64s(S[i]));
        let y = Y[i].unwrap() as usize;
        loss -= p[y].ln() / n;
        for c in 0..2 {
            grad[i][c] = (p[c] - f64::from(c == y)) / n;
        }
    }
    (loss, grad)
}

fn run(loss: Loss) -> (f64, Tensor) {
    let s = Var::from_tensor(&t2(&S)).unwrap();
    let l = loss.compute(s.as_tensor(), &Y, Some(&t2(&T))).unwrap();
    let g = l.backward().unwrap().get(s.as_tensor()).unwrap().clone();
    (scalar(&l), g)
}

fn check_grad(g: &Tensor, want: &[[f64; 2]], what: &str) {
    let got = g.to_vec2::<f32>().unwrap();
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        for c in 0..2 {
            close(a[c] as f64, b[c], &format!("{what} d/ds[{i}][{c}]"));
        }
    }
}

#[test]
fn cross_entropy_skips_unlabelled_rows() {
    let (want, grad) = ce_by_hand();
    let (got, g) = run(Loss::Ce);
    close(got, want, "ce");
    check_grad(&g, &grad, "ce");
}

#[test]
fn distill_blends_ce_and_mse() {
    let a = 0.3;
    let (ce, ce_grad) = ce_by_hand();
    let mut mse = 0.0;
    let mut grad = vec![[0.0; 2]; 3];
    for i in 0..3 {
        for c in 0..2 {
            let d = S[i][c] as f64 - T[i][c] as f64;
            mse += d * d / 6.0;
            grad[i][c] = a * ce_grad[i][c] + (1.0 - a) * 2.0 * d / 6.0;
        }
    }
    let (got, g) = run(Loss::Distill { alpha: a });
    close(got, a * ce + (1.0 - a) * mse, "distill");
    check_grad(&g, &grad, "distill");
}

#[test]
fn weighted_mse_down_weights_what_the_teacher_gets_wrong() {
    let (a, k) = (0.5, 1.5);
    let (ce, ce_grad) = ce_by_hand();
    let mut soft = 0.0;
    let mut grad = vec![[0.0; 2]; 3];
    for i in 0..3 {
        let p = softmax(f64s(T[i]));
        let target = Y[i]
            .map(|y| y as usize)
            .unwrap_or(if p[1] > p[0] { 1 } else { 0 });
        let w = (k * p[target].ln()).exp();
        for c in 0..2 {
            let d = S[i][c] as f64 - T[i][c] as f64;
            soft += w * d * d / 2.0 / 3.0;
            grad[i][c] = a * ce_grad[i][c] + (1.0 - a) * w * 2.0 * d / 2.0 / 3.0;
        }
    }
    let (got, g) = run(Loss::WeightedMse { alpha: a, k });
    close(got, a * ce + (1.0 - a) * soft, "weighted-mse");
    check_grad(&g, &grad, "weighted-mse");
    // Row 1: the teacher prefers label 1, which is gold: weight near 1; row 0 likewise.
}

#[test]
fn kl_is_hintons_soft_target_loss() {
    let (a, temp) = (0.5, 2.0);
    let (ce, ce_grad) = ce_by_hand();
    let mut kl = 0.0;
    let mut grad = vec![[0.0; 2]; 3];
    for i in 0..3 {
        let s = f64s(S[i]);
        let t = f64s(T[i]);
        let q = softmax([s[0] / temp, s[1] / temp]);
        let p = softmax([t[0] / temp, t[1] / temp]);
        for c in 0..2 {
            kl += temp * temp * p[c] * (p[c].ln() - q[c].ln()) / 3.0;
            // d/ds of T²·KL/B = T·(q − p)/B
            grad[i][c] = a * ce_grad[i][c] + (1.0 - a) * temp * (q[c] - p[c]) / 3.0;
        }
    }
    let (got, g) = run(Loss::Kl {
        alpha: a,
        temperature: temp,
    });
    close(got, a * ce + (1.0 - a) * kl, "kl");
    check_grad(&g, &grad, "kl");
}

#[test]
fn bce_with_logits_by_hand() {
    let z = [0.8f32, -2.5, 3.0];
    let y = [Some(1), Some(0), None];
    let s =
        Var::from_tensor(&Tensor::new(&[[z[0]], [z[1]], [z[2]]], &Device::Cpu).unwrap()).unwrap();
    let l = Loss::Bce.compute(s.as_tensor(), &y, None).unwrap();
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let want = (-(sig(0.8).ln()) - (1.0 - sig(-2.5)).ln()) / 2.0;
    close(scalar(&l), want, "bce");
    let g = l
        .backward()
        .unwrap()
        .get(s.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    close(g[0] as f64, (sig(0.8) - 1.0) / 2.0, "bce grad 0");
    close(g[1] as f64, sig(-2.5) / 2.0, "bce grad 1");
    assert_eq!(g[2], 0.0);
}

#[test]
fn a_batch_of_only_augmented_rows_trains_on_the_teacher_alone() {
    let s = t2(&S);
    let none = [None, None, None];
    let l = Loss::Distill { alpha: 0.5 }
        .compute(&s, &none, Some(&t2(&T)))
        .unwrap();
    let mse = distill_trainer::mse(&s, &t2(&T)).unwrap();
    close(scalar(&l), 0.5 * scalar(&mse), "distill without labels");
}

#[test]
fn distill_loss_matches_pytorch() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/seed_student_distill.safetensors");
    let g = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    let labels: Vec<Option<u32>> = g["labels"]
        .to_vec1::<i64>()
        .unwrap()
        .into_iter()
        .map(|l| Some(l as u32))
        .collect();
    let loss = Loss::Distill { alpha: 0.5 }
        .compute(&g["logits"], &labels, Some(&g["teacher_logits"]))
        .unwrap();
    close(
        scalar(&loss),
        g["loss"].to_vec1::<f32>().unwrap()[0] as f64,
        "loss vs PyTorch",
    );
    let ce = distill_trainer::cross_entropy(&g["logits"], &labels).unwrap();
    close(
        scalar(&ce),
        g["ce"].to_vec1::<f32>().unwrap()[0] as f64,
        "ce vs PyTorch",
    );
}
