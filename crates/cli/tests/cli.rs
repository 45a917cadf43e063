//! The `distill` binary end to end on a small slice of SST-2: train, eval, predict, and the
//! errors a user sees for bad input.

use std::path::{Path, PathBuf};

mod common;

use common::{assets, distill, fails_with, head};
use distill_data::ValSplit;

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
    refused(&["--engine", "gpu"], &["--engine", "auto, fused, candle"]);
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
    refused(&["--hidden-size", "0"], &["hidden_size", "positive"]);
    refused(&["--num-layers", "0"], &["num_layers", "positive"]);
    refused(&["--dropout", "1"], &["dropout", "[0, 1)"]);
}

#[test]
fn size_flags_override_the_preset_and_are_recorded_in_config_json() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.tsv");
    head(&assets().join("train.tsv"), &train, 200);
    let out = tmp.path().join("run");
    let large = |extra: &[&str]| {
        let (train, out) = (train.to_str().unwrap(), out.to_str().unwrap());
        let base = ["student", "train", "--train", train, "--out", out];
        distill(&[&base[..], &["--preset", "large", "--quiet"], extra].concat())
    };
    let o = large(&[
        "--embedding-dim",
        "12",
        "--hidden-size",
        "6",
        "--num-layers",
        "2",
        "--dropout",
        "0.1",
        "--epochs",
        "1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(out.join("best/config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(config["embedding_dim"], 12, "{config}");
    assert_eq!(config["hidden_size"], 6, "{config}");
    assert_eq!(config["num_layers"], 2, "{config}");
    let dropout = config["dropout"].as_f64().unwrap();
    assert!((dropout - 0.1).abs() < 1e-6, "{config}");
    // Resuming with another size would load weights of the wrong shape: refused.
    let o = large(&["--hidden-size", "8", "--epochs", "2"]);
    fails_with(&o, &["student config differs"]);
    let after = std::fs::read_to_string(out.join("best/config.json")).unwrap();
    assert_eq!(after, text, "the refused resume left the run as it was");
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 1);
}

/// 40 sentences, each with a word of its own (`zq<i>`), then a phrase of each (rows 40..),
/// as SST-2 lists them; sentence `i` and its phrase get label `label(i)`.
fn write_sentences_and_phrases(path: &Path, label: impl Fn(usize) -> usize) {
    let mut tsv = String::from("sentence\tlabel\n");
    for i in 0..40 {
        tsv += &format!("a quite good film zq{i} with heart\t{}\n", label(i));
    }
    for i in 0..40 {
        tsv += &format!("zq{i} with heart\t{}\n", label(i));
    }
    std::fs::write(path, tsv).unwrap();
}

#[test]
fn the_sentence_split_reaches_the_trainer_and_a_resume_cannot_switch_splits() {
    // The two splits differ on this file.
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.tsv");
    write_sentences_and_phrases(&train, |i| i % 2);
    let out = tmp.path().join("run");
    let run = |split: &str, epochs: &str| {
        let (train, out) = (train.to_str().unwrap(), out.to_str().unwrap());
        distill(&[
            "student",
            "train",
            "--train",
            train,
            "--out",
            out,
            "--quiet",
            "--val-split",
            split,
            "--epochs",
            epochs,
        ])
    };
    let o = run("sentences", "1");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    assert!(config.contains("\"val_split\": \"sentences\""), "{config}");
    let o = run("rows", "2");
    fails_with(&o, &["the validation split"]);
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(
        metrics.lines().count(),
        1,
        "the refused resume trained nothing"
    );
    let o = run("sentences", "2");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
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
fn a_run_started_on_one_engine_resumes_on_the_other_and_bench_times_either() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.tsv");
    head(&assets().join("train.tsv"), &train, 400);
    let out = tmp.path().join("run");
    let train_with = |engine: &str, epochs: &str| {
        distill(&[
            "student",
            "train",
            "--train",
            train.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--epochs",
            epochs,
            "--engine",
            engine,
            "--quiet",
        ])
    };
    let o = train_with("candle", "1");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = train_with("fused", "2");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(
        metrics.lines().count(),
        2,
        "resumed after epoch 1: {metrics}"
    );

    for engine in ["fused", "candle"] {
        let o = distill(&[
            "bench",
            "--train",
            train.to_str().unwrap(),
            "--epochs",
            "1",
            "--preset",
            "large",
            "--engine",
            engine,
            "--json",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            report["epoch_seconds"].as_array().unwrap().len(),
            1,
            "{engine}"
        );
    }
}

#[test]
fn bench_times_the_sizes_its_flags_give() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.tsv");
    head(&assets().join("train.tsv"), &train, 200);
    let bench = |sizes: &[&str]| {
        let mut args = vec!["bench", "--train", train.to_str().unwrap(), "--epochs", "1"];
        args.extend_from_slice(sizes);
        distill(&args)
    };
    let o = bench(&[
        "--embedding-dim",
        "12",
        "--hidden-size",
        "6",
        "--num-layers",
        "2",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("(original preset, 12/6, 2 layers, batch 32"),
        "{out}"
    );
    // The sizes reach the trained student: one it cannot build is refused.
    let o = bench(&["--hidden-size", "0"]);
    fails_with(&o, &["hidden_size", "positive"]);
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

/// A stand-in for `python` that checks how the PyTorch script is called and writes fixed
/// figures (the real script needs torch; its arguments and output are what is tested here).
#[cfg(unix)]
fn fake_python(dir: &Path, fail: bool) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(if fail { "broken-python" } else { "fake-python" });
    let body = if fail {
        "echo 'ModuleNotFoundError: No module named torch' >&2; exit 1".to_string()
    } else {
        // $1 script, $2 train, $3 dev, $4 out, then --emb E --hid H --epochs N --layers L
        // --threads T (the model's sizes and depth).
        r#"case "$1" in *torch_student_bench.py) ;; *) exit 3;; esac
[ "$5 $6 $7 $8 $9 ${10} ${11} ${12} ${13} ${14}" = "--emb 16 --hid 8 --epochs 0 --layers 1 --threads 2" ] || exit 4
[ "$2" = "$3" ] || exit 5
printf '{"torch": "9.9", "packed": true, "threads": 2, "emb": 16, "hid": 8, "epoch_s": [], "best_epoch_s": null, "dev_sent_per_s_batch256": 1000.0, "latency_us_median": 500.0}' > "$4""#
            .to_string()
    };
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[cfg(unix)]
#[test]
fn bench_reports_batched_and_per_sentence_figures_beside_pytorch() {
    let tmp = tempfile::tempdir().unwrap();
    let dev = tmp.path().join("dev.tsv");
    head(&assets().join("dev.tsv"), &dev, 60);
    let model = shared_model().to_str().unwrap().to_string();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench/torch_student_bench.py");
    let python = fake_python(tmp.path(), false);
    let args = |python: &Path, json: bool| {
        let mut v = vec![
            "bench".to_string(),
            "--model".into(),
            model.clone(),
            "--data".into(),
            dev.to_str().unwrap().into(),
            "--repeat".into(),
            "2".into(),
            "--compare-pytorch".into(),
            python.to_str().unwrap().into(),
            "--torch-script".into(),
            script.to_str().unwrap().into(),
        ];
        if json {
            v.push("--json".into());
        }
        v
    };
    let run = |v: Vec<String>| distill(&v.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args(&python, true));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["sentences"], 60);
    for k in [
        "model_sentences_per_second",
        "per_sentence_sentences_per_second",
        "text_sentences_per_second",
        "per_sentence_text_sentences_per_second",
        "latency_us_median",
        "per_sentence_latency_us_median",
        "text_latency_us_median",
        "per_sentence_text_latency_us_median",
    ] {
        let v = r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
        assert!(v.is_finite() && v > 0.0, "{k} = {v}");
    }
    assert_eq!(r["pytorch"]["dev_sent_per_s_batch256"], 1000.0);

    let o = run(args(&python, false));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("PyTorch 9.9 (2 threads, packed, 16/8"),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.starts_with("| token ids in, sentences/s |"))
        .unwrap_or_else(|| panic!("{text}"));
    // batched | per sentence | gain | PyTorch | ratio
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells[5], "1000", "{row}");
    let batched: f64 = cells[2].parse().unwrap();
    let ratio: f64 = cells[6].trim_end_matches('×').parse().unwrap();
    assert!((ratio - batched / 1000.0).abs() < 0.051, "{row}");

    let o = run(args(&fake_python(tmp.path(), true), false));
    fails_with(&o, &["torch_student_bench.py", "No module named torch"]);
    let mut missing = args(&python, false);
    let at = missing.len() - 1;
    missing[at] = "no/such/script.py".into();
    fails_with(&run(missing), &["no/such/script.py", "--torch-script"]);
}

/// `distill augment` of `data` into `out` with the tiny teacher and `extra` flags.
fn augment(data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let (d, o, t) = (
        data.to_str().unwrap(),
        out.to_str().unwrap(),
        tiny_teacher(),
    );
    let mut args = vec![
        "augment",
        "--data",
        d,
        "--out",
        o,
        "--teacher",
        t.to_str().unwrap(),
    ];
    args.extend(extra);
    distill(&args)
}

#[test]
fn augment_with_zero_neighbours_or_a_bad_val_share_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("train.tsv");
    head(&assets().join("train.tsv"), &data, 20);
    let out = tmp.path().join("aug.tsv");
    let o = augment(&data, &out, &["--neighbours", "0"]);
    fails_with(&o, &["--neighbours 0", "at least 1"]);
    assert!(!out.exists());
    for share in ["1", "1.5", "NaN"] {
        let o = augment(&data, &out, &["--val-share", share]);
        fails_with(&o, &[&format!("--val-share {share}"), "[0, 1)"]);
        assert!(!out.exists());
    }
}

#[test]
fn augmentation_leaves_out_the_students_validation_part() {
    // Each sentence carries a word of its own, so a sample shows which sentence it came from.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("train.tsv");
    write_sentences_and_phrases(&data, |i| i % 3 % 2);
    let labels = distill_data::LabelSet::binary();
    let rows = distill_data::Dataset::read(&data, &labels).unwrap();
    let sentences = |rows: &[usize]| -> Vec<usize> {
        let mut s: Vec<usize> = rows.iter().map(|r| r % 40).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let markers_in = |val_share: &str, split: ValSplit| -> Vec<usize> {
        let out = tmp.path().join(format!("aug-{val_share}-{split:?}.tsv"));
        let name = format!("{split:?}").to_lowercase();
        let o = augment(
            &data,
            &out,
            &[
                "--augment-factor",
                "20",
                "--val-share",
                val_share,
                "--val-split",
                &name,
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = std::fs::read_to_string(&out).unwrap();
        let mut seen: Vec<usize> = text
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("zq")?.parse().ok())
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen
    };
    for split in [ValSplit::Rows, ValSplit::Sentences] {
        // The student's split (`distill student train --val-share 0.25 --val-split …`):
        // samples come from its training rows only.
        let (train_rows, val_rows) = split.indices(&rows, 0.25, 0);
        assert_eq!(
            markers_in("0.25", split),
            sentences(&train_rows),
            "{split:?}"
        );
        let (train, val) = (sentences(&train_rows), sentences(&val_rows));
        if split == ValSplit::Sentences {
            assert_eq!(train.len() + val.len(), 40, "a phrase left its sentence");
        } else {
            assert!(
                train.len() + val.len() > 40,
                "rows split sentences from phrases"
            );
        }
        // Without the hold-out every row is augmented, validation rows included.
        let all = markers_in("0", split);
        assert!(val.iter().all(|r| all.contains(r)));
    }
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

#[test]
fn report_of_a_run_folder_and_a_clear_error_without_one() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/report/run");
    let out = tempfile::tempdir().unwrap();
    let o = distill(&[
        "report",
        "--run",
        fixture.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(
        md.contains("| distill-augment | distilled + augmentation |"),
        "{md}"
    );
    assert!(out.path().join("report.html").is_file());
    // A folder without the teacher's evaluation: the error names the file.
    let empty = tempfile::tempdir().unwrap();
    let o = distill(&["report", "--run", empty.path().to_str().unwrap()]);
    fails_with(&o, &["eval/teacher.json"]);
}

#[test]
fn teacher_fetch_checks_a_folder_and_refuses_a_missing_one() {
    let teacher = tiny_teacher();
    let o = distill(&["teacher", "fetch", "--teacher", teacher.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("a folder, nothing to fetch"));
    let empty = tempfile::tempdir().unwrap();
    let o = distill(&[
        "teacher",
        "fetch",
        "--teacher",
        empty.path().to_str().unwrap(),
    ]);
    fails_with(&o, &["config.json"]);
}
