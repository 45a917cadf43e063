//! Loading teachers from folders: layouts with and without the `bert.` prefix, heads
//! initialised when missing (for fine-tuning only), a tokenizer built from `vocab.txt`,
//! clear errors for broken folders and other labels, and the saved checkpoint round trip.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use common::tensor_max_abs_diff;
use distill_data::LabelSet;
use distill_teacher::{Error, HeadInit, LoadOptions, Mode, Teacher};
use serde_json::Value;

fn tiny() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny-bert")
}

/// A writable copy of tiny-bert.
fn copy_tiny() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(tiny()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

fn load(dir: &Path, opts: &LoadOptions) -> Result<Teacher, Error> {
    Teacher::load(dir.to_str().unwrap(), opts, &Device::Cpu)
}

fn tensors(dir: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap()
}

fn save_tensors(dir: &Path, t: &HashMap<String, Tensor>) {
    candle_core::safetensors::save(t, dir.join("model.safetensors")).unwrap();
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let path = dir.join("config.json");
    let mut cfg: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(path, serde_json::to_string(&cfg).unwrap()).unwrap();
}

fn logits(t: &Teacher, texts: &[&str]) -> Vec<f32> {
    let opts = distill_teacher::InferOptions {
        progress: false,
        ..Default::default()
    };
    distill_teacher::predict_logits(t, texts, &opts).unwrap()
}

const TEXTS: [&str; 3] = ["a charming journey", "unflinchingly bleak", ""];

#[test]
fn a_missing_tensor_is_named() {
    let dir = copy_tiny();
    let mut t = tensors(dir.path());
    t.remove("bert.encoder.layer.1.attention.self.key.weight");
    save_tensors(dir.path(), &t);
    let err = load(dir.path(), &LoadOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::MissingTensor { .. }), "{msg}");
    assert!(
        msg.contains("bert.encoder.layer.1.attention.self.key.weight")
            && msg.contains("model.safetensors"),
        "{msg}"
    );
}

#[test]
fn a_wrong_shape_is_named_with_both_shapes() {
    let dir = copy_tiny();
    let mut t = tensors(dir.path());
    let name = "bert.encoder.layer.0.intermediate.dense.weight";
    let transposed = t[name].t().unwrap().contiguous().unwrap();
    t.insert(name.into(), transposed);
    save_tensors(dir.path(), &t);
    let msg = load(dir.path(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(name) && msg.contains("[32, 64]") && msg.contains("[64, 32]"),
        "{msg}"
    );
}

#[test]
fn a_config_that_does_not_describe_the_weights_is_refused() {
    let dir = copy_tiny();
    edit_config(dir.path(), |c| {
        c.insert("num_hidden_layers".into(), 3.into());
    });
    let err = load(dir.path(), &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::ConfigMismatch { .. }), "{err}");
    assert!(err.to_string().contains("2 encoder layers"), "{err}");

    let dir = copy_tiny();
    edit_config(dir.path(), |c| {
        c.insert("hidden_size".into(), 64.into());
    });
    let msg = load(dir.path(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("bert.embeddings.word_embeddings.weight"),
        "{msg}"
    );
}

#[test]
fn unknown_architectures_and_missing_files_are_refused() {
    let dir = copy_tiny();
    edit_config(dir.path(), |c| {
        c.insert("model_type".into(), "gpt2".into());
    });
    let err = load(dir.path(), &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::UnknownArchitecture { .. }), "{err}");

    let dir = copy_tiny();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let err = load(dir.path(), &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::MissingFile { .. }) && err.to_string().contains("model.safetensors"),
        "{err}"
    );
}

#[test]
fn a_bare_bert_model_gets_fresh_heads() {
    let dir = copy_tiny();
    let t: HashMap<String, Tensor> = tensors(dir.path())
        .into_iter()
        .filter(|(n, _)| !n.starts_with("classifier.") && !n.contains("pooler"))
        .map(|(n, t)| (n.trim_start_matches("bert.").to_string(), t))
        .collect();
    save_tensors(dir.path(), &t);
    edit_config(dir.path(), |c| {
        c.insert("architectures".into(), serde_json::json!(["BertModel"]));
        c.remove("id2label");
        c.remove("label2id");
    });
    let labels = vec!["neg".to_string(), "pos".into(), "mixed".into()];
    let opts = LoadOptions {
        labels: Some(labels.clone()),
        head: HeadInit::Random,
        ..Default::default()
    };
    let teacher = load(dir.path(), &opts).unwrap();
    assert_eq!(teacher.labels(), labels.as_slice());
    let w = teacher.model.params().get("classifier.weight").unwrap();
    assert_eq!(w.dims(), &[3, 32]);
    let values = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let std = (values.iter().map(|v| v * v).sum::<f32>() / values.len() as f32).sqrt();
    assert!(
        (0.2..0.4).contains(&std),
        "initializer_range 0.3, got std {std}"
    );
    let b = teacher
        .model
        .params()
        .get("bert.pooler.dense.bias")
        .unwrap();
    assert_eq!(
        b.abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap(),
        0.0
    );
    // The encoder is the checkpoint's: same hidden states as the prefixed original.
    let original = load(&tiny(), &LoadOptions::default()).unwrap();
    let (ids, mask) = distill_teacher::pad_batch(&[&[101, 2009, 102]], 0, &Device::Cpu).unwrap();
    let a = teacher
        .model
        .encode(&ids, &mask, Mode::Eval)
        .unwrap()
        .last_hidden_state;
    let b = original
        .model
        .encode(&ids, &mask, Mode::Eval)
        .unwrap()
        .last_hidden_state;
    let diff = tensor_max_abs_diff(&a, &b);
    assert_eq!(diff, 0.0);
}

#[test]
fn a_classifier_with_other_labels_is_refused() {
    let opts = LoadOptions {
        labels: Some(vec!["a".into(), "b".into(), "c".into()]),
        ..Default::default()
    };
    let err = load(&tiny(), &opts).unwrap_err();
    assert!(matches!(err, Error::Labels(_)), "{err}");
}

#[test]
fn a_vocab_txt_tokenizer_matches_tokenizer_json() {
    let dir = copy_tiny();
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("tokenizer.json")).unwrap())
            .unwrap();
    let vocab = json["model"]["vocab"].as_object().unwrap();
    let mut words = vec![String::new(); vocab.len()];
    for (word, id) in vocab {
        words[id.as_u64().unwrap() as usize] = word.clone();
    }
    std::fs::write(dir.path().join("vocab.txt"), words.join("\n")).unwrap();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let from_vocab = load(dir.path(), &LoadOptions::default()).unwrap();
    let from_json = load(&tiny(), &LoadOptions::default()).unwrap();
    let text = [
        "Héllo   WORLD!!  21 cats — naïve café; 3.5 stars",
        "it 's a charming and often affecting journey . ",
    ];
    assert_eq!(
        from_vocab.tokenizer.encode_all(&text).unwrap(),
        from_json.tokenizer.encode_all(&text).unwrap()
    );
}

#[test]
fn a_saved_checkpoint_is_a_transformers_folder_and_reloads_identically() {
    let opts = LoadOptions {
        labels: Some(vec!["negative".into(), "positive".into()]),
        ..Default::default()
    };
    let teacher = load(&tiny(), &opts).unwrap();
    let out = tempfile::tempdir().unwrap();
    teacher.save(out.path()).unwrap();

    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(
        cfg["architectures"],
        serde_json::json!(["BertForSequenceClassification"])
    );
    assert_eq!(cfg["id2label"]["1"], "positive");
    assert_eq!(cfg["label2id"]["negative"], 0);
    assert_eq!(cfg["hidden_size"], 32);

    let bytes = std::fs::read(out.path().join("model.safetensors")).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(
        meta.metadata()
            .as_ref()
            .and_then(|m| m.get("format"))
            .map(String::as_str),
        Some("pt")
    );
    let names: Vec<String> = tensors(out.path()).into_keys().collect();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("bert.") || n.starts_with("classifier.")),
        "{names:?}"
    );
    assert_eq!(names.len(), 5 + 2 * 16 + 2 + 2);
    assert!(
        out.path().join("tokenizer.json").is_file()
            && out.path().join("tokenizer_config.json").is_file()
    );
    let leftovers: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let reloaded = load(out.path(), &LoadOptions::default()).unwrap();
    assert_eq!(reloaded.labels(), teacher.labels());
    assert_eq!(logits(&reloaded, &TEXTS), logits(&teacher, &TEXTS));
}

/// A copy of tiny-bert whose weights have `edit` applied.
fn tiny_with(edit: impl FnOnce(&mut HashMap<String, Tensor>)) -> tempfile::TempDir {
    let dir = copy_tiny();
    let mut t = tensors(dir.path());
    edit(&mut t);
    save_tensors(dir.path(), &t);
    dir
}

#[test]
fn a_model_without_a_trained_head_is_refused_unless_fine_tuning() {
    let dir = tiny_with(|t| t.retain(|n, _| !n.starts_with("classifier.")));
    let err = load(dir.path(), &LoadOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::NoTrainedHead { .. }), "{msg}");
    assert!(
        msg.contains("classifier.weight")
            && msg.contains("classifier.bias")
            && msg.contains("model.safetensors")
            && msg.contains("fine-tune"),
        "{msg}"
    );
    // Fine-tuning asks for a fresh head and gets one.
    let opts = LoadOptions {
        head: HeadInit::Random,
        ..Default::default()
    };
    let teacher = load(dir.path(), &opts).unwrap();
    assert_eq!(
        teacher
            .model
            .params()
            .get("classifier.weight")
            .unwrap()
            .dims(),
        &[2, 32]
    );
}

#[test]
fn a_head_under_other_names_is_refused_and_the_unused_tensors_named() {
    let dir = tiny_with(|t| {
        for (from, to) in [
            ("classifier.weight", "score.weight"),
            ("classifier.bias", "score.bias"),
        ] {
            let v = t.remove(from).unwrap();
            t.insert(to.into(), v);
        }
    });
    let msg = load(dir.path(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("classifier.weight, classifier.bias")
            && msg.contains("score.bias, score.weight"),
        "{msg}"
    );
}

#[test]
fn label_names_are_compared_not_only_counted() {
    let named = LoadOptions {
        labels: Some(vec!["negative".into(), "positive".into()]),
        ..Default::default()
    };
    let out = tempfile::tempdir().unwrap();
    load(&tiny(), &named).unwrap().save(out.path()).unwrap();
    let teacher = load(out.path(), &LoadOptions::default()).unwrap();
    teacher
        .check_labels(&LabelSet::new(vec!["negative".into(), "positive".into()]))
        .unwrap();
    for data in [
        vec!["positive".to_string(), "negative".into()],
        vec!["0".to_string(), "1".into()],
    ] {
        let err = teacher
            .check_labels(&LabelSet::new(data.clone()))
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::LabelMismatch { .. }), "{msg}");
        assert!(
            msg.contains("[negative, positive]") && msg.contains(&format!("[{}]", data.join(", "))),
            "{msg}"
        );
    }
    // tiny-bert's config names no labels (transformers' LABEL_0, LABEL_1): the count decides.
    let unnamed = load(&tiny(), &LoadOptions::default()).unwrap();
    unnamed.check_labels(&LabelSet::binary()).unwrap();
    let three = LabelSet::new(vec!["a".into(), "b".into(), "c".into()]);
    assert!(matches!(
        unnamed.check_labels(&three),
        Err(Error::LabelMismatch { .. })
    ));
}

#[test]
fn a_save_swaps_in_a_whole_folder_and_a_killed_swap_is_recovered() {
    let teacher = load(&tiny(), &LoadOptions::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("teacher");
    teacher.save(&out).unwrap();
    teacher
        .save_with(&out, &[("metrics.jsonl", b"{}\n")])
        .unwrap();
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["teacher"], "no .old or .partial left");
    assert!(out.join("metrics.jsonl").is_file());

    // A kill between the swap's renames leaves only `teacher.old`: loading puts it back.
    std::fs::rename(&out, tmp.path().join("teacher.old")).unwrap();
    let reloaded = load(&out, &LoadOptions::default()).unwrap();
    assert_eq!(logits(&reloaded, &TEXTS), logits(&teacher, &TEXTS));
    assert!(out.is_dir() && !tmp.path().join("teacher.old").exists());

    // A folder holding anything else is never replaced.
    let busy = tmp.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    let err = teacher.save(&busy).unwrap_err();
    assert!(matches!(err, Error::NotACheckpoint { .. }), "{err}");
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert_eq!(
        std::fs::read_to_string(busy.join("notes.txt")).unwrap(),
        "mine"
    );
}
