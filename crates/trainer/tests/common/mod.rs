//! Helpers shared by the trainer's integration tests.

use std::path::{Path, PathBuf};

use distill_data::{Dataset, LabelSet};
use distill_trainer::EpochRecord;

/// The first `n` sentences of SST-2 train, written as `dir/train.tsv`.
pub fn sst2_slice(dir: &Path, n: usize) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/sst2/train.tsv");
    let data = Dataset::read(&src, &LabelSet::binary()).unwrap();
    let path = dir.join("train.tsv");
    data.subset(&(0..n).collect::<Vec<_>>())
        .write_tsv(&path)
        .unwrap();
    path
}

/// The records of a run's `metrics.jsonl`.
#[allow(dead_code)] // not every test file reads metrics
pub fn records(dir: &Path) -> Vec<EpochRecord> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
