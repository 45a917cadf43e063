//! The user's own task through the `distill` binary: six named classes in JSON lines (teacher
//! fine-tuned, labelling, distillation with unlabelled transfer text, eval, predict), sentence
//! pairs from GLUE's MRPC TSV (named columns, pair student, pair predict), and the bad inputs
//! a new task brings (an unknown column, a missing pair column, a dev label outside the set,
//! a JSON line that is not an object, empty labels where labels are needed).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{distill, fails_with, head};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn six() -> PathBuf {
    root().join("fixtures/six-topics")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "failed: {err}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const TOPICS: [&str; 6] = ["food", "music", "sports", "tech", "travel", "weather"];

#[test]
fn six_named_classes_from_json_lines_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, dev, unlabelled) = (
        six().join("train.jsonl"),
        six().join("dev.jsonl"),
        six().join("unlabelled.jsonl"),
    );
    let teacher = tmp.path().join("teacher");
    let tiny = root().join("fixtures/tiny-bert");
    // The tiny BERT's 2-label head starts anew for six labels, named from the file, sorted.
    ok(&distill(&[
        "teacher",
        "finetune",
        "--teacher",
        s(&tiny),
        "--train",
        s(&train),
        "--dev",
        s(&dev),
        "--out",
        s(&teacher),
        "--max-steps",
        "6",
        "--lr",
        "1e-3",
    ]));
    let config: Value =
        serde_json::from_slice(&std::fs::read(teacher.join("config.json")).unwrap()).unwrap();
    for (i, name) in TOPICS.iter().enumerate() {
        assert_eq!(config["id2label"][i.to_string()], *name, "{config}");
    }
    let (cache, transfer_cache) = (tmp.path().join("train.st"), tmp.path().join("unl.st"));
    ok(&distill(&[
        "teacher",
        "label",
        "--teacher",
        s(&teacher),
        "--data",
        s(&train),
        "--out",
        s(&cache),
    ]));
    ok(&distill(&[
        "teacher",
        "label",
        "--teacher",
        s(&teacher),
        "--data",
        s(&unlabelled),
        "--out",
        s(&transfer_cache),
    ]));
    let teacher_eval: Value = serde_json::from_str(&ok(&distill(&[
        "teacher",
        "eval",
        "--teacher",
        s(&teacher),
        "--data",
        s(&dev),
        "--json",
    ])))
    .unwrap();
    assert_eq!(teacher_eval["labels"], serde_json::json!(TOPICS));

    let run = tmp.path().join("student");
    let out = ok(&distill(&[
        "student",
        "train",
        "--train",
        s(&train),
        "--out",
        s(&run),
        "--mode",
        "distill",
        "--logits",
        s(&cache),
        "--transfer",
        s(&unlabelled),
        "--transfer-logits",
        s(&transfer_cache),
        "--epochs",
        "2",
        "--quiet",
    ]));
    assert!(out.contains("best epoch"), "{out}");
    let model = run.join("best");
    let student: Value =
        serde_json::from_slice(&std::fs::read(model.join("config.json")).unwrap()).unwrap();
    assert_eq!(student["num_outputs"], 6);
    assert_eq!(student["id2label"]["5"], "weather");

    let eval: Value = serde_json::from_str(&ok(&distill(&[
        "eval",
        "--model",
        s(&model),
        "--data",
        s(&dev),
        "--json",
    ])))
    .unwrap();
    let confusion = eval["confusion"].as_array().unwrap();
    assert_eq!(confusion.len(), 6);
    let total: u64 = confusion
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(total, 90);

    let line = ok(&distill(&[
        "predict",
        "--model",
        s(&model),
        "the coach and the team scored a goal",
    ]));
    let p: Value = serde_json::from_str(line.trim()).unwrap();
    let probs = p["probabilities"].as_object().unwrap();
    assert_eq!(
        probs.keys().collect::<Vec<_>>(),
        TOPICS.iter().collect::<Vec<_>>()
    );
    let sum: f64 = probs.values().map(|v| v.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-5, "{p}");
    assert!(TOPICS.contains(&p["label"].as_str().unwrap()), "{p}");
    assert_eq!(probs[p["label"].as_str().unwrap()], p["probability"]);

    // BCE needs two labels.
    fails_with(
        &distill(&[
            "student",
            "train",
            "--train",
            s(&train),
            "--out",
            s(&tmp.path().join("bce")),
            "--loss",
            "bce",
            "--quiet",
        ]),
        &["bce needs exactly two labels", "6"],
    );
}

/// The first `n` rows of MRPC train and dev.
fn mrpc(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    let (train, dev) = (dir.join("train.tsv"), dir.join("dev.tsv"));
    head(&root().join("assets/mrpc/train.tsv"), &train, n);
    head(&root().join("assets/mrpc/dev.tsv"), &dev, n / 2);
    (train, dev)
}

const PAIR_FLAGS: [&str; 6] = [
    "--text-column",
    "#1 String",
    "--text-pair-column",
    "#2 String",
    "--label-column",
    "Quality",
];

#[test]
fn sentence_pairs_from_glue_tsv_train_evaluate_and_predict() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, dev) = mrpc(tmp.path(), 200);
    let run = tmp.path().join("pairs");
    let mut args = vec!["student", "train", "--train", s(&train), "--out", s(&run)];
    args.extend(["--epochs", "1", "--quiet"]);
    args.extend(PAIR_FLAGS);
    ok(&distill(&args));
    let model = run.join("best");
    let config: Value =
        serde_json::from_slice(&std::fs::read(model.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["pair"], true);

    let mut args = vec!["eval", "--model", s(&model), "--data", s(&dev), "--json"];
    args.extend(PAIR_FLAGS);
    let eval: Value = serde_json::from_str(&ok(&distill(&args))).unwrap();
    assert_eq!(eval["n"], 100);

    // A single-text file is refused by a pair model, naming both shapes.
    let sst = tmp.path().join("sst.tsv");
    head(&common::assets().join("dev.tsv"), &sst, 5);
    fails_with(
        &distill(&["eval", "--model", s(&model), "--data", s(&sst)]),
        &["sentence pairs", "single texts"],
    );

    let o = common::predict_stdin(
        &model,
        b"he said so .\tso he said .\n\
          {\"sentence1\": \"a\", \"sentence2\": \"b\"}\n\
          no tab here\n",
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "every line answered");
    assert_eq!(lines[0]["text_pair"], "so he said .");
    assert_eq!(lines[1]["text"], "a");
    assert_eq!(lines[1]["text_pair"], "b");
    assert_eq!(lines[2]["line"], 3);
    assert!(lines[2]["error"].as_str().unwrap().contains("no tab"));
    assert!(
        !o.status.success(),
        "an unreadable line makes the exit status non-zero"
    );
}

#[test]
fn bad_task_input_is_refused_naming_file_line_and_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, dev) = mrpc(tmp.path(), 40);
    let out = tmp.path().join("out");
    let train_with = |extra: &[&str]| {
        let mut args = vec![
            "student",
            "train",
            "--train",
            s(&train),
            "--out",
            s(&out),
            "--quiet",
        ];
        args.extend(extra);
        distill(&args)
    };
    // An unknown column: the error lists the columns found.
    fails_with(
        &train_with(&["--text-column", "sentence"]),
        &["train.tsv:1:", "`sentence`", "`#1 String`", "`Quality`"],
    );
    // A pair column that is absent.
    fails_with(
        &train_with(&[
            "--text-column",
            "#1 String",
            "--text-pair-column",
            "#3 String",
        ]),
        &["train.tsv:1:", "`#3 String`", "--text-pair-column"],
    );

    // A dev label outside the training file's set.
    let model = tmp.path().join("m");
    let mut args = vec!["student", "train", "--train", s(&train), "--out", s(&model)];
    args.extend(["--epochs", "1", "--quiet"]);
    args.extend(PAIR_FLAGS);
    ok(&distill(&args));
    let odd = tmp.path().join("odd.tsv");
    let text = std::fs::read_to_string(&dev).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[3] = format!("2{}", &lines[3][1..]);
    std::fs::write(&odd, lines.join("\n")).unwrap();
    let best = model.join("best");
    let mut args = vec!["eval", "--model", s(&best), "--data", s(&odd)];
    args.extend(PAIR_FLAGS);
    fails_with(&distill(&args), &["odd.tsv:4:", "label `2`", "0, 1"]);

    // A JSON line that is not an object.
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"text\": \"fine\", \"label\": \"a\"}\n[\"not\", \"an object\"]\n",
    )
    .unwrap();
    fails_with(
        &distill(&[
            "student",
            "train",
            "--train",
            s(&bad),
            "--out",
            s(&out),
            "--quiet",
        ]),
        &["bad.jsonl:2:", "expected a JSON object", "an array"],
    );

    // Empty labels in a file used for baseline training.
    let holes = tmp.path().join("holes.csv");
    std::fs::write(&holes, "text,label\ngood,pos\nbad,neg\nmeh,\nfine,pos\n").unwrap();
    fails_with(
        &distill(&[
            "student",
            "train",
            "--train",
            s(&holes),
            "--out",
            s(&out),
            "--quiet",
        ]),
        &["holes.csv:4:", "label is empty", "baseline training"],
    );
    assert!(!out.exists(), "nothing was written");
}
