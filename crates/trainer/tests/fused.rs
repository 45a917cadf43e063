//! The fused training step against the candle path (the reference) and PyTorch's goldens:
//! the loss and every gradient (embedding rows included) for several shapes, lengths with
//! empty and very long rows, single and pair students, 1, 2 and 5 outputs, every loss with
//! dropout on; parameters after a whole step with Adam; the PyTorch fixtures of the student
//! crate reproduced by the fused step.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use distill_student::{BiLstmClassifier, StudentConfig, StudentPreset};
use distill_trainer::fused::{FusedStudent, FusedTrainer, Gradients, Params, StepBatch};
use distill_trainer::optim::{Adam, AdamConfig};
use distill_trainer::row_adam::{row_gradients, RowAdam};
use distill_trainer::Loss;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const EMBEDDING: &str = "embedding.weight";
const VOCAB: usize = 40;

/// max|a − b| / max|b|: error relative to the reference's scale.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "sizes");
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    let scale = b.iter().map(|y| y.abs()).fold(0.0, f32::max);
    diff / scale.max(1e-12)
}

fn assert_close(what: &str, a: &[f32], b: &[f32], tol: f32) -> f32 {
    let e = rel_err(a, b);
    assert!(e <= tol, "{what}: relative error {e:e} > {tol:e}");
    e
}

/// A batch as the trainer builds one.
struct Owned {
    ids: Vec<u32>,
    lengths: Vec<usize>,
    time: usize,
    pair: bool,
    labels: Vec<Option<u32>>,
    teacher: Vec<f32>,
}

impl Owned {
    /// Random ids for rows of `lengths` (pairs: first texts, then second texts), labels
    /// (unlabelled with probability `unlabelled`) and teacher logits for `c` outputs.
    fn random(
        lengths: &[usize],
        pair: bool,
        c: usize,
        unlabelled: f64,
        rng: &mut impl Rng,
    ) -> Self {
        let time = lengths.iter().copied().max().unwrap_or(0).max(1);
        let mut ids = vec![1u32; lengths.len() * time]; // 1 = <pad>
        for (r, &len) in lengths.iter().enumerate() {
            for t in 0..len {
                ids[r * time + t] = rng.gen_range(2..VOCAB as u32);
            }
        }
        let examples = if pair {
            lengths.len() / 2
        } else {
            lengths.len()
        };
        let classes = c.max(2) as u32;
        let labels = (0..examples)
            .map(|_| (!rng.gen_bool(unlabelled)).then(|| rng.gen_range(0..classes)))
            .collect();
        let teacher = (0..examples * c)
            .map(|_| rng.gen_range(-3.0..3.0))
            .collect();
        Self {
            ids,
            lengths: lengths.to_vec(),
            time,
            pair,
            labels,
            teacher,
        }
    }

    fn view(&self, loss: &Loss) -> StepBatch<'_> {
        StepBatch {
            ids: &self.ids,
            lengths: &self.lengths,
            time: self.time,
            pair: self.pair,
            labels: &self.labels,
            teacher: loss.needs_teacher().then_some(&self.teacher[..]),
        }
    }
}

fn config(layers: usize, e: usize, h: usize, c: usize, pair: bool) -> StudentConfig {
    let preset = StudentPreset {
        name: "test".into(),
        embedding_dim: e,
        hidden_size: h,
        num_layers: layers,
        dropout: 0.3,
    };
    StudentConfig::new(&preset, VOCAB, c).with_pair(pair)
}

fn init(config: &StudentConfig, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    BiLstmClassifier::init_tensors(config, &mut rng, &Device::Cpu).unwrap()
}

/// What the candle path computes for one batch: the loss, every dense gradient and the
/// embedding's row gradients as a dense `(V, E)` table.
struct Reference {
    loss: f64,
    dense: HashMap<String, Vec<f32>>,
    embedding: Vec<f32>,
}

/// The candle engine's step up to the gradients, as `train` runs it.
fn candle_gradients(
    config: &StudentConfig,
    tensors: &HashMap<String, Tensor>,
    loss: &Loss,
    b: &StepBatch,
    dropout_seed: Option<u64>,
) -> Reference {
    let vars: HashMap<String, Var> = tensors
        .iter()
        .filter(|(n, _)| n.as_str() != EMBEDDING)
        .map(|(n, t)| (n.clone(), Var::from_tensor(t).unwrap()))
        .collect();
    let mut ts: HashMap<String, Tensor> = vars
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect();
    ts.insert(EMBEDDING.into(), tensors[EMBEDDING].clone());
    let model = BiLstmClassifier::from_tensors(config, &ts).unwrap();
    let rows = b.lengths.len();
    let ids = Tensor::from_slice(b.ids, (rows, b.time), &Device::Cpu).unwrap();
    let x = Var::from_tensor(&model.embed(&ids).unwrap())
        .unwrap()
        .as_tensor()
        .clone();
    let mut rng = dropout_seed.map(ChaCha8Rng::seed_from_u64);
    let rng = rng.as_mut().map(|r| r as &mut dyn RngCore);
    let logits = if b.pair {
        model.forward_embedded_pair(&x, b.lengths, rng).unwrap()
    } else {
        model.forward_embedded(&x, b.lengths, rng).unwrap()
    };
    let c = config.num_outputs;
    let teacher = b
        .teacher
        .map(|t| Tensor::from_slice(t, (t.len() / c, c), &Device::Cpu).unwrap());
    let l = loss.compute(&logits, b.labels, teacher.as_ref()).unwrap();
    let grads = l.backward().unwrap();
    let dense = vars
        .iter()
        .map(|(n, v)| {
            let g = match grads.get(v.as_tensor()) {
                Some(g) => g.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                None => vec![0.0; v.elem_count()],
            };
            (n.clone(), g)
        })
        .collect();
    let e = config.embedding_dim;
    let gx = match grads.get(&x) {
        Some(g) => g.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        None => vec![0.0; x.elem_count()],
    };
    let (ids, g) = row_gradients(b.ids, b.lengths, b.time, &gx, e);
    Reference {
        loss: l.to_scalar::<f32>().unwrap() as f64,
        dense,
        embedding: scatter(&ids, &g, e),
    }
}

/// Row gradients as a dense `(V, E)` table.
fn scatter(rows: &[u32], grads: &[f32], e: usize) -> Vec<f32> {
    let mut table = vec![0.0f32; VOCAB * e];
    for (k, &r) in rows.iter().enumerate() {
        let r = r as usize;
        for (t, g) in table[r * e..(r + 1) * e]
            .iter_mut()
            .zip(&grads[k * e..(k + 1) * e])
        {
            *t += g;
        }
    }
    table
}

fn fused_gradients(
    config: &StudentConfig,
    tensors: &HashMap<String, Tensor>,
    loss: &Loss,
    b: &StepBatch,
    dropout_seed: Option<u64>,
) -> (f64, Params, Gradients) {
    let params = Params::from_tensors(config, tensors).unwrap();
    let mut student = FusedStudent::new(config, params.clone());
    let mut rng = dropout_seed.map(ChaCha8Rng::seed_from_u64);
    let rng = rng.as_mut().map(|r| r as &mut dyn RngCore);
    let mut grads = Gradients::default();
    let value = student.gradients(loss, b, rng, &mut grads).unwrap();
    (value, params, grads)
}

/// Loss and every gradient of the fused step against the candle path; returns the worst
/// relative error.
fn compare(what: &str, config: &StudentConfig, loss: &Loss, batch: &Owned, seed: u64) -> f32 {
    let tensors = init(config, seed);
    let b = batch.view(loss);
    let dropout = Some(seed + 100);
    let want = candle_gradients(config, &tensors, loss, &b, dropout);
    let (got, params, grads) = fused_gradients(config, &tensors, loss, &b, dropout);
    let mut worst = assert_close(
        &format!("{what}: loss"),
        &[got as f32],
        &[want.loss as f32],
        1e-5,
    );
    assert_eq!(grads.dense.len(), params.names.len());
    for (name, g) in params.names.iter().zip(&grads.dense) {
        let e = assert_close(&format!("{what}: grad {name}"), g, &want.dense[name], 1e-5);
        worst = worst.max(e);
    }
    let table = scatter(&grads.rows, &grads.row_grads, config.embedding_dim);
    let e = assert_close(
        &format!("{what}: embedding rows"),
        &table,
        &want.embedding,
        1e-5,
    );
    worst.max(e)
}

/// Lengths with empty rows, sorted and unsorted.
const SHORT: &[usize] = &[5, 0, 3, 1, 7, 0, 2, 7];
/// A few very long rows beside short and empty ones.
const LONG: &[usize] = &[120, 97, 3, 0, 64, 120];

#[test]
fn single_text_gradients_match_the_candle_path() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut worst = 0.0f32;
    let losses = [
        Loss::Ce,
        Loss::Distill { alpha: 0.5 },
        Loss::WeightedMse { alpha: 0.3, k: 1.5 },
        Loss::Kl {
            alpha: 0.4,
            temperature: 2.0,
        },
    ];
    for (layers, e, h) in [
        (1, 16, 8),
        (2, 16, 8),
        (1, 64, 64),
        (2, 64, 64),
        (1, 16, 20),
    ] {
        for c in [2, 5] {
            for (k, loss) in losses.iter().enumerate() {
                for (lens, name) in [(SHORT, "short"), (LONG, "long")] {
                    let cfg = config(layers, e, h, c, false);
                    let batch = Owned::random(lens, false, c, 0.3, &mut rng);
                    let what = format!("{layers}×{e}/{h}, C={c}, {loss:?}, {name} rows");
                    worst = worst.max(compare(&what, &cfg, loss, &batch, k as u64));
                }
            }
        }
    }
    // BCE: one output.
    for lens in [SHORT, LONG] {
        let cfg = config(1, 16, 8, 1, false);
        let batch = Owned::random(lens, false, 1, 0.2, &mut rng);
        worst = worst.max(compare("bce", &cfg, &Loss::Bce, &batch, 9));
    }
    println!("worst relative error {worst:e}");
}

#[test]
fn pair_gradients_match_the_candle_path() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut worst = 0.0f32;
    // First texts, then second texts: empty on either side, and both.
    let short: &[usize] = &[5, 0, 3, 1, 0, 2, 4, 6, 1, 0];
    let long: &[usize] = &[100, 3, 0, 7, 0, 80];
    for (layers, e, h) in [(1, 16, 8), (2, 16, 8), (1, 64, 64)] {
        for c in [2, 5] {
            for loss in [Loss::Ce, Loss::Distill { alpha: 0.5 }] {
                for (lens, name) in [(short, "short"), (long, "long")] {
                    let cfg = config(layers, e, h, c, true);
                    let batch = Owned::random(lens, true, c, 0.3, &mut rng);
                    let what = format!("pair {layers}×{e}/{h}, C={c}, {loss:?}, {name} rows");
                    worst = worst.max(compare(&what, &cfg, &loss, &batch, 3));
                }
            }
        }
    }
    println!("worst relative error {worst:e}");
}

#[test]
fn a_batch_of_empty_texts_reads_the_zero_states() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for (layers, pair) in [(1, false), (2, false), (1, true)] {
        let cfg = config(layers, 16, 8, 2, pair);
        let batch = Owned::random(&[0, 0, 0, 0], pair, 2, 0.0, &mut rng);
        compare("all empty", &cfg, &Loss::Distill { alpha: 0.5 }, &batch, 8);
    }
}

#[test]
fn a_batch_without_labels_trains_on_the_teacher_alone() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let cfg = config(1, 16, 8, 3, false);
    let batch = Owned::random(SHORT, false, 3, 1.0, &mut rng);
    assert!(batch.labels.iter().all(Option::is_none));
    compare("unlabelled", &cfg, &Loss::Distill { alpha: 0.5 }, &batch, 5);
}

/// The candle engine's whole step (Adam on the dense tensors, lazy rows on the embedding).
fn candle_step(
    config: &StudentConfig,
    tensors: &HashMap<String, Tensor>,
    loss: &Loss,
    b: &StepBatch,
    lr: f64,
) -> (HashMap<String, Vec<f32>>, Reference) {
    let want = candle_gradients(config, tensors, loss, b, Some(11));
    let adam_config = AdamConfig {
        lr,
        ..AdamConfig::default()
    };
    // The gradients as computed, applied through the optimisers the candle engine uses.
    let mut out = HashMap::new();
    let mut vars = Vec::new();
    // Σ var·g has exactly the gradient g.
    let mut total = Tensor::new(0f32, &Device::Cpu).unwrap();
    for (name, t) in tensors.iter().filter(|(n, _)| n.as_str() != EMBEDDING) {
        let var = Var::from_tensor(&t.copy().unwrap()).unwrap();
        let g = Tensor::from_slice(&want.dense[name], t.shape(), &Device::Cpu).unwrap();
        let term = (var.as_tensor() * g).unwrap().sum_all().unwrap();
        total = (total + term).unwrap();
        vars.push((name.clone(), var));
    }
    let mut adam = Adam::new(vars.clone(), adam_config);
    adam.step(&total.backward().unwrap()).unwrap();
    for (name, var) in vars {
        out.insert(
            name,
            var.as_tensor().flatten_all().unwrap().to_vec1().unwrap(),
        );
    }
    let e = config.embedding_dim;
    let table = tensors[EMBEDDING].copy().unwrap();
    let mut rows = RowAdam::new(VOCAB, e, adam_config);
    let touched: Vec<u32> = (0..VOCAB as u32)
        .filter(|&r| {
            want.embedding[r as usize * e..(r as usize + 1) * e]
                .iter()
                .any(|&g| g != 0.0)
        })
        .collect();
    let g: Vec<f32> = touched
        .iter()
        .flat_map(|&r| want.embedding[r as usize * e..(r as usize + 1) * e].to_vec())
        .collect();
    rows.step(&table, lr, &touched, &g).unwrap();
    rows.sync(&table).unwrap();
    out.insert(
        EMBEDDING.into(),
        table.flatten_all().unwrap().to_vec1().unwrap(),
    );
    (out, want)
}

#[test]
fn after_a_whole_step_the_parameters_agree_with_the_candle_path() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    for (layers, e, h, pair) in [(1, 16, 8, false), (2, 64, 64, false), (1, 16, 8, true)] {
        let cfg = config(layers, e, h, 2, pair);
        let lens: &[usize] = if pair { &[4, 0, 6, 3, 2, 5] } else { SHORT };
        let batch = Owned::random(lens, pair, 2, 0.2, &mut rng);
        let loss = Loss::Distill { alpha: 0.5 };
        let tensors = init(&cfg, 8);
        let lr = 1e-3;
        let (want, grads) = candle_step(&cfg, &tensors, &loss, &batch.view(&loss), lr);
        let adam = AdamConfig {
            lr,
            ..AdamConfig::default()
        };
        let mut fused = FusedTrainer::new(&cfg, &tensors, adam).unwrap();
        let mut drop = ChaCha8Rng::seed_from_u64(11);
        fused
            .step(&loss, &batch.view(&loss), Some(&mut drop))
            .unwrap();
        fused.sync().unwrap();
        let got = fused.tensors(&Device::Cpu).unwrap();
        let lr = lr as f32;
        for (name, w) in &want {
            let before = tensors[name]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let g = got[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let grad = if name == EMBEDDING {
                &grads.embedding
            } else {
                &grads.dense[name]
            };
            let max_grad = grad.iter().map(|x| x.abs()).fold(0.0f32, f32::max);
            // Adam's first step moves a weight by lr·g/(|g| + ε): ±lr for any gradient
            // element resolved beyond rounding, so those moves must agree (to f32 rounding
            // of the weight); an element within rounding of 0 may go either way by up to lr.
            let mut worst = 0.0f32;
            for (i, ((a, b), p)) in g.iter().zip(w).zip(&before).enumerate() {
                let (moved_f, moved_c) = (a - p, b - p);
                assert!(moved_f.abs() <= 1.01 * lr, "{name}[{i}] moved {moved_f:e}");
                if grad[i].abs() >= 1e-4 * max_grad {
                    worst = worst.max((moved_f - moved_c).abs());
                }
            }
            println!("{layers}×{e}/{h} pair {pair}: {name} moves differ by ≤ {worst:e}");
            assert!(
                worst <= 1e-3 * lr,
                "{layers}×{e}/{h} pair {pair}: {name} moved differently by {worst:e}"
            );
        }
    }
}

/// Several steps of a student large enough that every part of the step forks (the two
/// directions, the embedding's catch-up, the dense update), on two threads and on one: the
/// same parameters and optimiser state, bit for bit. Small batches in between leave rows
/// idle, so the catch-ups replay skipped steps.
#[test]
fn two_threads_train_exactly_as_one() {
    let cfg = config(2, 256, 32, 3, false);
    let tensors = init(&cfg, 5);
    let loss = Loss::Distill { alpha: 0.5 };
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let batches: Vec<Owned> = (0..6)
        .map(|i| {
            let lens: Vec<usize> = if i % 2 == 0 {
                (0..12).map(|r| 10 + r % 7).collect()
            } else {
                vec![2, 0, 3]
            };
            Owned::random(&lens, false, 3, 0.2, &mut rng)
        })
        .collect();
    let train = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut t = FusedTrainer::new(&cfg, &tensors, AdamConfig::default()).unwrap();
            assert_eq!(t.threads(), threads);
            let mut drop = ChaCha8Rng::seed_from_u64(3);
            let losses: Vec<f64> = batches
                .iter()
                .map(|b| t.step(&loss, &b.view(&loss), Some(&mut drop)).unwrap())
                .collect();
            t.sync().unwrap();
            (losses, t.tensors(&Device::Cpu).unwrap(), t.state().unwrap())
        })
    };
    let (one, two) = (train(1), train(2));
    assert_eq!(one.0, two.0, "losses");
    for (what, a, b) in [("parameter", &one.1, &two.1), ("optimiser", &one.2, &two.2)] {
        assert_eq!(a.len(), b.len());
        for (name, x) in a {
            // f32 → f64 is exact, and the state holds both.
            let values = |t: &Tensor| {
                let t = t.flatten_all().unwrap().to_dtype(DType::F64).unwrap();
                t.to_vec1::<f64>().unwrap()
            };
            assert_eq!(values(x), values(&b[name]), "{what} {name}");
        }
    }
}

fn fixture(name: &str) -> HashMap<String, Tensor> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name);
    candle_core::safetensors::load(&path, &Device::Cpu).expect("fixture loads")
}

fn vec_of(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Batch-first ids and lengths of a fixture's time-major `(T, B)` ids.
fn side(g: &HashMap<String, Tensor>, ids: &str, lengths: &str) -> (Vec<Vec<u32>>, Vec<usize>) {
    let ids = g[ids].t().unwrap().to_dtype(DType::U32).unwrap();
    let lengths: Vec<usize> = g[lengths]
        .to_vec1::<i64>()
        .unwrap()
        .into_iter()
        .map(|l| l as usize)
        .collect();
    (ids.to_vec2::<u32>().unwrap(), lengths)
}

/// A fixture's student through the fused step (no dropout) against PyTorch's numbers.
fn golden(file: &str, config: StudentConfig, texts: &[(&str, &str)]) {
    let g = fixture(file);
    let mut rows: Vec<Vec<u32>> = Vec::new();
    let mut lengths = Vec::new();
    for (ids, lens) in texts {
        let (r, l) = side(&g, ids, lens);
        rows.extend(r);
        lengths.extend(l);
    }
    let time = rows.iter().map(Vec::len).max().unwrap();
    let ids: Vec<u32> = rows
        .iter()
        .flat_map(|r| {
            let mut r = r.clone();
            r.resize(time, 1);
            r
        })
        .collect();
    let labels: Vec<Option<u32>> = g["labels"]
        .to_vec1::<i64>()
        .unwrap()
        .into_iter()
        .map(|y| Some(y as u32))
        .collect();
    let teacher = vec_of(&g["teacher_logits"]);
    let batch = StepBatch {
        ids: &ids,
        lengths: &lengths,
        time,
        pair: config.pair,
        labels: &labels,
        teacher: Some(&teacher),
    };
    let params = Params::from_tensors(&config, &g).unwrap();
    let mut student = FusedStudent::new(&config, params.clone());
    let logits = student.logits(&batch, None).unwrap().to_vec();
    let mut worst = assert_close("logits", &logits, &vec_of(&g["logits"]), 1e-5);
    let mut grads = Gradients::default();
    let loss = student
        .gradients(&Loss::Distill { alpha: 0.5 }, &batch, None, &mut grads)
        .unwrap();
    worst = worst.max(assert_close(
        "loss",
        &[loss as f32],
        &vec_of(&g["loss"]),
        1e-5,
    ));
    for (name, grad) in params.names.iter().zip(&grads.dense) {
        let e = assert_close(name, grad, &vec_of(&g[&format!("grad_{name}")]), 1e-5);
        worst = worst.max(e);
    }
    let e = config.embedding_dim;
    let mut table = vec![0.0f32; config.vocab_size * e];
    for (k, &r) in grads.rows.iter().enumerate() {
        table[r as usize * e..(r as usize + 1) * e]
            .copy_from_slice(&grads.row_grads[k * e..(k + 1) * e]);
    }
    let want = vec_of(&g["grad_embedding.weight"]);
    worst = worst.max(assert_close("embedding", &table, &want, 1e-5));
    println!("{file}: worst relative error {worst:e}");
}

#[test]
fn the_fused_step_reproduces_pytorchs_single_text_student() {
    let mut config = StudentConfig::new(&StudentPreset::original(), 50, 2);
    config.dropout = 0.0;
    golden(
        "seed_student_distill.safetensors",
        config,
        &[("ids", "lengths")],
    );
}

#[test]
fn the_fused_step_reproduces_pytorchs_pair_student() {
    let mut config = StudentConfig::new(&StudentPreset::original(), 50, 3).with_pair(true);
    config.dropout = 0.0;
    golden(
        "student_pair.safetensors",
        config,
        &[("ids_a", "lengths_a"), ("ids_b", "lengths_b")],
    );
}
