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

pub fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/sst2")
}

/// The header and the first `lines` rows of `src`.
pub fn head(src: &Path, dst: &Path, lines: usize) {
    let text = std::fs::read_to_string(src).unwrap();
    let part: Vec<&str> = text.lines().take(lines + 1).collect();
    std::fs::write(dst, part.join("\n") + "\n").unwrap();
}
