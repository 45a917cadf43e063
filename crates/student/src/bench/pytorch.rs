//! The PyTorch side of the serving bench: `scripts/bench/torch_student_bench.py` run with a
//! given Python on the same file, its figures read back.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What `torch_student_bench.py` writes (the fields used here).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Torch {
    pub torch: String,
    pub packed: bool,
    pub threads: Option<usize>,
    pub emb: usize,
    pub hid: usize,
    /// Stacked layers (absent from figures written before the script took `--layers`).
    #[serde(default = "one")]
    pub layers: usize,
    pub best_epoch_s: Option<f64>,
    pub dev_sent_per_s_batch256: f64,
    pub latency_us_median: f64,
}

fn one() -> usize {
    1
}

/// How to run PyTorch's timing script.
#[derive(Debug, Clone)]
pub struct PyTorchBench {
    /// A Python with torch installed.
    pub python: PathBuf,
    /// The timing script (`scripts/bench/torch_student_bench.py` in the repository).
    pub script: PathBuf,
    /// `torch.set_num_threads`.
    pub threads: usize,
}

impl PyTorchBench {
    /// Runs the script on `dev` (training `epochs` epochs on `train` first when `epochs > 0`)
    /// with a student of `emb`/`hid` and `layers` stacked layers, and reads what it wrote.
    pub fn run(
        &self,
        train: &Path,
        dev: &Path,
        epochs: usize,
        (emb, hid, layers): (usize, usize, usize),
    ) -> Result<Torch> {
        let failed = |reason: String| Error::Program {
            program: self.python.clone(),
            reason,
        };
        if !self.script.is_file() {
            return Err(Error::Io {
                path: self.script.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "PyTorch's timing script not found (run from the repository root or name it)",
                ),
            });
        }
        let out =
            std::env::temp_dir().join(format!("distill-torch-bench-{}.json", std::process::id()));
        tracing::info!(python = %self.python.display(), script = %self.script.display(), "timing PyTorch");
        let output = Command::new(&self.python)
            .arg(&self.script)
            .args([train, dev, out.as_path()])
            .args(["--emb", &emb.to_string(), "--hid", &hid.to_string()])
            .args(["--epochs", &epochs.to_string()])
            .args(["--layers", &layers.to_string()])
            .args(["--threads", &self.threads.to_string()])
            .output()
            .map_err(|e| failed(format!("cannot run: {e}")))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
            return Err(failed(format!(
                "{} failed ({}):\n{}",
                self.script.display(),
                output.status,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )));
        }
        let json = std::fs::read_to_string(&out);
        let _ = std::fs::remove_file(&out);
        let json = json.map_err(|source| Error::Io {
            path: out.clone(),
            source,
        })?;
        serde_json::from_str(&json).map_err(|e| Error::Format {
            path: out,
            reason: format!("PyTorch's figures: {e}: {json}"),
        })
    }
}
