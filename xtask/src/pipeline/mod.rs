//! `cargo xtask pipeline`: the whole run in one command — the teacher base, teacher
//! fine-tuning and labelling, augmentation, students, evaluation, timing and a report —
//! each stage a call of the `distill` CLI that can be run by hand (but for the two that
//! only copy data files), resumable and cached in `runs/<name>/pipeline.json`.
//!
//! [`presets`] resolves the settings, [`stages`] turns them into a plan over the files of
//! [`layout`], [`exec`] builds the CLI once and runs the plan with the keys of [`cache`];
//! [`describe`] says in `pipeline.json` what `distill report`, the last stage, shows of
//! the run.

mod cache;
mod describe;
mod device;
mod exec;
mod layout;
mod presets;
mod stages;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context as _, Result};

use device::DeviceChoice;
use layout::{Layout, RunFolder, TeacherBase};
use presets::{Overrides, Preset, Settings, TeacherPrecision};
use stages::{Action, Stage};

/// Options of `cargo xtask pipeline`.
#[derive(Debug, clap::Args)]
pub struct PipelineArgs {
    /// smoke (tiny random teacher, 500 sentences, < 2 min), quick (8,000 sentences) or full.
    #[arg(long, value_enum, default_value = "full")]
    pub preset: Preset,
    /// Run folder name under --runs-dir (default: the preset's name).
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// cpu, cuda[:N] or metal: builds the CLI with that cargo feature; the teacher's stages
    /// (fine-tune, label) run there.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Where students train. The CPU by default whatever `--device` is: the fused CPU
    /// recurrence beats hundreds of tiny GPU kernels per batch for these sizes.
    #[arg(long, default_value = "cpu")]
    pub student_device: String,
    /// Cargo profile the CLI is built with.
    #[arg(long, value_enum, default_value = "release")]
    pub profile: Profile,
    /// Rerun a stage even when up to date (repeatable; `all`, or a prefix ending in `*`).
    #[arg(long = "force", value_name = "STAGE")]
    pub force: Vec<String>,
    /// Print the settings and the stages' commands, each with whether a run would skip it
    /// (its key, input files hashed, matches its record) or run it and why; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Use the `distill` binary already built instead of running cargo build first.
    #[arg(long)]
    pub no_build: bool,
    #[command(flatten)]
    pub overrides: Overrides,
}

/// Cargo profile of the `distill` binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    Release,
    Dev,
}

/// Everything a stage needs to know about the run.
pub struct Context {
    pub name: String,
    pub settings: Settings,
    /// The teacher's stages.
    pub device: DeviceChoice,
    /// Student training.
    pub student_device: DeviceChoice,
    pub layout: Layout,
    pub paths: Paths,
    force: Vec<String>,
    /// The arguments after `cargo xtask`, for "rerun with" messages.
    pub invocation: String,
}

impl Context {
    fn forced(&self, stage: &str) -> bool {
        self.force.iter().any(|f| matches(f, stage))
    }
}

fn matches(pattern: &str, stage: &str) -> bool {
    match pattern.strip_suffix('*') {
        _ if pattern == "all" => true,
        Some(prefix) => stage.starts_with(prefix),
        None => pattern == stage,
    }
}

/// The binary, and how paths are written for people (relative to the current folder) and
/// for cache keys (`<run>/…`, `<root>/…`).
pub struct Paths {
    pub distill: PathBuf,
    cwd: PathBuf,
    root: String,
    run: String,
}

impl Paths {
    fn canonical(&self, arg: &str) -> String {
        if let Some(rest) = arg.strip_prefix(&self.run) {
            format!("<run>{rest}")
        } else if let Some(rest) = arg.strip_prefix(&self.root) {
            format!("<root>{rest}")
        } else {
            arg.to_string()
        }
    }

    fn shown(&self, arg: &str) -> String {
        let rel = Path::new(arg)
            .strip_prefix(&self.cwd)
            .ok()
            .filter(|r| !r.as_os_str().is_empty())
            .map_or_else(|| arg.to_string(), |r| r.display().to_string());
        if rel
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@".contains(c))
            && !rel.is_empty()
        {
            rel
        } else {
            format!("'{}'", rel.replace('\'', r"'\''"))
        }
    }

    /// The stage's command line as identity for the cache key.
    fn command_args(&self, stage: &Stage) -> Vec<String> {
        match &stage.action {
            Action::Cli { args, .. } => args.clone(),
            _ => vec![stage.name.clone()],
        }
    }

    /// The command as a person can type it from the current folder.
    fn display_command(&self, stage: &Stage) -> String {
        match &stage.action {
            Action::Cli { args, stdout } => {
                let mut parts = vec![self.shown(&self.distill.display().to_string())];
                parts.extend(args.iter().map(|a| self.shown(a)));
                if let Some(out) = stdout {
                    parts.push(format!("> {}", self.shown(&out.display().to_string())));
                }
                parts.join(" ")
            }
            Action::Data => {
                "# in xtask: the task's files as TSV in data/ (stratified subsets)".into()
            }
            Action::Transfer { .. } => {
                "# in xtask: data/augment.tsv and data/unlabelled.tsv into data/transfer.tsv".into()
            }
        }
    }
}

/// `cargo xtask pipeline …`.
pub fn run(args: &PipelineArgs) -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent folder")?
        .to_path_buf();
    let cwd = std::env::current_dir().context("reading the current folder")?;
    let mut settings = Settings::resolve(args.preset, &args.overrides, &root, &cwd)?;
    let device = DeviceChoice::parse(&args.device)?;
    // The presets' bf16 is the CPU's AMX tiles: a teacher on a GPU keeps f32 unless asked.
    if args.overrides.teacher_precision.is_none() && !device.is_cpu() {
        settings.teacher_precision = TeacherPrecision::F32;
    }
    let student_device = DeviceChoice::parse(&args.student_device)?;
    ensure!(
        student_device.cargo_feature().is_none()
            || student_device.cargo_feature() == device.cargo_feature(),
        "--student-device {student_device} needs --device of the same kind (the CLI is built with one GPU feature)"
    );
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| args.preset.name().to_string());
    ensure!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "--name must be letters, digits, `-`, `_` or `.`, got `{name}`"
    );
    let run_dir = cwd.join(&args.runs_dir).join(&name);
    let layout = Layout {
        root: root.clone(),
        run: RunFolder::new(run_dir.clone()),
    };
    let base = teacher_base(&settings.teacher, &cwd, &root)?;
    let paths = Paths {
        distill: distill_binary(&root, args.profile)?,
        cwd,
        root: root.display().to_string(),
        run: run_dir.display().to_string(),
    };
    let plan = stages::plan(&settings, &layout, &base, &device, &student_device);
    for f in &args.force {
        ensure!(
            plan.iter().any(|s| matches(f, &s.name)),
            "--force {f}: no such stage (stages: {})",
            plan.iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let invocation: Vec<String> = std::env::args().skip(1).map(|a| paths.shown(&a)).collect();
    let ctx = Context {
        name,
        settings,
        device,
        student_device,
        layout,
        paths,
        force: args.force.clone(),
        invocation: invocation.join(" "),
    };
    println!(
        "pipeline `{}` (preset {}; teacher on {}, students on {}, evaluation on cpu) in {}",
        ctx.name,
        args.preset.name(),
        ctx.device,
        ctx.student_device,
        ctx.paths.shown(&run_dir.display().to_string())
    );
    if args.dry_run {
        return dry_run(&ctx, &plan);
    }
    if !args.no_build {
        build_cli(&root, args.profile, &ctx.device)?;
    }
    ensure!(
        ctx.paths.distill.is_file(),
        "{} is missing: build it with cargo build -p distill-cli (or drop --no-build)",
        ctx.paths.distill.display()
    );
    let summary = exec::run_all(&ctx, &plan)?;
    println!(
        "pipeline `{}`: {} stages, {} run, {} skipped, {}; report: {}",
        ctx.name,
        plan.len(),
        summary.ran,
        summary.skipped,
        exec::seconds(summary.seconds),
        ctx.paths
            .shown(&run_dir.join("report.html").display().to_string())
    );
    Ok(())
}

fn dry_run(ctx: &Context, plan: &[Stage]) -> Result<()> {
    println!(
        "settings:\n{}",
        serde_json::to_string_pretty(&ctx.settings)?
    );
    for r in &ctx.settings.size_rules {
        let how = if r.overridden { "set by flag" } else { "rule" };
        println!("size rule: {} = {} ({how}: {})", r.setting, r.value, r.rule);
    }
    // Keyed as a run keys them (input files hashed), so "up to date" means a run skips it.
    let verdicts = exec::verdicts(ctx, plan)?;
    for (i, (stage, verdict)) in plan.iter().zip(&verdicts).enumerate() {
        let state = match verdict {
            exec::Verdict::UpToDate => "up to date".to_string(),
            exec::Verdict::Runs(why) => format!("runs: {why}"),
        };
        println!(
            "[{:>2}/{}] {} ({state}) — {}",
            i + 1,
            plan.len(),
            stage.name,
            stage.what
        );
        println!("    {}", prompt(&ctx.paths.display_command(stage)));
    }
    println!("dry run: nothing was run");
    Ok(())
}

/// `$ command`, or a `# comment` as it is.
fn prompt(command: &str) -> String {
    if command.starts_with('#') {
        command.to_string()
    } else {
        format!("$ {command}")
    }
}

/// A folder (relative to the current folder or the workspace root) or a hub id.
fn teacher_base(teacher: &str, cwd: &Path, root: &Path) -> Result<TeacherBase> {
    for dir in [cwd.join(teacher), root.join(teacher)] {
        if dir.is_dir() {
            return Ok(TeacherBase::Folder(dir.canonicalize().unwrap_or(dir)));
        }
    }
    if teacher.starts_with('.') || teacher.starts_with('/') || teacher.split('/').count() > 2 {
        bail!("teacher `{teacher}` is neither a folder nor a hub id (owner/name)");
    }
    Ok(TeacherBase::Hub(teacher.to_string()))
}

/// `<target>/<profile>/distill`, where `<target>` is the workspace's target folder as cargo
/// reports it (xtask itself builds elsewhere: see `.cargo/config.toml`).
fn distill_binary(root: &Path, profile: Profile) -> Result<PathBuf> {
    let dir = match profile {
        Profile::Release => "release",
        Profile::Dev => "debug",
    };
    Ok(target_dir(root)
        .join(dir)
        .join(format!("distill{}", std::env::consts::EXE_SUFFIX)))
}

/// `target_directory` of `cargo metadata` (honours CARGO_TARGET_DIR and config), or
/// `<root>/target` when cargo cannot say.
fn target_dir(root: &Path) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(root)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .stderr(std::process::Stdio::null())
        .output();
    output
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|v| v["target_directory"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| root.join("target"))
}

/// `cargo build -p distill-cli` with the device's feature.
fn build_cli(root: &Path, profile: Profile, device: &DeviceChoice) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args(["build", "-p", "distill-cli"]);
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    if let Some(feature) = device.cargo_feature() {
        cmd.args(["--features", feature]);
    }
    let shown: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    println!("building the CLI: cargo {}", shown.join(" "));
    let status = cmd.status().context("running cargo build")?;
    ensure!(
        status.success(),
        "cargo {} failed ({status})",
        shown.join(" ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn force_patterns() {
        assert!(matches("all", "eval-kl"));
        assert!(matches("eval-*", "eval-kl"));
        assert!(!matches("eval-*", "bench-kl"));
        assert!(matches("report", "report"));
        assert!(!matches("report", "reports"));
    }

    #[test]
    fn paths_are_canonical_for_keys_and_relative_for_people() {
        let p = Paths {
            distill: "/w/target/release/distill".into(),
            cwd: "/w".into(),
            root: "/w".into(),
            run: "/w/runs/x".into(),
        };
        assert_eq!(
            p.canonical("/w/runs/x/data/train.tsv"),
            "<run>/data/train.tsv"
        );
        assert_eq!(p.canonical("/w/crates/t"), "<root>/crates/t");
        assert_eq!(p.shown("/w/runs/x/data/train.tsv"), "runs/x/data/train.tsv");
        assert_eq!(p.shown("a b"), "'a b'");
    }
}
