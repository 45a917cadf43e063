//! Tests of the report: formatting, and whole reports from fake run folders (a fixed
//! three-label one checked by hand, a six-label one to look at).

use super::*;

#[test]
fn formats() {
    assert_eq!(thousands(1234567), "1,234,567");
    assert_eq!(thousands(12), "12");
    assert_eq!(bytes(3 << 20), "3.0 MB");
    assert_eq!(micros(Some(1500.0)), "1.5 ms");
    assert_eq!(ratio(Some(123.4)), "123×");
}

#[test]
fn tables_render_and_escape() {
    let mut t = Table::new(&["a", "b"]);
    t.rows.push(vec!["x|y".into(), "<z>".into()]);
    assert!(t.markdown().contains("x\\|y"));
    assert!(t.html().contains("&lt;z&gt;"));
}

use std::path::Path;

use distill_data::metrics::probabilities;
use distill_data::{LabelSet, Metrics};
use serde_json::{json, Value};

use crate::run::RunFolder;

/// One model of a fake run: its name, eval JSON and `[n][C]` class probabilities.
struct Fake {
    name: &'static str,
    eval: Value,
    probs: Vec<Vec<f32>>,
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A safetensors file holding one `[2, 3]` tensor (6 parameters).
fn safetensors(path: &Path) {
    let header = br#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend([0u8; 24]);
    write(path, &bytes);
}

/// Writes the files the report reads into `run`: the dev set, then per model (the first
/// the teacher) its folder, eval JSON and scores, and per student its training curve and
/// timing. Returns the selection of those students.
fn fake_run(run: &Path, labels: &LabelSet, gold: &[u32], models: &[Fake]) -> Selection {
    let folder = RunFolder::new(run);
    let dev: String = std::iter::once("sentence\tlabel\n".to_string())
        .chain(
            gold.iter()
                .enumerate()
                .map(|(i, &g)| format!("sentence {i}\t{}\n", labels.name(g).unwrap())),
        )
        .collect();
    write(&folder.dev(), dev.as_bytes());
    for (i, m) in models.iter().enumerate() {
        let (dir, teacher) = if i == 0 {
            (folder.teacher(), true)
        } else {
            (folder.student(m.name).join("best"), false)
        };
        for f in RunFolder::model_files(&dir, teacher) {
            if f.ends_with("model.safetensors") {
                safetensors(&f);
            } else {
                write(&f, b"{}");
            }
        }
        write(&folder.eval(m.name), m.eval.to_string().as_bytes());
        let scores: String = m
            .probs
            .iter()
            .map(|r| {
                let cells: Vec<String> = r.iter().map(f32::to_string).collect();
                cells.join("\t") + "\n"
            })
            .collect();
        write(&folder.scores(m.name), scores.as_bytes());
        if !teacher {
            let curve: String = (1..=4)
                .map(|e| {
                    let (loss, acc) = (1.0 / e as f64, 0.4 + 0.05 * e as f64);
                    format!(
                        "{{\"epoch\":{e},\"train_loss\":{loss},\"val_loss\":{},\"val_acc\":{acc}}}\n",
                        loss * 1.2
                    )
                })
                .collect();
            write(
                &folder.student(m.name).join("metrics.jsonl"),
                curve.as_bytes(),
            );
            let bench = json!({"text_sentences_per_second": 5000.0 + 100.0 * i as f64,
                "text_latency_us_median": 200.0});
            write(&folder.bench(m.name), bench.to_string().as_bytes());
        }
    }
    Selection {
        students: Some(models[1..].iter().map(|m| m.name.to_string()).collect()),
        ..Selection::default()
    }
}

/// The eval JSON `distill eval --json` writes for these probabilities.
fn eval_json(labels: &LabelSet, probs: &[Vec<f32>], gold: &[u32]) -> Value {
    let c = labels.len();
    let m = Metrics::compute(&probs.concat(), c, gold);
    let mut v = serde_json::to_value(&m).unwrap();
    v["labels"] = json!(labels.names());
    v["sentences_per_second"] = json!(120.0);
    v["latency_us_median"] = json!(9000.0);
    v
}

#[test]
fn three_labels_per_label_and_confusion_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let labels = LabelSet::new(vec!["neg".into(), "neu".into(), "pos".into()]);
    let gold = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2];
    // Predictions (argmax): gold 0 → 0 0 0 1; gold 1 → 0 1 1 2; gold 2 → 2 2 2 2.
    let probs: Vec<Vec<f32>> = [
        [0.8, 0.1, 0.1],
        [0.7, 0.2, 0.1],
        [0.6, 0.3, 0.1],
        [0.3, 0.6, 0.1],
        [0.5, 0.4, 0.1],
        [0.2, 0.7, 0.1],
        [0.1, 0.5, 0.4],
        [0.1, 0.3, 0.6],
        [0.1, 0.1, 0.8],
        [0.1, 0.2, 0.7],
        [0.0, 0.1, 0.9],
        [0.2, 0.1, 0.7],
    ]
    .iter()
    .map(|r| r.to_vec())
    .collect();
    // The eval output as the CLI prints it, written out by hand.
    let eval = json!({
        "labels": ["neg", "neu", "pos"], "n": 12, "acc": 0.75, "ap": 0.9069, "f1": 0.7368,
        "confusion": [[3, 1, 0], [1, 2, 1], [0, 0, 4]],
        "sentences_per_second": 100.0, "latency_us_median": 5000.0,
    });
    let selection = fake_run(
        dir.path(),
        &labels,
        &gold,
        &[Fake {
            name: "teacher",
            eval,
            probs,
        }],
    );
    super::write(&RunFolder::new(dir.path()), &selection, None).unwrap();

    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["labels"], json!(["neg", "neu", "pos"]));
    let t = &report["models"][0];
    assert_eq!(t["confusion"], json!([[3, 1, 0], [1, 2, 1], [0, 0, 4]]));
    // neg: 3 of 4 predicted right, 3 of 4 found; neu: 2 of 3, 2 of 4; pos: 4 of 5, 4 of 4.
    let expected = [
        (3.0 / 4.0, 3.0 / 4.0, 4),
        (2.0 / 3.0, 2.0 / 4.0, 4),
        (4.0 / 5.0, 1.0, 4),
    ];
    for (k, (p, r, support)) in expected.into_iter().enumerate() {
        let c = &t["classes"][k];
        let f1 = 2.0 * p * r / (p + r);
        for (key, want) in [("precision", p), ("recall", r), ("f1", f1)] {
            let got = c[key].as_f64().unwrap();
            assert!(
                (got - want).abs() < 1e-12,
                "class {k} {key}: {got} vs {want}"
            );
        }
        assert_eq!(c["support"], support);
    }
    let macro_f1 = (0.75 + 4.0 / 7.0 + 8.0 / 9.0) / 3.0;
    assert!((t["macro_f1"].as_f64().unwrap() - macro_f1).abs() < 1e-12);
    // One-vs-rest AP by hand. neg: 0.8 0.7 0.6 + then 0.5 −, 0.3 +: (1 + 1 + 1 + 4/5) / 4.
    // neu: 0.7 +, 0.6 −, 0.5 +, 0.4 +, {0.3 +, 0.3 −}: (1 + 2/3 + 3/4 + 4/6) / 4.
    // pos: its four examples score highest: 1.
    let ap = [0.95, (1.0 + 2.0 / 3.0 + 0.75 + 4.0 / 6.0) / 4.0, 1.0];
    for (k, want) in ap.into_iter().enumerate() {
        let got = t["class_ap"][k].as_f64().unwrap();
        assert!((got - want).abs() < 1e-9, "AP {k}: {got} vs {want}");
    }

    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        md.contains("| neu | 0.667 | 0.500 | 0.571 | 4 | 0.771 |"),
        "{md}"
    );
    assert!(
        md.contains("| pos | 0.800 | 1.000 | 0.889 | 4 | 1.000 |"),
        "{md}"
    );
    assert!(md.contains("| neu | 1 | 2 | 1 |"), "{md}");
    assert!(md.contains("AP: the mean over labels"), "{md}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("<td>neu</td><td>0.667</td><td>0.500</td><td>0.571</td>"));
    for f in ["pr.png", "pr.svg", "confusion.png", "confusion.svg"] {
        assert!(dir.path().join("plots").join(f).exists(), "{f}");
    }
}

/// A tiny deterministic generator (64-bit LCG) for fake probabilities.
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Probabilities of a model that puts `skill` logits on the gold label, plus noise that
/// favours neighbouring labels (as sentiment grades confuse their neighbours).
fn fake_probs(gold: &[u32], c: usize, skill: f32, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Lcg(seed);
    gold.iter()
        .map(|&g| {
            let logits: Vec<f32> = (0..c)
                .map(|k| {
                    let distance = (k as f32 - g as f32).abs();
                    skill * (1.0 - distance / 2.0).max(-1.0) + 2.0 * rng.unit()
                })
                .collect();
            probabilities(&logits)
        })
        .collect()
}

/// A six-label report from a fake run. Set DISTILL_REPORT_PREVIEW to a folder to keep it
/// there and look at it.
#[test]
fn six_label_report_renders() {
    let keep = std::env::var_os("DISTILL_REPORT_PREVIEW");
    let tmp = tempfile::tempdir().unwrap();
    let run = keep.as_ref().map_or(tmp.path(), |p| Path::new(p));
    let names = [
        "very negative",
        "negative",
        "slightly negative",
        "slightly positive",
        "positive",
        "very positive",
    ];
    let labels = LabelSet::new(names.iter().map(|s| s.to_string()).collect());
    let c = labels.len();
    let gold: Vec<u32> = (0..300u32).map(|i| (i * 7 + i / 11) % c as u32).collect();
    let models: Vec<Fake> = [
        ("teacher", 3.0),
        ("baseline", 1.2),
        ("distill", 1.8),
        ("kl", 1.6),
        ("distill-augment", 2.2),
        ("large-augment", 2.5),
    ]
    .iter()
    .enumerate()
    .map(|(i, &(name, skill))| {
        let probs = fake_probs(&gold, c, skill, i as u64 + 1);
        Fake {
            name,
            eval: eval_json(&labels, &probs, &gold),
            probs,
        }
    })
    .collect();
    let selection = fake_run(run, &labels, &gold, &models);
    super::write(&RunFolder::new(run), &selection, None).unwrap();

    let report: Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    for m in report["models"].as_array().unwrap() {
        let cm = m["confusion"].as_array().unwrap();
        assert_eq!(cm.len(), c);
        let total: u64 = cm
            .iter()
            .flat_map(|r| r.as_array().unwrap())
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(total, 300);
        assert_eq!(m["classes"].as_array().unwrap().len(), c);
    }
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("| very negative |"));
    assert!(md.contains("Best student by dev accuracy"));
}

/// A two-label run written before N-label support (no `labels` in the eval JSON, one
/// P(label 1) per line of scores) reports the numbers of its eval JSON unchanged. Set
/// DISTILL_REPORT_PREVIEW2 to a folder to keep it there.
#[test]
fn two_label_report_reads_old_runs_and_keeps_their_numbers() {
    let keep = std::env::var_os("DISTILL_REPORT_PREVIEW2");
    let tmp = tempfile::tempdir().unwrap();
    let run = keep.as_ref().map_or(tmp.path(), |p| Path::new(p));
    let labels = LabelSet::binary();
    let gold: Vec<u32> = (0..200u32).map(|i| (i * 3 + i / 7) % 2).collect();
    let models: Vec<Fake> = [("teacher", 3.0), ("baseline", 1.0), ("distill", 1.5)]
        .iter()
        .enumerate()
        .map(|(i, &(name, skill))| {
            let probs = fake_probs(&gold, 2, skill, i as u64 + 11);
            let mut eval = eval_json(&labels, &probs, &gold);
            let old = ["n", "acc", "ap", "f1", "confusion"];
            eval.as_object_mut().unwrap().retain(|k, _| {
                old.contains(&k.as_str()) || k.contains("second") || k.contains("latency")
            });
            let p1 = probs.iter().map(|r| vec![r[1]]).collect();
            Fake {
                name,
                eval,
                probs: p1,
            }
        })
        .collect();
    let selection = fake_run(run, &labels, &gold, &models);
    super::write(&RunFolder::new(run), &selection, None).unwrap();
    let report: Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    for (m, fake) in report["models"].as_array().unwrap().iter().zip(&models) {
        assert_eq!(m["n"], fake.eval["n"]);
        assert_eq!(m["confusion"], fake.eval["confusion"]);
        for key in ["acc", "ap", "f1"] {
            // Equal up to serde_json's last-digit parsing.
            let (a, b) = (m[key].as_f64().unwrap(), fake.eval[key].as_f64().unwrap());
            assert!((a - b).abs() < 1e-12, "{} {key}: {a} vs {b}", fake.name);
        }
        // AP of label 1 recomputed from the old scores file is the eval's AP.
        let ap = m["class_ap"][1].as_f64().unwrap();
        assert!((ap - m["ap"].as_f64().unwrap()).abs() < 1e-12);
    }
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("| dev acc | AP | F1 | macro-F1 |"), "{md}");
    assert!(md.contains("F1: of label `1`"), "{md}");
}
