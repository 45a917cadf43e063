//! Small file helpers shared by the whole workspace: [`write_atomic`] writes a
//! file so that readers see either the old or the new content, never half a
//! file; [`replace_dir`] does the same for a whole folder and [`recover_dir`]
//! repairs a folder swap that a kill interrupted; [`sha256_hex`] fingerprints
//! bytes for cache keys.

use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically: the data go to a temporary file in the
/// same folder, which is flushed to disk and then renamed over `path`.
/// Missing parent folders are created. On failure the temporary file is
/// removed and `path` is left as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;

    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(
        ".tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = dir.join(tmp_name);

    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable; not every platform lets a folder be
    // opened for syncing, and the data are already safe, so this is best-effort.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A point of [`replace_dir_with`]'s swap, where a fault hook may stop it as a kill would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapStep {
    /// The new folder is on disk; nothing has been renamed yet.
    Synced,
    /// The old folder is now `<to>.old`; `to` does not exist.
    OldMovedAside,
    /// The new folder is `to`; `<to>.old` is still there.
    NewInPlace,
}

/// `<dir>.<tag>`: the sibling folders of a swap.
fn sibling(dir: &Path, tag: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dir".into());
    dir.with_file_name(format!("{name}.{tag}"))
}

/// `<dir>.partial`: where a new version of `dir` is written before [`replace_dir`].
pub fn partial_dir(dir: &Path) -> PathBuf {
    sibling(dir, "partial")
}

/// Moves the folder `from` to `to`, replacing any folder there, so that a kill at any
/// point leaves either the old or the new folder (or the old one as `<to>.old`, which
/// [`recover_dir`] puts back). Every file in `from` and the folder itself reach the
/// disk before the first rename; the parent is synced after each rename.
pub fn replace_dir(from: &Path, to: &Path) -> Result<()> {
    with_hook(to, |hook| replace_dir_with(from, to, hook))
}

/// Without the `fault-injection` feature no hook is ever called.
#[cfg(not(feature = "fault-injection"))]
fn with_hook<T>(
    _to: &Path,
    run: impl FnOnce(&mut dyn FnMut(SwapStep) -> std::io::Result<()>) -> T,
) -> T {
    run(&mut |_| Ok(()))
}
#[cfg(feature = "fault-injection")]
use fault::with_hook;

/// [`replace_dir`] that calls `fault` at each [`SwapStep`]; an error from it stops the
/// swap there, leaving the folders as a kill at that point would.
pub fn replace_dir_with(
    from: &Path,
    to: &Path,
    fault: &mut dyn FnMut(SwapStep) -> std::io::Result<()>,
) -> Result<()> {
    sync_tree(from)?;
    fault(SwapStep::Synced).map_err(|e| Error::io("swap in", to, e))?;
    let parent = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| Error::io("create", &parent, e))?;
    let old = sibling(to, "old");
    if old.exists() {
        fs::remove_dir_all(&old).map_err(|e| Error::io("remove", &old, e))?;
    }
    if to.exists() {
        fs::rename(to, &old).map_err(|e| Error::io("rename", to, e))?;
        sync_dir(&parent)?;
        fault(SwapStep::OldMovedAside).map_err(|e| Error::io("swap in", to, e))?;
    }
    fs::rename(from, to).map_err(|e| Error::io("rename", from, e))?;
    sync_dir(&parent)?;
    if old.exists() {
        fault(SwapStep::NewInPlace).map_err(|e| Error::io("swap in", to, e))?;
        fs::remove_dir_all(&old).map_err(|e| Error::io("remove", &old, e))?;
        sync_dir(&parent)?;
    }
    Ok(())
}

/// Repairs a [`replace_dir`] that a kill interrupted: when `dir` is missing but
/// `<dir>.old` exists, renames it back; when `dir` exists, removes a stale `<dir>.old`
/// and `<dir>.partial`. Returns whether `dir` was restored.
pub fn recover_dir(dir: &Path) -> Result<bool> {
    let old = sibling(dir, "old");
    let mut restored = false;
    if !dir.exists() && old.is_dir() {
        fs::rename(&old, dir).map_err(|e| Error::io("restore", &old, e))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        tracing::warn!(
            "{}: restored from {} (an earlier run stopped while replacing it)",
            dir.display(),
            old.display()
        );
        restored = true;
    }
    if dir.exists() {
        for stale in [old, partial_dir(dir)] {
            if stale.exists() {
                fs::remove_dir_all(&stale).map_err(|e| Error::io("remove", &stale, e))?;
            }
        }
    }
    Ok(restored)
}

/// Syncs every file under `dir`, then each folder, `dir` last.
fn sync_tree(dir: &Path) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("read", dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| Error::io("read", dir, e))?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io("sync", &path, e))?;
        }
    }
    sync_dir(dir)
}

/// Makes a folder's entries (creations, renames) durable. Only Unix lets a folder be
/// opened for syncing.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync", dir, e))?;
    let _ = dir;
    Ok(())
}

/// A per-thread hook that [`replace_dir`] calls at each [`SwapStep`], for tests that stop
/// a swap where a kill would (e.g. inside a training run).
#[cfg(feature = "fault-injection")]
pub mod fault {
    use std::cell::RefCell;
    use std::path::Path;

    use super::SwapStep;

    /// Called with the swap's target folder and the step reached.
    pub type Hook = Box<dyn FnMut(&Path, SwapStep) -> std::io::Result<()>>;

    thread_local! {
        static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    /// Installs (or with `None` removes) this thread's hook.
    pub fn set_swap_fault(hook: Option<Hook>) {
        HOOK.with(|h| *h.borrow_mut() = hook);
    }

    pub(super) fn with_hook<T>(
        to: &Path,
        run: impl FnOnce(&mut dyn FnMut(SwapStep) -> std::io::Result<()>) -> T,
    ) -> T {
        let mut hook = HOOK.with(|h| h.borrow_mut().take());
        let out = run(&mut |step| match hook.as_mut() {
            Some(f) => f(to, step),
            None => Ok(()),
        });
        HOOK.with(|h| {
            let mut slot = h.borrow_mut();
            if slot.is_none() {
                *slot = hook;
            }
        });
        out
    }
}

/// Lower-case hex SHA-256 of `bytes` (64 characters).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        // FIPS 180-2 test vector.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(sha256_hex(b"abc"), sha256_hex(b"abd"));
    }

    #[test]
    fn writes_creates_parents_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/c.txt");
        write_atomic(&path, b"one").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        write_atomic(&path, b"two, longer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two, longer");
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("c.txt")]);
    }

    #[test]
    fn failure_leaves_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a folder: the rename fails and the folder survives.
        let target = dir.path().join("taken");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inner"), b"x").unwrap();
        assert!(write_atomic(&target, b"data").is_err());
        assert!(target.join("inner").exists());
        let count = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(count, 1, "temporary file was not cleaned up");
    }

    /// A folder holding one file `v` with `content`.
    fn folder(path: &Path, content: &str) {
        fs::create_dir_all(path).unwrap();
        fs::write(path.join("v"), content).unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replace_dir_swaps_in_a_new_folder_and_leaves_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let to = tmp.path().join("last");
        for version in ["one", "two"] {
            let new = partial_dir(&to);
            folder(&new, version);
            fs::create_dir(new.join("sub")).unwrap();
            fs::write(new.join("sub/w"), version).unwrap();
            replace_dir(&new, &to).unwrap();
            assert_eq!(fs::read_to_string(to.join("v")).unwrap(), version);
            assert_eq!(fs::read_to_string(to.join("sub/w")).unwrap(), version);
            assert_eq!(names(tmp.path()), ["last"]);
        }
        assert!(!recover_dir(&to).unwrap());
    }

    #[test]
    fn a_swap_killed_at_any_step_recovers_a_whole_folder() {
        let steps = [
            SwapStep::Synced,
            SwapStep::OldMovedAside,
            SwapStep::NewInPlace,
        ];
        for stop in steps {
            let tmp = tempfile::tempdir().unwrap();
            let to = tmp.path().join("last");
            folder(&to, "old");
            let new = partial_dir(&to);
            folder(&new, "new");
            let mut kill = |step| match step == stop {
                true => Err(std::io::Error::other("killed")),
                false => Ok(()),
            };
            assert!(replace_dir_with(&new, &to, &mut kill).is_err(), "{stop:?}");
            // What a kill at this step leaves on disk.
            assert_eq!(to.exists(), stop != SwapStep::OldMovedAside, "{stop:?}");
            let restored = recover_dir(&to).unwrap();
            assert_eq!(restored, stop == SwapStep::OldMovedAside, "{stop:?}");
            let expected = if stop == SwapStep::NewInPlace {
                "new"
            } else {
                "old"
            };
            assert_eq!(fs::read_to_string(to.join("v")).unwrap(), expected);
            assert_eq!(names(tmp.path()), ["last"], "{stop:?}");
            // The next swap goes through.
            folder(&new, "next");
            replace_dir(&new, &to).unwrap();
            assert_eq!(fs::read_to_string(to.join("v")).unwrap(), "next");
        }
    }

    #[test]
    fn recovery_leaves_a_first_unfinished_save_alone() {
        // Killed while writing the very first version: nothing to restore, and the
        // half-written folder is not mistaken for a checkpoint.
        let tmp = tempfile::tempdir().unwrap();
        let to = tmp.path().join("best");
        folder(&partial_dir(&to), "half");
        assert!(!recover_dir(&to).unwrap());
        assert!(!to.exists());
    }
}
