//! Fuzz targets for every reader of outside bytes in candle-distill, and a runner that needs
//! no nightly toolchain.
//!
//! Each target in [`targets`] takes arbitrary bytes, feeds them to one reader (through a file
//! where the reader takes a path) and returns whether the reader accepted them. The property
//! is the same for all: any bytes give `Ok` or a typed error — never a panic, a hang, or an
//! allocation beyond a constant times the input's size plus a fixed allowance for the model.
//!
//! [`runner::fuzz`] checks that property: it replays the corpus in `corpus/<target>/`, then
//! mutates it ([`mutate::Mutator`]) for a fixed time, each input on a worker thread under a
//! 2-second watchdog, with its peak allocation measured by [`alloc::CountingAlloc`] (which the
//! test binary installs as its global allocator). `tests/fuzz.rs` runs every target in CI;
//! `fuzz/` at the repository root runs the same functions under libFuzzer.

pub mod alloc;
pub mod mutate;
pub mod runner;
pub mod targets;

pub use runner::{fuzz, Report, Target, TARGETS};
pub use targets::{
    dataset_csv, dataset_jsonl, dataset_tsv, logits_cache, predict_stdin, student_config,
    teacher_config, vocab_json,
};
