//! End to end through the binaries: `cargo xtask pipeline --preset smoke` into a temporary
//! folder (every model in the report with numbers in range, then a second run that skips
//! every stage), and a student training run killed mid-way and resumed, which must end
//! exactly where an uninterrupted run with the same seed ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

const STUDENTS: [&str; 10] = [
    "baseline",
    "distill",
    "weighted-mse",
    "kl",
    "distill-teacher-emb",
    "distill-augment",
    "augment-teacher-emb",
    "large-baseline",
    "large-distill",
    "large-augment",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `release` or `debug`: the profile these tests were built with (`target/<it>/deps/…`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

fn release() -> bool {
    profile_dir().file_name().is_some_and(|n| n == "release")
}

fn cargo() -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(root());
    cmd
}

/// The `distill` binary of this profile, built once if missing.
fn distill() -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let bin = profile_dir().join(format!("distill{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        let mut cmd = cargo();
        cmd.args(["build", "-p", "distill-cli"]);
        if release() {
            cmd.arg("--release");
        }
        assert!(
            cmd.status().expect("running cargo build").success(),
            "building distill failed"
        );
    }
    bin
}

/// `xtask pipeline --preset smoke --no-build …`; returns stdout. The xtask binary is the
/// one `cargo test` built beside this test (xtask's own integration tests make it build
/// it), so nothing is compiled here; run alone, it falls back to `cargo run` with the
/// xtask's own profile, as `cargo xtask` does (see .cargo/config.toml).
fn smoke_pipeline(runs: &Path) -> String {
    smoke_pipeline_with(runs, &[])
}

/// [`smoke_pipeline`] with more flags (a task, a run name).
fn smoke_pipeline_with(runs: &Path, extra: &[&str]) -> String {
    let built = profile_dir().join(format!("xtask{}", std::env::consts::EXE_SUFFIX));
    let mut cmd = if built.is_file() {
        let mut cmd = Command::new(built);
        cmd.current_dir(root());
        cmd
    } else {
        let mut cmd = cargo();
        cmd.args(["run", "--profile", "xtask", "-p", "xtask", "--"]);
        cmd
    };
    // The CLI is the one these tests were built beside (`distill()`), hence --no-build.
    cmd.args(["pipeline", "--preset", "smoke", "--no-build"]);
    cmd.arg("--runs-dir").arg(runs);
    cmd.args(["--profile", if release() { "release" } else { "dev" }]);
    cmd.args(extra);
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .expect("running xtask pipeline");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "pipeline failed:\n{stdout}");
    stdout
}

fn in_unit(v: &Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!((0.0..=1.0).contains(&x), "{what} = {x} is outside [0, 1]");
    x
}

fn positive(v: &Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x > 0.0 && x.is_finite(), "{what} = {x} is not positive");
    x
}

#[test]
fn smoke_pipeline_reports_every_model_and_resumes_by_skipping() {
    distill();
    let runs = tempfile::tempdir().expect("temporary folder");
    let started = Instant::now();
    let first = smoke_pipeline(runs.path());
    eprintln!("smoke pipeline: {:.1} s", started.elapsed().as_secs_f64());
    let run = runs.path().join("smoke");

    let report: Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).expect("report.json"))
            .expect("JSON");
    let models = report["models"].as_array().expect("models");
    let names: Vec<&str> = models
        .iter()
        .map(|m| m["name"].as_str().unwrap_or("?"))
        .collect();
    let mut expected = vec!["teacher"];
    expected.extend(STUDENTS);
    assert_eq!(names, expected);
    for m in models {
        let name = m["name"].as_str().unwrap_or("?");
        assert_eq!(m["n"], 872, "{name}: dev size");
        for key in ["acc", "ap", "f1"] {
            in_unit(&m[key], &format!("{name} {key}"));
        }
        for key in [
            "params",
            "size_bytes",
            "throughput",
            "latency_us",
            "speedup_throughput",
            "speedup_latency",
        ] {
            positive(&m[key], &format!("{name} {key}"));
        }
        let confusion: u64 = m["confusion"]
            .as_array()
            .expect("confusion")
            .iter()
            .flat_map(|r| r.as_array().expect("row"))
            .map(|c| c.as_u64().expect("count"))
            .sum();
        assert_eq!(confusion, 872, "{name}: confusion counts");
    }

    let md = std::fs::read_to_string(run.join("report.md")).expect("report.md");
    for name in &expected {
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("no row for {name} in report.md"));
        let acc: f64 = row
            .split('|')
            .nth(3)
            .and_then(|c| c.trim().trim_end_matches('%').parse().ok())
            .expect("accuracy cell");
        assert!(
            (0.0..=100.0).contains(&acc),
            "{name}: accuracy {acc}% in report.md"
        );
    }
    let html = std::fs::read_to_string(run.join("report.html")).expect("report.html");
    assert_eq!(
        html.matches("data:image/png;base64,").count(),
        3,
        "three embedded plots"
    );
    for stem in ["training", "pr", "confusion"] {
        for ext in ["png", "svg"] {
            let len = std::fs::metadata(run.join("plots").join(format!("{stem}.{ext}")))
                .map_or(0, |m| m.len());
            assert!(len > 1000, "plots/{stem}.{ext} is missing or empty");
        }
    }
    let stages = report["stages"].as_array().expect("stages").len();
    assert!(
        first.contains(&format!("{stages} stages, {stages} run, 0 skipped")),
        "first run:\n{first}"
    );

    let second = smoke_pipeline(runs.path());
    assert!(
        second.contains(&format!("{stages} stages, 0 run, {stages} skipped")),
        "second run:\n{second}"
    );
    assert_eq!(second.matches(": skipped (up to date)").count(), stages);
    assert!(
        !second.contains(": running"),
        "second run ran something:\n{second}"
    );

    // A dry run keys the stages as a run does: all up to date, until a setting changes.
    let dry = smoke_pipeline_with(runs.path(), &["--dry-run"]);
    assert_eq!(dry.matches(" (up to date) — ").count(), stages, "{dry}");
    let changed = smoke_pipeline_with(runs.path(), &["--dry-run", "--augment-factor", "3"]);
    let state = |name: &str| {
        let line = changed
            .lines()
            .find(|l| l.contains(&format!("] {name} (")))
            .unwrap_or_else(|| panic!("no stage {name}:\n{changed}"));
        line[line.find(" (").unwrap() + 2..line.find(") — ").unwrap()].to_string()
    };
    assert_eq!(state("teacher-finetune"), "up to date");
    assert_eq!(state("augment"), "runs: command or inputs changed");
    assert_eq!(
        state("teacher-label-augment"),
        "runs: after an earlier stage"
    );
    assert_eq!(state("student-distill"), "up to date");
    assert_eq!(state("report"), "runs: after an earlier stage");
}

/// The report of a smoke run on another task: every model evaluated on all `dev_rows`, with
/// a `labels`×`labels` confusion matrix and a row per label in report.md.
fn check_task_report(run: &Path, labels: &[&str], dev_rows: u64, students: &[&str]) {
    let report: Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).expect("report.json"))
            .expect("JSON");
    assert_eq!(report["labels"], serde_json::json!(labels));
    let models = report["models"].as_array().expect("models");
    let names: Vec<&str> = models.iter().map(|m| m["name"].as_str().unwrap()).collect();
    let mut expected = vec!["teacher"];
    expected.extend(students);
    assert_eq!(names, expected);
    for m in models {
        let name = m["name"].as_str().unwrap();
        assert_eq!(m["n"], dev_rows, "{name}");
        let rows = m["confusion"].as_array().expect("confusion");
        assert_eq!(rows.len(), labels.len(), "{name}");
        let total: u64 = rows
            .iter()
            .map(|r| {
                let r = r.as_array().expect("row");
                assert_eq!(r.len(), labels.len(), "{name}");
                r.iter().map(|c| c.as_u64().unwrap()).sum::<u64>()
            })
            .sum();
        assert_eq!(total, dev_rows, "{name}: confusion counts");
        assert_eq!(
            m["classes"].as_array().unwrap().len(),
            labels.len(),
            "{name}"
        );
    }
    let md = std::fs::read_to_string(run.join("report.md")).expect("report.md");
    for label in labels {
        assert!(md.contains(label), "report.md never names {label}");
    }
}

#[test]
fn smoke_pipeline_on_six_named_classes_and_on_sentence_pairs() {
    distill();
    let runs = tempfile::tempdir().expect("temporary folder");
    let students = ["baseline", "distill", "distill-augment", "large-distill"];
    let list = students.join(",");
    let six = root().join("fixtures/six-topics");
    let (train, dev, unlabelled) = (
        six.join("train.jsonl"),
        six.join("dev.jsonl"),
        six.join("unlabelled.jsonl"),
    );
    let (train, dev, unlabelled) = (
        train.to_str().unwrap(),
        dev.to_str().unwrap(),
        unlabelled.to_str().unwrap(),
    );
    let out = smoke_pipeline_with(
        runs.path(),
        &[
            "--name",
            "six",
            "--train",
            train,
            "--dev",
            dev,
            "--unlabelled",
            unlabelled,
            "--students",
            &list,
        ],
    );
    assert!(out.contains("] transfer: done"), "{out}");
    let topics = ["food", "music", "sports", "tech", "travel", "weather"];
    check_task_report(&runs.path().join("six"), &topics, 90, &students);

    let mrpc = root().join("assets/mrpc");
    let (train, dev) = (mrpc.join("train.tsv"), mrpc.join("dev.tsv"));
    smoke_pipeline_with(
        runs.path(),
        &[
            "--name",
            "pairs",
            "--train",
            train.to_str().unwrap(),
            "--dev",
            dev.to_str().unwrap(),
            "--text-column",
            "#1 String",
            "--text-pair-column",
            "#2 String",
            "--label-column",
            "Quality",
            "--train-size",
            "300",
            "--dev-size",
            "100",
            "--students",
            &list,
        ],
    );
    let run = runs.path().join("pairs");
    check_task_report(&run, &["0", "1"], 100, &students);
    let config: Value = serde_json::from_slice(
        &std::fs::read(run.join("students/distill/best/config.json")).expect("student config"),
    )
    .expect("JSON");
    assert_eq!(config["pair"], true);
    let augmented = std::fs::read_to_string(run.join("data/augment.tsv")).expect("augment.tsv");
    assert!(
        augmented.starts_with("sentence1\tsentence2\n"),
        "augmented pairs"
    );
}

/// The first `n` sentences of SST-2 train, as a TSV in `dir`.
fn sst2_head(dir: &Path, n: usize) -> PathBuf {
    let text = std::fs::read_to_string(root().join("assets/sst2/train.tsv")).expect("SST-2 train");
    let head: Vec<&str> = text.lines().take(n + 1).collect();
    let path = dir.join("train.tsv");
    std::fs::write(&path, head.join("\n") + "\n").expect("writing the subset");
    path
}

fn train_command(bin: &Path, train: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["student", "train", "--train"])
        .arg(train)
        .arg("--out")
        .arg(out);
    cmd.args(["--epochs", "10", "--seed", "7", "--quiet"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    cmd
}

/// metrics.jsonl without the wall-clock field.
fn metrics(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).expect("metrics.jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).expect("a metrics line");
            v.as_object_mut()
                .expect("an object")
                .remove("epoch_seconds");
            v
        })
        .collect()
}

#[test]
fn a_killed_training_run_resumes_to_the_uninterrupted_result() {
    let bin = distill();
    let tmp = tempfile::tempdir().expect("temporary folder");
    let train = sst2_head(tmp.path(), 3000);
    let (whole, killed) = (tmp.path().join("whole"), tmp.path().join("killed"));

    assert!(train_command(&bin, &train, &whole)
        .status()
        .expect("training")
        .success());

    let mut child = train_command(&bin, &train, &killed)
        .spawn()
        .expect("starting training");
    let state = killed.join("last/state.json");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !state.exists() {
        assert!(Instant::now() < deadline, "no checkpoint after 5 minutes");
        if let Some(status) = child.try_wait().expect("polling") {
            panic!("training ended ({status}) before its first checkpoint appeared");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().expect("killing training");
    let status = child.wait().expect("waiting for the killed run");
    assert!(
        !status.success(),
        "training finished before it could be killed; nothing was resumed"
    );
    let done = if killed.join("metrics.jsonl").exists() {
        metrics(&killed).len()
    } else {
        0
    };
    assert!(done < 10, "all epochs were done before the kill");
    eprintln!("killed after {done} of 10 epochs");

    assert!(train_command(&bin, &train, &killed)
        .status()
        .expect("resuming")
        .success());
    assert_eq!(
        metrics(&killed),
        metrics(&whole),
        "metrics after resuming differ from the uninterrupted run"
    );
    let best = |d: &Path| std::fs::read(d.join("best/model.safetensors")).expect("best weights");
    assert!(
        best(&killed) == best(&whole),
        "best/model.safetensors differs from the uninterrupted run"
    );
}
