//! `distill`: train, evaluate and serve candle-distill students and teachers.
//! Each subcommand is a thin call into one library function.

mod augment;
mod bench;
mod device;
mod eval;
mod logits;
mod report;
mod student;
mod task;
mod teacher;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "distill",
    version,
    about = "Distill a BERT teacher into a tiny BiLSTM student"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train students.
    #[command(subcommand)]
    Student(student::StudentCommand),
    /// Fine-tune, evaluate and label with a BERT teacher.
    #[command(subcommand)]
    Teacher(teacher::TeacherCommand),
    /// Merge logit shards, compare logit caches.
    #[command(subcommand)]
    Logits(logits::LogitsCommand),
    /// Evaluate a student on a labelled file.
    Eval(eval::EvalArgs),
    /// Classify sentences (arguments, or stdin lines) as JSON lines.
    Predict(eval::PredictArgs),
    /// Write augmented transfer sentences for the teacher to label.
    Augment(augment::AugmentArgs),
    /// Time training and inference.
    Bench(bench::BenchArgs),
    /// Tables and pictures of a run folder: report.md, report.html, report.json, plots/
    ///
    /// Reads the run folder RUN and writes report.md, report.html (self-contained, pictures
    /// embedded), report.json (the same numbers) and plots/{training,pr,confusion}.{png,svg}
    /// into RUN, or into --out. RUN holds what the other commands wrote, in the layout
    /// `cargo xtask pipeline` uses:
    ///
    ///   eval/teacher.json, eval/teacher.scores  distill teacher eval --json --scores FILE
    ///   eval/<student>.json, .scores            distill eval --json --scores FILE
    ///   eval/test/<model>.json                  the same on a test file (optional)
    ///   bench/<student>.json                    distill bench --json (optional)
    ///   teacher/, students/<student>/best/      the model folders (parameters, size)
    ///   students/<student>/metrics.jsonl        training curves
    ///   data/dev.tsv                            the dev file the models were scored on
    ///   pipeline.json                           stage times, settings (optional)
    ///
    /// Per-label precision, recall and F1 come from each model's confusion matrix, per-label
    /// AP from its scores against the dev file's labels.
    #[command(verbatim_doc_comment)]
    Report(report::ReportArgs),
}

fn main() -> Result<()> {
    // candle asks for the thread count on every parallel op, and without RAYON_NUM_THREADS
    // that means reading /proc each time (5% of a student epoch); fix it once, here.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    // candle's element-wise thread pool spins while it waits: on small tensors and a busy
    // machine that costs more than it saves (teacher step 0.83 → 0.60 s). And it is one
    // pool for the process: the parts of a fine-tuning batch, one per core, and the
    // labelling's batches, one per core, would queue on its lock. Matrix products still
    // use every core.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Student(cmd) => student::run(cmd),
        Command::Teacher(cmd) => teacher::run(cmd),
        Command::Logits(cmd) => logits::run(cmd),
        Command::Eval(a) => eval::eval(a),
        Command::Predict(a) => eval::predict(a),
        Command::Augment(a) => augment::augment(a),
        Command::Bench(a) => bench::bench(a),
        Command::Report(a) => report::report(a),
    }
}

/// glibc's allocator maps every block over 128 KiB (raised as blocks are freed, up to 32 MiB)
/// fresh from the kernel and trims freed memory back to it: each fine-tuning step then
/// faults in and zeroes its activations again, and unmapping them from a process whose two
/// cores both run parts of the batch flushes both TLBs. Blocks up to 32 MiB (every tensor of
/// a step; a 384-wide step of 32 × 40 tokens holds 8 MB at most) now come from the heap,
/// which keeps what it frees. A MiniLM fine-tuning step: 0.321–0.327 s against 0.382–0.392
/// (40 steps, interleaved on a 2-core EPYC), for 10 % more peak memory (1.09 GB against
/// 0.99 GB). Either setting alone gains nothing or loses (a fixed trim threshold also fixes
/// the mapping threshold at 128 KiB).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's parameters; called before any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}
