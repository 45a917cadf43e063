//! Students that start from what the teacher knows: WordPiece tokens (`--tokenizer
//! teacher`, on the tiny random BERT of `fixtures/tiny-bert`) and an initial
//! embedding table computed for the run's vocabulary (`--init-embeddings teacher`; the
//! teacher's PCA table itself is tested in distill-teacher).

mod common;

use std::path::{Path, PathBuf};

use candle_core::Device;
use common::sst2_slice;
use distill_data::Vocab;
use distill_student::{Predictor, StudentModel};
use distill_trainer::{BoxError, Error, InitEmbeddings, StudentRun};

/// A table whose row `i` is `i / 1000` in every column.
fn ramp(vocab: &Vocab, dim: usize) -> Result<Vec<f32>, BoxError> {
    Ok((0..vocab.len() * dim)
        .map(|k| (k / dim) as f32 / 1000.0)
        .collect())
}

fn tiny_bert() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny-bert")
}

#[test]
fn a_wordpiece_student_trains_saves_and_reads_sub_words() {
    let tmp = tempfile::tempdir().unwrap();
    let train = sst2_slice(tmp.path(), 300);
    let out = tmp.path().join("run");
    let mut run = StudentRun::new(train, out.clone());
    run.wordpiece = Some(tiny_bert().join("tokenizer.json"));
    run.init_embeddings = Some(InitEmbeddings::new("ramp", ramp));
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

#[test]
fn an_initial_table_of_the_wrong_size_or_not_finite_is_refused_naming_its_source() {
    let tmp = tempfile::tempdir().unwrap();
    let train = sst2_slice(tmp.path(), 100);
    type Table = fn(&Vocab, usize) -> Result<Vec<f32>, BoxError>;
    let bad: [(&str, Table); 3] = [
        ("short", |_, dim| Ok(vec![0.0; dim])),
        ("nan", |v, dim| Ok(vec![f32::NAN; v.len() * dim])),
        ("failing", |_, _| Err("no such teacher".into())),
    ];
    for (name, table) in bad {
        let mut run = StudentRun::new(train.clone(), tmp.path().join(name));
        run.init_embeddings = Some(InitEmbeddings::new(name, table));
        run.train.epochs = 1;
        run.train.progress = false;
        let err = run.run(&Device::Cpu).unwrap_err();
        assert!(matches!(err, Error::InitialEmbeddings { .. }), "{err}");
        assert!(err.to_string().contains(name), "{err}");
    }
}
