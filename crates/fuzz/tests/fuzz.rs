//! Every fuzz target for a fixed time: replay `corpus/<target>/`, then mutate. The time per
//! target is `DISTILL_FUZZ_SECONDS` (default 8, about a minute for all seven); the seed is
//! `DISTILL_FUZZ_SEED` (default: from the clock, printed). A failing input is saved under
//! `target/fuzz-failures/<target>/` and the failure names the file.
//!
//! `cargo test --release -p distill-fuzz --test fuzz -- --nocapture` prints one summary line
//! per target with its number of executions; every run also appends them to
//! `target/fuzz-summary.txt`, which `.ci/run` prints.

use std::path::PathBuf;
use std::sync::Mutex;

use distill_fuzz::alloc::CountingAlloc;
use distill_fuzz::{fuzz, TARGETS};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// The allocation counts are process-wide: one target at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const DEFAULT_SECONDS: f64 = 8.0;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        Err(_) => default,
    }
}

fn run(name: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let target = TARGETS
        .iter()
        .find(|t| t.name == name)
        .expect("a known target");
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir.join("../../target"));
    let seconds = env_or("DISTILL_FUZZ_SECONDS", DEFAULT_SECONDS);
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let seed = env_or("DISTILL_FUZZ_SEED", clock);
    match fuzz(
        target,
        &crate_dir.join("corpus").join(name),
        &target_dir.join("fuzz-failures"),
        seconds,
        seed,
    ) {
        Ok(report) => {
            eprintln!("{report}");
            // Test output is captured in a plain `cargo test`: keep the counts where CI
            // prints them from (`.ci/run`).
            let summary = target_dir.join("fuzz-summary.txt");
            let line = format!("{report}\n");
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&summary)
            {
                use std::io::Write;
                let _ = f.write_all(line.as_bytes());
            }
        }
        Err(failure) => {
            eprintln!("{failure}");
            panic!("{failure}");
        }
    }
}

#[test]
fn dataset_tsv_reader_survives_any_bytes() {
    run("dataset_tsv");
}

#[test]
fn dataset_csv_reader_survives_any_bytes() {
    run("dataset_csv");
}

#[test]
fn dataset_jsonl_reader_survives_any_bytes() {
    run("dataset_jsonl");
}

#[test]
fn vocab_json_reader_survives_any_bytes() {
    run("vocab_json");
}

#[test]
fn student_config_reader_survives_any_bytes() {
    run("student_config");
}

#[test]
fn teacher_config_reader_survives_any_bytes() {
    run("teacher_config");
}

#[test]
fn logits_cache_reader_survives_any_bytes() {
    run("logits_cache");
}

#[test]
fn predict_stdin_survives_any_bytes() {
    run("predict_stdin");
}

#[test]
fn every_target_has_a_test_and_a_corpus() {
    let source = include_str!("fuzz.rs");
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for t in TARGETS {
        assert!(
            source.contains(&format!("run(\"{}\")", t.name)),
            "no test runs {}",
            t.name
        );
        let corpus = crate_dir.join("corpus").join(t.name);
        let files = std::fs::read_dir(&corpus).map_or(0, |d| d.count());
        assert!(files > 0, "{} has no seed corpus", corpus.display());
    }
}
