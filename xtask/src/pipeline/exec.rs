//! Running the plan: for each stage, key it, skip it when up to date, otherwise run it
//! (printing one line with its state, the command, and letting the command's own progress
//! bar draw beneath), and record the outcome in `pipeline.json` after every change of
//! state, so that a kill or a failure loses nothing already finished.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use distill_data::{stratified_subset, Dataset, LabelSet};

use super::cache::{now_unix, stage_key, FileHasher, PipelineFile, StageRecord, State};
use super::layout::Layout;
use super::stages::{Action, Stage};
use super::{Context as RunContext, Paths};

/// Whether a stage runs, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Done under the same key, outputs present: skipped.
    UpToDate,
    /// Runs: new, resuming, forced, outputs missing, inputs changed, after an earlier stage.
    Runs(&'static str),
}

const RESUMING: &str = "resuming";
const NEW: &str = "new";

/// The SHA-256 of each of `stage`'s inputs, by canonical path.
fn input_hashes(
    ctx: &RunContext,
    stage: &Stage,
    hasher: &mut FileHasher,
) -> Result<BTreeMap<String, String>> {
    let mut inputs = BTreeMap::new();
    for path in &stage.inputs {
        let hash = hasher.sha256(path).with_context(|| {
            format!(
                "stage `{}` needs {}, which an earlier stage should have written",
                stage.name,
                path.display()
            )
        })?;
        inputs.insert(ctx.paths.canonical(&path.display().to_string()), hash);
    }
    Ok(inputs)
}

/// `stage`'s key: its settings, canonical command line and input hashes.
fn key_of(
    ctx: &RunContext,
    stage: &Stage,
    record: &PipelineFile,
    inputs: &BTreeMap<String, String>,
) -> String {
    let mut settings = stage.settings.clone();
    if stage.name == "report" {
        // The report shows every stage's wall time: a rerun stage reruns the report. Keyed
        // on the times as shown, since a float read back from JSON may differ in its last bit.
        for r in record.stages.iter().filter(|r| r.name != stage.name) {
            let shown = r.seconds.map(seconds).unwrap_or_default();
            settings.push_str(&format!("\n{} {} {shown}", r.name, r.key));
        }
    }
    let canonical: Vec<String> = ctx
        .paths
        .command_args(stage)
        .iter()
        .map(|a| ctx.paths.canonical(a))
        .collect();
    stage_key(&settings, &canonical, inputs)
}

/// Whether `stage`, keyed `key` now, runs given its last record.
fn verdict(ctx: &RunContext, stage: &Stage, previous: Option<&StageRecord>, key: &str) -> Verdict {
    let same_key = previous.is_some_and(|r| r.key == key);
    let done = previous.is_some_and(|r| r.state == State::Done);
    let outputs_exist = stage.outputs.iter().all(|p| p.exists());
    Verdict::Runs(match previous {
        _ if ctx.forced(&stage.name) => "forced",
        None => NEW,
        Some(_) if same_key && done && outputs_exist => return Verdict::UpToDate,
        Some(_) if same_key && !done => RESUMING,
        Some(_) if same_key => "outputs missing",
        Some(_) => "command or inputs changed",
    })
}

/// What a run would do with each stage of `plan`, without running any: a stage never run
/// is new; one whose inputs an earlier running stage writes runs after it.
pub fn verdicts(ctx: &RunContext, plan: &[Stage]) -> Result<Vec<Verdict>> {
    let record = PipelineFile::load(&ctx.layout.pipeline_json())?;
    let mut hasher = FileHasher::default();
    let mut rewritten: Vec<&PathBuf> = Vec::new();
    let mut out = Vec::with_capacity(plan.len());
    for stage in plan {
        let after_earlier = stage.inputs.iter().any(|p| rewritten.contains(&p))
            || (stage.name == "report" && out.iter().any(|v| *v != Verdict::UpToDate));
        let v = if record.get(&stage.name).is_none() && !ctx.forced(&stage.name) {
            Verdict::Runs(NEW)
        } else if after_earlier {
            Verdict::Runs("after an earlier stage")
        } else if stage.inputs.iter().any(|p| !p.exists()) {
            Verdict::Runs("an input is missing")
        } else {
            let inputs = input_hashes(ctx, stage, &mut hasher)?;
            let key = key_of(ctx, stage, &record, &inputs);
            verdict(ctx, stage, record.get(&stage.name), &key)
        };
        if v != Verdict::UpToDate {
            rewritten.extend(&stage.outputs);
        }
        out.push(v);
    }
    Ok(out)
}

/// What a finished run did.
pub struct Summary {
    pub ran: usize,
    pub skipped: usize,
    pub seconds: f64,
}

/// Runs every stage of `plan` in order; stops at the first failure.
pub fn run_all(ctx: &RunContext, plan: &[Stage]) -> Result<Summary> {
    let layout = &ctx.layout;
    std::fs::create_dir_all(&layout.run.dir)
        .with_context(|| format!("creating {}", layout.run.dir.display()))?;
    for path in layout.sources(&ctx.settings.task) {
        ensure!(path.is_file(), "{} is missing", path.display());
    }
    let json = layout.pipeline_json();
    let mut record = PipelineFile::load(&json)?;
    record.name = ctx.name.clone();
    record.device = ctx.device.to_string();
    record.settings = serde_json::to_value(&ctx.settings)?;
    record.description = Some(super::describe::describe(ctx));
    record.save(&json)?;
    let names: Vec<String> = plan.iter().map(|s| s.name.clone()).collect();
    let mut hasher = FileHasher::default();
    let (mut ran, mut skipped) = (0, 0);
    let started = Instant::now();
    for (i, stage) in plan.iter().enumerate() {
        let tag = format!("[{:>2}/{}] {}", i + 1, plan.len(), stage.name);
        let inputs = input_hashes(ctx, stage, &mut hasher)?;
        let key = key_of(ctx, stage, &record, &inputs);
        let previous = record.get(&stage.name).cloned();
        let why = match verdict(ctx, stage, previous.as_ref(), &key) {
            Verdict::UpToDate => {
                println!("{tag}: skipped (up to date)");
                skipped += 1;
                continue;
            }
            Verdict::Runs(why) => why,
        };
        let resume = why == RESUMING;
        println!("{tag}: running ({why}) — {}", stage.what);
        let command = ctx.paths.display_command(stage);
        println!("    {}", super::prompt(&command));
        if !resume {
            for path in &stage.clean {
                remove_inside(path, &layout.run.dir)?;
            }
        }
        let mut rec = StageRecord {
            name: stage.name.clone(),
            state: State::Running,
            key,
            command: command.clone(),
            inputs,
            seconds: None,
            finished_unix: None,
            error: None,
        };
        record.put(rec.clone(), &names);
        record.save(&json)?;
        let start = Instant::now();
        let outcome = execute(ctx, stage).and_then(|()| {
            let missing: Vec<_> = stage.outputs.iter().filter(|p| !p.exists()).collect();
            ensure!(
                missing.is_empty(),
                "the stage finished but did not write {missing:?}"
            );
            Ok(())
        });
        rec.seconds = Some(start.elapsed().as_secs_f64());
        rec.finished_unix = Some(now_unix());
        match outcome {
            Ok(()) => {
                rec.state = State::Done;
                record.put(rec.clone(), &names);
                record.save(&json)?;
                println!("{tag}: done in {}", seconds(rec.seconds.unwrap_or(0.0)));
                ran += 1;
            }
            Err(e) => {
                rec.state = State::Failed;
                rec.error = Some(format!("{e:#}"));
                record.put(rec, &names);
                record.save(&json)?;
                let by_hand = match stage.action {
                    Action::Cli { .. } => format!("rerun the stage by hand:\n    {command}\n"),
                    _ => String::new(),
                };
                bail!(
                    "stage `{}` failed: {e:#}\n{by_hand}or rerun the pipeline (finished stages are kept and skipped):\n    cargo xtask {}",
                    stage.name,
                    ctx.invocation
                );
            }
        }
    }
    Ok(Summary {
        ran,
        skipped,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `12.3 s` or `4 min 05 s`.
pub fn seconds(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{} min {:02.0} s", (s / 60.0).floor(), s % 60.0)
    }
}

/// Removes a file or folder, refusing anything outside the run folder.
fn remove_inside(path: &Path, run: &Path) -> Result<()> {
    ensure!(
        path.starts_with(run),
        "refusing to remove {} (outside {})",
        path.display(),
        run.display()
    );
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else if path.exists() {
        std::fs::remove_file(path)
    } else {
        Ok(())
    };
    result.with_context(|| format!("removing {}", path.display()))
}

fn execute(ctx: &RunContext, stage: &Stage) -> Result<()> {
    match &stage.action {
        Action::Cli { args, stdout } => run_cli(&ctx.paths, args, stdout.as_deref()),
        Action::Data => data(&ctx.layout, &ctx.settings),
        Action::Transfer { parts, out } => transfer(parts, out),
    }
}

/// Runs `distill`, its progress on the terminal; JSON on stdout is saved to `stdout`.
fn run_cli(paths: &Paths, args: &[String], stdout: Option<&Path>) -> Result<()> {
    let mut cmd = Command::new(&paths.distill);
    cmd.args(args).stdin(Stdio::null()).stderr(Stdio::inherit());
    let Some(out) = stdout else {
        let status = cmd
            .stdout(Stdio::inherit())
            .status()
            .context("starting distill")?;
        ensure!(status.success(), "distill exited with {status}");
        return Ok(());
    };
    let output = cmd
        .stdout(Stdio::piped())
        .output()
        .context("starting distill")?;
    ensure!(
        output.status.success(),
        "distill exited with {}",
        output.status
    );
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "distill printed no JSON object: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })?;
    let text = serde_json::to_string_pretty(&value)? + "\n";
    distill_data::write_atomic(out, text.as_bytes())
        .with_context(|| format!("writing {}", out.display()))
}

/// Writes the task's files as TSV in `data/` (stratified subsets where the settings ask),
/// so every later stage reads one format with the default columns: `sentence` (or
/// `sentence1`, `sentence2`) and `label` by name. Tabs and line breaks inside a text,
/// which TSV cannot hold, become spaces.
fn data(layout: &Layout, settings: &super::presets::Settings) -> Result<()> {
    let task = &settings.task;
    let labels = LabelSet::new(task.labels.clone());
    let mut parts: Vec<(PathBuf, PathBuf, Option<usize>, bool)> = vec![
        (
            layout.source_train(task),
            layout.train(),
            settings.train_size,
            true,
        ),
        (
            layout.source_dev(task),
            layout.dev(),
            settings.dev_size,
            true,
        ),
    ];
    if let Some(test) = &task.test {
        parts.push((test.clone(), layout.test(), None, true));
    }
    if let Some(text) = &task.unlabelled {
        parts.push((text.clone(), layout.unlabelled(), None, false));
    }
    let dev = layout.source_dev(task);
    for (source, out, size, labelled) in parts {
        let read = if !labelled {
            Dataset::read_texts(&source, &task.spec)
        } else if source == dev || Some(&source) == task.test.as_ref() {
            Dataset::read_labelled(&source, &task.spec, &labels, "evaluation")
        } else {
            Dataset::read_with(&source, &task.spec, &labels)
        };
        let mut all = read.with_context(|| format!("reading {}", source.display()))?;
        if all.is_pairs() != task.pairs {
            bail!(
                "{}: {} while the training file has {}",
                source.display(),
                if all.is_pairs() {
                    "sentence pairs"
                } else {
                    "single texts"
                },
                if task.pairs {
                    "sentence pairs"
                } else {
                    "single texts"
                },
            );
        }
        for e in &mut all.examples {
            for text in std::iter::once(&mut e.text).chain(e.text_pair.as_mut()) {
                if text.contains(['\t', '\n', '\r']) {
                    *text = text.replace(['\t', '\n', '\r'], " ");
                }
            }
        }
        let subset = match size {
            Some(n) => stratified_subset(&all, n, settings.seed),
            None => all.clone(),
        };
        subset
            .write_tsv_named(&out, &labels)
            .with_context(|| format!("writing {}", out.display()))?;
        println!(
            "    {}: {} of {} examples",
            out.display(),
            subset.len(),
            all.len()
        );
    }
    Ok(())
}

/// Concatenates TSV files with the same header into `out`.
fn transfer(parts: &[PathBuf], out: &Path) -> Result<()> {
    let mut all = Dataset::default();
    for part in parts {
        let data = Dataset::read_texts(part, &Default::default())
            .with_context(|| format!("reading {}", part.display()))?;
        all.examples.extend(data.examples);
    }
    all.write_tsv(out)
        .with_context(|| format!("writing {}", out.display()))?;
    println!("    {}: {} examples", out.display(), all.len());
    Ok(())
}
