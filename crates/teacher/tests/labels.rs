//! N classes with named labels end to end on the tiny BERT: fine-tuned on a 3-class toy task
//! (`red`, `green`, `blue`), saved, reloaded: `config.json` names the labels as transformers
//! reads them, and the reloaded teacher labels `[n, 3]` logits identical to the ones before
//! saving.

mod common;

use candle_core::Device;
use common::fixture;
use distill_data::{Dataset, Example, LabelSet};
use distill_teacher::finetune::train_step;
use distill_teacher::optim::{AdamW, AdamWConfig};
use distill_teacher::{
    finetune, label, Error, FinetuneConfig, HeadInit, InferOptions, LoadOptions, Teacher,
};
use serde_json::Value;

fn colours() -> LabelSet {
    LabelSet::new(vec!["red".into(), "green".into(), "blue".into()])
}

/// "… red …" sentences are `red`, and so on.
fn toy(n: usize, offset: usize) -> Dataset {
    let things = ["car", "door", "hat", "ball", "kite"];
    let labels = colours();
    let examples = (0..n)
        .map(|i| {
            let j = i + offset;
            let colour = labels.names()[j % 3].clone();
            Example {
                text: format!("the {} is {colour} .", things[j % things.len()]),
                text_pair: None,
                label: labels.index(&colour),
            }
        })
        .collect();
    Dataset {
        examples,
        source: None,
    }
}

fn quiet() -> InferOptions {
    InferOptions {
        batch_size: 7,
        progress: false,
    }
}

/// tiny-bert as a base model: its encoder and pooler without the 2-label classifier, which
/// a 3-class task cannot reuse (as `BertModel.save_pretrained` would leave it).
fn tiny_base() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture("tiny-bert").join(f), dir.path().join(f)).unwrap();
    }
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("tiny-bert/config.json")).unwrap())
            .unwrap();
    config["architectures"] = serde_json::json!(["BertModel"]);
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let mut tensors =
        candle_core::safetensors::load(fixture("tiny-bert/model.safetensors"), &Device::Cpu)
            .unwrap();
    tensors.retain(|name, _| !name.starts_with("classifier."));
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();
    dir
}

fn path(dir: &tempfile::TempDir) -> String {
    dir.path().to_str().unwrap().to_string()
}

#[test]
fn three_named_labels_survive_fine_tuning_saving_and_reloading() {
    let (base, out) = (tiny_base(), tempfile::tempdir().unwrap());
    let cfg = FinetuneConfig {
        teacher: path(&base),
        out: out.path().to_path_buf(),
        labels: colours(),
        lr: 1e-3,
        batch_size: 8,
        max_steps: Some(8),
        progress: false,
        ..Default::default()
    };
    let (train, dev) = (toy(60, 0), toy(15, 1));
    let report = finetune(&cfg, &train, &dev, &Device::Cpu).unwrap();
    assert_eq!(report.steps, 8);

    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(
        config["id2label"],
        serde_json::json!({"0": "red", "1": "green", "2": "blue"})
    );
    assert_eq!(
        config["label2id"],
        serde_json::json!({"red": 0, "green": 1, "blue": 2})
    );
    assert_eq!(config["architectures"][0], "BertForSequenceClassification");

    let saved = Teacher::load(
        out.path().to_str().unwrap(),
        &LoadOptions::default(),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(saved.labels(), ["red", "green", "blue"]);
    assert_eq!(saved.model.num_labels(), 3);
    saved.check_labels(&colours()).unwrap();
    let reordered = LabelSet::new(vec!["blue".into(), "green".into(), "red".into()]);
    assert!(matches!(
        saved.check_labels(&reordered),
        Err(Error::LabelMismatch { .. })
    ));
    let logits = label(&saved, &dev, &quiet()).unwrap();
    assert_eq!((logits.len(), logits.num_labels), (15, 3));
    assert_eq!(logits.meta.labels, ["red", "green", "blue"]);
}

#[test]
fn a_trained_three_class_head_labels_identically_after_saving() {
    let load = LoadOptions {
        labels: Some(colours().names().to_vec()),
        head: HeadInit::Random,
        ..Default::default()
    };
    let base = tiny_base();
    let teacher = Teacher::load(&path(&base), &load, &Device::Cpu).unwrap();
    let train = toy(24, 0);
    let encoded = teacher.tokenizer.encode_data(&train).unwrap();
    let ys = train.labels().unwrap();
    let mut opt = AdamW::new(teacher.model.params().iter(), AdamWConfig::default()).unwrap();
    teacher.model.seed_dropout(3);
    let rows: Vec<usize> = (0..train.len()).collect();
    for chunk in rows.chunks(8) {
        let batch = encoded
            .batch(chunk, teacher.tokenizer.pad_id(), teacher.device())
            .unwrap();
        let labels: Vec<u32> = chunk.iter().map(|&i| ys[i]).collect();
        let loss = train_step(&teacher, &mut opt, &batch, &labels, 1e-3, 1.0).unwrap();
        assert!(loss.is_finite());
    }
    let data = toy(11, 2);
    let before = label(&teacher, &data, &quiet()).unwrap();
    assert_eq!((before.len(), before.num_labels), (11, 3));

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("teacher");
    teacher.save(&out).unwrap();
    let reloaded =
        Teacher::load(out.to_str().unwrap(), &LoadOptions::default(), &Device::Cpu).unwrap();
    assert_eq!(reloaded.labels(), ["red", "green", "blue"]);
    let after = label(&reloaded, &data, &quiet()).unwrap();
    assert_eq!(after.logits, before.logits, "bit for bit");
    assert_eq!(after.meta.labels, before.meta.labels);
}

#[test]
fn fine_tuning_needs_the_callers_labels() {
    let out = tempfile::tempdir().unwrap();
    let cfg = FinetuneConfig {
        teacher: fixture("tiny-bert").to_str().unwrap().into(),
        out: out.path().join("t"),
        progress: false,
        ..Default::default()
    };
    let err = finetune(&cfg, &toy(6, 0), &toy(3, 0), &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("two labels"), "{err}");
}

#[test]
fn a_two_label_head_starts_anew_for_three_labels_when_fine_tuning_only() {
    let fine_tuning = LoadOptions {
        labels: Some(colours().names().to_vec()),
        head: HeadInit::Random,
        ..Default::default()
    };
    let tiny = fixture("tiny-bert");
    let teacher = Teacher::load(tiny.to_str().unwrap(), &fine_tuning, &Device::Cpu).unwrap();
    assert_eq!(teacher.model.num_labels(), 3);
    let logits = label(&teacher, &toy(4, 0), &quiet()).unwrap();
    assert_eq!(logits.num_labels, 3);
    // Labelling with that checkpoint as 3 classes is refused: its head has 2.
    let labelling = LoadOptions {
        labels: Some(colours().names().to_vec()),
        ..Default::default()
    };
    assert!(Teacher::load(tiny.to_str().unwrap(), &labelling, &Device::Cpu).is_err());
}
