//! Students that start from what the teacher knows: WordPiece tokens (`--tokenizer
//! teacher`) and PCA-reduced teacher embeddings (`--init-embeddings teacher`), on the tiny
//! random BERT of the teacher crate's fixtures.

mod common;

use std::path::{Path, PathBuf};

use candle_core::Device;
use common::sst2_slice;
use distill_data::VocabBuilder;
use distill_student::{Predictor, StudentModel};
use distill_trainer::{teacher_embeddings, StudentRun};

fn tiny_bert() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../teacher/tests/fixtures/tiny-bert")
}

#[test]
fn teacher_embeddings_are_centred_unit_variance_and_padding_is_zero() {
    let tokens: Vec<Vec<String>> = [
        "the film is good",
        "a dull , lifeless plot",
        "[MASK] acting",
    ]
    .iter()
    .map(|s| s.split(' ').map(String::from).collect())
    .collect();
    let mut builder = VocabBuilder::default();
    builder.specials.push("<mask>".into());
    let vocab = builder.build(tokens.iter().map(Vec::as_slice));
    let dim = 4;
    let table = teacher_embeddings(&tiny_bert(), &vocab, dim).unwrap();
    assert_eq!(table.len(), vocab.len() * dim);
    let row = |t: &str| &table[vocab.id(t) as usize * dim..][..dim];
    assert!(row("<pad>").iter().all(|&x| x == 0.0), "padding row");
    assert!(table.iter().all(|x| x.is_finite()));
    // Over the rows PCA saw (all but <pad>): zero mean, mean variance 1 per dimension.
    let rows: Vec<&[f32]> = vocab
        .itos()
        .iter()
        .filter(|t| *t != "<pad>")
        .map(|t| row(t))
        .collect();
    let n = rows.len() as f64;
    let mut total_var = 0.0;
    for d in 0..dim {
        let mean = rows.iter().map(|r| r[d] as f64).sum::<f64>() / n;
        assert!(mean.abs() < 1e-5, "dimension {d} mean {mean}");
        total_var += rows
            .iter()
            .map(|r| (r[d] as f64 - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0);
    }
    assert!((total_var / dim as f64 - 1.0).abs() < 1e-4, "{total_var}");
    // Variance decreases along the components; distinct words get distinct rows.
    let var = |d: usize| rows.iter().map(|r| (r[d] as f64).powi(2)).sum::<f64>();
    assert!(var(0) >= var(1) && var(1) >= var(dim - 1));
    assert_ne!(row("good"), row("dull"));
    // Deterministic.
    assert_eq!(
        table,
        teacher_embeddings(&tiny_bert(), &vocab, dim).unwrap()
    );
}

#[test]
fn a_wordpiece_student_trains_saves_and_reads_sub_words() {
    let tmp = tempfile::tempdir().unwrap();
    let train = sst2_slice(tmp.path(), 300);
    let out = tmp.path().join("run");
    let mut run = StudentRun::new(train, out.clone());
    run.wordpiece = Some(tiny_bert().join("tokenizer.json"));
    run.init_embeddings = Some(tiny_bert());
    run.train.epochs = 1;
    run.train.progress = false;
    run.run(&Device::Cpu).unwrap();

    let best = out.join("best");
    assert!(best.join("tokenizer.json").is_file());
    let model = StudentModel::load(&best, &Device::Cpu).unwrap();
    assert_eq!(model.config.tokenizer, "wordpiece");
    let vocab = &model.encoder.vocab;
    assert!(
        vocab.itos().iter().any(|t| t.starts_with("##")),
        "sub-words"
    );
    assert!(!vocab.itos().iter().any(|t| t == "[PAD]" || t == "[CLS]"));
    // The saved folder reads text as training did, and gives finite predictions.
    let predictor = Predictor::new(&model).unwrap();
    let text = "the film 's unbelievably charming";
    assert_eq!(predictor.encode(text), model.encoder.encode(text));
    let p = predictor.predict(text);
    assert!(p.logits.iter().all(|x| x.is_finite()));
    assert!(predictor.encode("").is_empty());
}
