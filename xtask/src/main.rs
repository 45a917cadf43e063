//! `cargo xtask <task>`: project chores that need more than cargo. The xtask orchestrates
//! and computes nothing: the pipeline's stages are `distill` commands, so it depends on no
//! numeric crate and builds in seconds.

mod cuda;
mod pipeline;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "xtask", about = "candle-distill project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install the pinned CUDA 13.0 wheels (when missing), make the link-time driver stub,
    /// and print the environment a `--features cuda` build needs.
    CudaToolchain(cuda::ToolchainArgs),
    /// Build the CUDA `distill` binary (and optionally the GPU acceptance bundle).
    CudaBuild(cuda::BuildArgs),
    /// The whole run: teacher, labels, augmentation, students, evaluation and a report.
    Pipeline(Box<pipeline::PipelineArgs>),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::CudaToolchain(args) => cuda::toolchain(&args),
        Task::CudaBuild(args) => cuda::build(&args),
        Task::Pipeline(args) => pipeline::run(&args),
    }
}
