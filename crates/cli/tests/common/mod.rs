//! Helpers shared by the `distill` binary's tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `distill` with `args` (no scheduler index in its environment).
pub fn distill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_distill"))
        .args(args)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .expect("distill runs")
}

/// `distill predict --model MODEL` with `input` on stdin.
#[allow(dead_code)] // not every test binary predicts
pub fn predict_stdin(model: &Path, input: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_distill"))
        .arg("predict")
        .arg("--model")
        .arg(model)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("distill starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("writing stdin");
    drop(stdin);
    child.wait_with_output().expect("distill ends")
}

pub fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/sst2")
}

/// The header and the first `lines` rows of `src`.
pub fn head(src: &Path, dst: &Path, lines: usize) {
    let text = std::fs::read_to_string(src).unwrap();
    let part: Vec<&str> = text.lines().take(lines + 1).collect();
    std::fs::write(dst, part.join("\n") + "\n").unwrap();
}

/// Fails unless `o` is a clean failure (non-zero exit, no panic) whose stderr holds `parts`.
#[allow(dead_code)] // not every test binary expects failures
pub fn fails_with(o: &Output, parts: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "succeeded; stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for p in parts {
        assert!(err.contains(p), "stderr lacks {p}: {err}");
    }
}
