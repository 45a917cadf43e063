//! `distill report`: the report of a run folder, a thin call into `distill_report`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use distill_report::{RunFolder, Selection};

use crate::task::TaskArgs;

/// Options of `distill report` (its help is on the subcommand in `main.rs`).
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The run folder.
    #[arg(long, value_name = "RUN")]
    run: PathBuf,
    /// Students to report, in this order, comma-separated [default: pipeline.json's list,
    /// else every students/<name> with an eval/<name>.json, by name].
    #[arg(long, value_delimiter = ',')]
    students: Option<Vec<String>>,
    /// The dev file the models were scored on [default: RUN/data/dev.tsv].
    #[arg(long)]
    dev: Option<PathBuf>,
    /// Where to write the report [default: RUN].
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    task: TaskArgs,
}

pub fn report(a: ReportArgs) -> Result<()> {
    let selection = Selection {
        students: a.students,
        dev: a.dev,
        task: a.task.spec(),
    };
    let written = distill_report::write(&RunFolder::new(&a.run), &selection, a.out.as_deref())
        .with_context(|| format!("reporting on {}", a.run.display()))?;
    println!(
        "wrote {}, {}, {} and {} plots",
        written.markdown.display(),
        written.html.display(),
        written.json.display(),
        written.figures.len() * 2
    );
    Ok(())
}
