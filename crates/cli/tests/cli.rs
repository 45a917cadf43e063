//! The `distill` binary end to end on a small slice of SST-2: train, eval, predict, and the
//! errors a user sees for bad input.

use std::path::{Path, PathBuf};

mod common;

use common::{assets, distill, fails_with, head};

#[test]
fn train_eval_predict() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.tsv");
    head(&assets().join("train.tsv"), &train, 3000);
    let out = tmp.path().join("run");
    let o = distill(&[
        "student",
        "train",
        "--train",
        train.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--epochs",
        "2",
        "--quiet",
        "--lr",
        "0.005",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2);
    for f in ["config.json", "vocab.json", "model.safetensors"] {
        assert!(out.join("best").join(f).exists(), "best/{f}");
    }

    let model = out.join("best");
    let dev = assets().join("dev.tsv");
    let o = distill(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        dev.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["n"], 872);
    for k in ["acc", "ap", "f1"] {
        let v = m[k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{k} = {v}");
    }
    let cm = m["confusion"].as_array().unwrap();
    let total: u64 = cm
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 872);

    let o = distill(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "a great film",
        "",
    ]);
    assert!(o.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        let p = l["probability"].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&p));
        let label = l["label"].as_str().unwrap();
        assert!(["0", "1"].contains(&label));
        // Every label's probability by name; the predicted one is `probability`.
        let all = l["probabilities"].as_object().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[label].as_f64(), Some(p));
        let sum: f64 = all.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-5, "{l}");
    }

    let o = common::predict_stdin(&model, b"dull and lifeless\n?!\nwonderful\n");
    assert_eq!(String::from_utf8(o.stdout).unwrap().lines().count(), 3);
}

#[test]
fn bad_training_file_names_file_line_and_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.tsv");
    std::fs::write(
        &bad,
        "sentence\tlabel\na fine film\t1\nno tab on this line\nworse\t0\n",
    )
    .unwrap();
    let o = distill(&[
        "student",
        "train",
        "--train",
        bad.to_str().unwrap(),
        "--out",
        tmp.path().join("r").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.tsv") && err.contains(":3"), "{err}");
    assert!(!tmp.path().join("r/best").exists());

    std::fs::write(&bad, "sentence\tlabel\na fine film\t1\nworse\t7\n").unwrap();
    let o = distill(&[
        "student",
        "train",
        "--train",
        bad.to_str().unwrap(),
        "--out",
        tmp.path().join("r").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains('7') && err.contains(":3"),
        "{err}"
    );
}

#[test]
fn missing_model_is_a_clear_error() {
    let o = distill(&["predict", "--model", "/nonexistent/model", "hi"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/nonexistent/model"), "{err}");
}

#[test]
fn nan_flags_and_zero_temperature_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.tsv");
    head(&assets().join("train.tsv"), &train, 50);
    let out = tmp.path().join("run");
    let base = [
        "student",
        "train",
        "--train",
        train.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    let refused = |extra: &[&str], words: &[&str]| {
        let o = distill(&[&base[..], extra].concat());
        assert!(!o.status.success(), "{extra:?} must be refused");
        let err = String::from_utf8_lossy(&o.stderr);
        for w in words {
            assert!(err.contains(w), "{extra:?}: {err}");
        }
        assert!(!out.exists(), "{extra:?}: nothing may be written");
    };
    refused(&["--alpha", "NaN"], &["--alpha", "NaN", "finite"]);
    refused(&["--lr", "inf"], &["--lr", "finite"]);
    refused(
        &["--loss", "kl", "--temperature", "0", "--logits", "x.logits"],
        &["temperature = 0", "> 0"],
    );
    refused(
        &[
            "--mode", "distill", "--alpha", "1.5", "--logits", "x.logits",
        ],
        &["alpha = 1.5", "[0, 1]"],
    );
}

#[test]
fn a_diverging_run_exits_non_zero_naming_epoch_and_step() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.tsv");
    head(&assets().join("train.tsv"), &train, 300);
    let out = tmp.path().join("run");
    let o = distill(&[
        "student",
        "train",
        "--train",
        train.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--epochs",
        "2",
        "--lr",
        "1e38",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("training loss is NaN at epoch 1, step"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("best epoch"));
    assert!(!out.join("metrics.jsonl").exists() && !out.join("best").exists());
}

/// A small trained student shared by the bad-input tests (trained once per test run).
fn shared_model() -> &'static Path {
    static MODEL: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cli-shared-model-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let train = dir.join("train.tsv");
        head(&assets().join("train.tsv"), &train, 300);
        let out = dir.join("run");
        let o = distill(&[
            "student",
            "train",
            "--train",
            train.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--epochs",
            "1",
            "--quiet",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out.join("best")
    })
}

fn tiny_teacher() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny-bert")
}

#[test]
fn header_only_file_is_an_error_for_eval_and_teacher_label() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("header-only.tsv");
    std::fs::write(&empty, "sentence\tlabel\n").unwrap();
    let model = shared_model();
    let o = distill(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        empty.to_str().unwrap(),
    ]);
    fails_with(&o, &["header-only.tsv", "no rows"]);
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    let cache = tmp.path().join("logits.safetensors");
    let o = distill(&[
        "teacher",
        "label",
        "--teacher",
        tiny_teacher().to_str().unwrap(),
        "--data",
        empty.to_str().unwrap(),
        "--out",
        cache.to_str().unwrap(),
    ]);
    fails_with(&o, &["header-only.tsv", "no rows"]);
    assert!(!cache.exists(), "an empty cache was written");
}

#[test]
fn predict_answers_every_stdin_line_and_reports_unreadable_ones() {
    let o = common::predict_stdin(
        shared_model(),
        b"a fine film\r\nnot \xff\xfe utf-8\nwonderful",
    );
    fails_with(&o, &["1 stdin line(s)", "line 2"]);
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["text"], "a fine film");
    assert_eq!(lines[2]["text"], "wonderful");
    for l in [&lines[0], &lines[2]] {
        assert!(["0", "1"].contains(&l["label"].as_str().unwrap()), "{l}");
    }
    assert_eq!(lines[1]["line"], 2);
    let error = lines[1]["error"].as_str().unwrap();
    assert!(error.contains("UTF-8"), "{error}");
    assert!(lines[1].get("label").is_none());
}

#[test]
fn bench_on_header_only_data_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("header-only.tsv");
    std::fs::write(&empty, "sentence\tlabel\n").unwrap();
    let o = distill(&[
        "bench",
        "--model",
        shared_model().to_str().unwrap(),
        "--data",
        empty.to_str().unwrap(),
        "--repeat",
        "1",
    ]);
    fails_with(&o, &["header-only.tsv", "no rows"]);
}

#[test]
fn augment_with_zero_neighbours_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("train.tsv");
    head(&assets().join("train.tsv"), &data, 20);
    let out = tmp.path().join("aug.tsv");
    let o = distill(&[
        "augment",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--teacher",
        tiny_teacher().to_str().unwrap(),
        "--neighbours",
        "0",
    ]);
    fails_with(&o, &["--neighbours 0", "at least 1"]);
    assert!(!out.exists());
}

#[test]
fn labelling_or_evaluating_with_a_base_model_is_refused() {
    // tiny-bert without its classifier: a base model that was never fine-tuned.
    let tmp = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny-bert");
    let teacher = tmp.path().join("base");
    std::fs::create_dir(&teacher).unwrap();
    for name in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture.join(name), teacher.join(name)).unwrap();
    }
    let mut tensors = candle_core::safetensors::load(
        fixture.join("model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    tensors.retain(|name, _| !name.starts_with("classifier."));
    candle_core::safetensors::save(&tensors, teacher.join("model.safetensors")).unwrap();
    let data = tmp.path().join("dev.tsv");
    head(&assets().join("dev.tsv"), &data, 20);
    let out = tmp.path().join("logits.safetensors");
    let (t, d, o) = (
        teacher.to_str().unwrap(),
        data.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    for args in [
        &["teacher", "label", "--teacher", t, "--data", d, "--out", o][..],
        &["teacher", "eval", "--teacher", t, "--data", d][..],
    ] {
        let run = distill(args);
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{args:?}");
        assert!(
            err.contains("classifier.weight")
                && err.contains("classifier.bias")
                && err.contains("fine-tune"),
            "{err}"
        );
    }
    assert!(!out.exists(), "no logits from a random head");
}
