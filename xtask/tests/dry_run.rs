//! `xtask pipeline --dry-run`: the plan of each preset, with no build and nothing run.
//! (Being an integration test, it also makes `cargo test` build the xtask binary, which
//! the root `tests/pipeline.rs` runs end to end.)

use std::process::Command;

fn dry_run(args: &[&str]) -> String {
    let runs = tempfile::tempdir().expect("temporary folder");
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(["pipeline", "--dry-run", "--runs-dir"])
        .arg(runs.path())
        .args(args)
        .output()
        .expect("running xtask");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !runs.path().join("smoke").exists(),
        "a dry run wrote the run folder"
    );
    stdout
}

#[test]
fn smoke_plan_lists_every_stage_with_its_command() {
    let out = dry_run(&["--preset", "smoke"]);
    assert!(out.contains("\"train_size\": 500"), "{out}");
    assert_eq!(out.matches("/38] ").count(), 38, "{out}");
    for stage in [
        "teacher-finetune",
        "augment",
        "student-large-augment",
        "student-augment-teacher-emb",
        "eval-teacher",
        "bench-kl",
        "report",
    ] {
        assert!(
            out.contains(&format!("] {stage} (runs: new)")),
            "no {stage}:\n{out}"
        );
    }
    assert!(out.contains("distill teacher finetune --teacher"), "{out}");
    assert!(out.contains("--max-steps 12"), "{out}");
    assert!(out.contains("dry run: nothing was run"));
}

#[test]
fn flags_override_the_preset() {
    let out = dry_run(&[
        "--preset",
        "full",
        "--augment-factor",
        "0",
        "--students",
        "baseline,kl",
        "--device",
        "cuda",
    ]);
    assert!(
        !out.contains("] augment "),
        "augmentation should be off:\n{out}"
    );
    assert!(
        out.contains("student-kl") && !out.contains("student-distill"),
        "{out}"
    );
    assert!(out.contains("--mode distill --loss kl"), "{out}");
    assert!(out.contains("--device cuda"), "{out}");
    assert!(
        out.contains("teacher eval") && out.contains("--device cpu"),
        "evaluation stays on the CPU:\n{out}"
    );
    // Each stage says where it runs: the teacher on the GPU, students on the CPU.
    let placed = |stage: &str, device: &str| {
        out.lines()
            .skip_while(|l| !l.contains(stage))
            .take(2)
            .any(|l| l.contains(&format!("--device {device}")))
    };
    assert!(placed("teacher-finetune", "cuda"), "{out}");
    assert!(placed("teacher-label", "cuda"), "{out}");
    assert!(placed("student-baseline", "cpu"), "{out}");
    assert!(placed("student-kl", "cpu"), "{out}");
    assert!(out.contains("students on cpu"), "{out}");
}

#[test]
fn a_task_of_the_users_files_prints_its_size_rules_and_labels() {
    let out = dry_run(&[
        "--preset",
        "full",
        "--train",
        "assets/sst5/train.csv",
        "--dev",
        "assets/sst5/dev.csv",
        "--test",
        "assets/sst5/dev.csv",
        "--augment-factor",
        "4",
    ]);
    assert!(
        out.contains("size rule: teacher epochs = 3 (rule: 3 below 20000 training rows"),
        "{out}"
    );
    assert!(
        out.contains("size rule: augment factor = 4 (set by flag"),
        "{out}"
    );
    assert!(out.contains("--epochs 3"), "{out}");
    // The training file's label names, sorted, fix the teacher's label order.
    assert!(
        out.contains("--labels 'negative,neutral,positive,very negative,very positive'"),
        "{out}"
    );
    assert!(
        out.contains("] eval-test-teacher (") && out.contains("] eval-test-large-distill ("),
        "{out}"
    );

    let pairs = dry_run(&[
        "--preset",
        "quick",
        "--train",
        "assets/mrpc/train.tsv",
        "--dev",
        "assets/mrpc/dev.tsv",
        "--text-column",
        "#1 String",
        "--text-pair-column",
        "#2 String",
        "--label-column",
        "Quality",
        "--unlabelled",
        "assets/mrpc/dev.tsv",
    ]);
    assert!(pairs.contains("\"pairs\": true"), "{pairs}");
    for stage in ["] transfer (", "] teacher-label-transfer (", "] augment ("] {
        assert!(pairs.contains(stage), "no {stage}:\n{pairs}");
    }
    assert!(
        pairs.contains("data/transfer.tsv --augment-logits"),
        "{pairs}"
    );
}

#[test]
fn a_task_that_cannot_be_read_is_refused_before_anything_runs() {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(["pipeline", "--dry-run", "--train", "assets/mrpc/train.tsv"])
        .args(["--dev", "assets/mrpc/dev.tsv", "--text-column", "sentence"])
        .output()
        .expect("running xtask");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("train.tsv:1:") && err.contains("`sentence`") && err.contains("`#1 String`"),
        "{err}"
    );
}

#[test]
fn bad_flags_are_refused() {
    for args in [
        &["--students", "nope"][..],
        &["--force", "no-such-stage"],
        &["--device", "tpu"],
        &["--student-device", "cuda"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["pipeline", "--preset", "smoke", "--dry-run"])
            .args(args)
            .output()
            .expect("running xtask");
        assert!(!out.status.success(), "{args:?} was accepted");
    }
}
