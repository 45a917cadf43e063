//! A pair student trained end to end on a synthetic pair task (do the two texts share a
//! word?): it learns, resuming equals an uninterrupted run, and the saved folder serves the
//! same logits as the trainer's batched evaluation.

use std::path::Path;

use candle_core::Device;
use distill_data::{LabelSet, Normalizer, TextEncoder, Tokenization, VocabBuilder};
use distill_student::{Predictor, StudentConfig, StudentModel, StudentPreset};
use distill_trainer::{predict_logits, train, EncodedSet, Loss, TrainConfig, TrainOutcome};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const WORDS: usize = 16;

/// `n` pairs of 1–4 distinct words; label 1 ("yes") when they share a word, balanced.
fn pairs(n: usize, seed: u64) -> (Vec<String>, Vec<String>, Vec<Option<u32>>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut a, mut b, mut y) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let mut words: Vec<usize> = (0..WORDS).collect();
        words.shuffle(&mut rng);
        let (la, lb) = (rng.gen_range(1..=4), rng.gen_range(1..=4));
        let first = &words[..la];
        let mut second: Vec<usize> = words[la..la + lb].to_vec();
        let share = i % 2 == 1;
        if share {
            second[rng.gen_range(0..lb)] = first[rng.gen_range(0..la)];
        }
        let text = |ws: &[usize]| {
            ws.iter()
                .map(|w| format!("w{w}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        a.push(text(first));
        b.push(text(&second));
        y.push(Some(u32::from(share)));
    }
    (a, b, y)
}

struct Task {
    encoder: TextEncoder,
    student: StudentConfig,
    train: EncodedSet,
    val: EncodedSet,
}

fn task() -> Task {
    let words: Vec<Vec<String>> = (0..WORDS).map(|w| vec![format!("w{w}")]).collect();
    let vocab = VocabBuilder::default().build(words.iter().map(Vec::as_slice));
    let encoder = TextEncoder::new(Tokenization::Words(Normalizer::plain()), vocab);
    let labels = LabelSet::new(vec!["no".into(), "yes".into()]);
    let encode = |n, seed| {
        let (a, b, y) = pairs(n, seed);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let b: Vec<&str> = b.iter().map(String::as_str).collect();
        EncodedSet::encode_pairs(&a, &b, y, &encoder, labels.len())
    };
    let (train, val) = (encode(1200, 1), encode(300, 2));
    let mut preset = StudentPreset::original();
    preset.hidden_size = 16;
    preset.dropout = 0.1;
    let mut student = StudentConfig::new(&preset, encoder.vocab.len(), 2)
        .with_labels(&labels)
        .with_pair(true);
    student.normalize = false;
    Task {
        encoder,
        student,
        train,
        val,
    }
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        lr: 1e-2,
        seed: 7,
        loss: Loss::Ce,
        progress: false,
        ..TrainConfig::default()
    }
}

fn run(t: &Task, out: &Path, epochs: usize) -> TrainOutcome {
    train(
        &config(epochs),
        &t.student,
        &t.encoder,
        &t.train,
        &t.val,
        out,
        &Device::Cpu,
    )
    .unwrap()
}

#[test]
fn a_pair_student_learns_resumes_and_serves_what_it_evaluated() {
    let t = task();
    let tmp = tempfile::tempdir().unwrap();
    let (a, c) = (tmp.path().join("a"), tmp.path().join("c"));
    let out = run(&t, &a, 4);
    let recs = &out.records;
    assert!(
        recs.last().unwrap().train_loss < recs[0].train_loss,
        "training loss should fall: {recs:?}"
    );
    let best = recs.iter().find(|r| r.epoch == out.best_epoch).unwrap();
    assert!(best.val_acc > 0.75, "no better than chance: {recs:?}");

    // Stopped after one epoch and resumed to four: as if never interrupted.
    run(&t, &c, 1);
    let resumed = run(&t, &c, 4);
    for (x, y) in recs.iter().zip(&resumed.records) {
        assert_eq!(
            (x.train_loss, x.val_loss, x.val_acc),
            (y.train_loss, y.val_loss, y.val_acc)
        );
    }
    let weights = |d: &Path| std::fs::read(d.join("best/model.safetensors")).unwrap();
    assert_eq!(
        weights(&a),
        weights(&c),
        "resumed run must end with the same model"
    );

    // The saved pair model: batched evaluation (rows put back in order) = the predictor.
    let model = StudentModel::load(&a.join("best"), &Device::Cpu).unwrap();
    assert!(model.config.pair);
    assert_eq!(model.config.label_set().names(), ["no", "yes"]);
    let batched = predict_logits(&model.classifier, &t.val, 64, &Device::Cpu).unwrap();
    let predictor = Predictor::new(&model).unwrap();
    let served = predictor
        .logits_pair_batch(&t.val.ids, t.val.pair_ids.as_ref().unwrap())
        .unwrap();
    for (x, y) in batched.iter().zip(&served) {
        for (u, v) in x.iter().zip(y) {
            assert!((u - v).abs() < 1e-4, "{x:?} vs {y:?}");
        }
    }
}

#[test]
fn a_pair_student_refuses_single_texts_and_the_reverse() {
    let t = task();
    let tmp = tempfile::tempdir().unwrap();
    let single = EncodedSet {
        pair_ids: None,
        ..t.val.clone()
    };
    let e = train(
        &config(1),
        &t.student,
        &t.encoder,
        &t.train,
        &single,
        tmp.path(),
        &Device::Cpu,
    )
    .unwrap_err();
    assert!(e.to_string().contains("the validation set does not"), "{e}");
    let e = train(
        &config(1),
        &t.student.clone().with_pair(false),
        &t.encoder,
        &t.train,
        &t.val,
        tmp.path(),
        &Device::Cpu,
    )
    .unwrap_err();
    assert!(e.to_string().contains("reads single texts"), "{e}");
}
