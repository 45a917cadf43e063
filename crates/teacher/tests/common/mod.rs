//! Helpers shared by the teacher's integration tests.

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use distill_data::{Dataset, LabelSet};

/// The device the parity tests run on: the CPU, or `DISTILL_TEST_DEVICE=cuda[:N]` (the GPU
/// acceptance run, `scripts/gpu-acceptance.sh`, runs these test binaries on a GPU).
#[allow(dead_code)]
pub fn device() -> Device {
    match std::env::var("DISTILL_TEST_DEVICE").as_deref() {
        Err(_) | Ok("cpu") | Ok("") => Device::Cpu,
        Ok(spec) => {
            let index = spec
                .strip_prefix("cuda")
                .map(|i| i.trim_start_matches(':').parse().unwrap_or(0))
                .unwrap_or_else(|| panic!("DISTILL_TEST_DEVICE={spec}: expected cpu or cuda[:N]"));
            Device::new_cuda(index).expect("DISTILL_TEST_DEVICE asks for CUDA, which cannot open")
        }
    }
}

/// The test fixtures: the repository's `fixtures/`, or `DISTILL_FIXTURES` (a bundle
/// unpacked on another machine, where the compiled-in path does not exist).
#[allow(dead_code)]
pub fn fixture(name: &str) -> PathBuf {
    std::env::var_os("DISTILL_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures"))
        .join(name)
}

/// Largest `|a − b|` over all elements.
#[allow(dead_code)]
pub fn tensor_max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    tensor_max_abs(&(a - b).unwrap())
}

/// Largest `|t|` over all elements.
#[allow(dead_code)]
pub fn tensor_max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// A separable toy task of `n` rows from row `offset` on: "good …" sentences are
/// positive, "bad …" ones negative.
#[allow(dead_code)]
pub fn toy(n: usize, offset: usize) -> Dataset {
    let nouns = [
        "film", "plot", "cast", "score", "ending", "script", "movie", "story",
    ];
    let lines: Vec<String> = (0..n)
        .map(|i| {
            let j = i + offset;
            let (word, label) = if j.is_multiple_of(2) {
                ("good", 1)
            } else {
                ("bad", 0)
            };
            format!(
                "a {word} {} , really {word} .\t{label}",
                nouns[j % nouns.len()]
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toy.tsv");
    std::fs::write(&path, format!("sentence\tlabel\n{}\n", lines.join("\n"))).unwrap();
    Dataset::read(&path, &LabelSet::binary()).unwrap()
}
