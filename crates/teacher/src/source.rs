//! Where a teacher comes from: `--teacher` is a local folder (read as is) or a hub id
//! (resolved through [`crate::hub`]), and either way ends as a folder with
//! `config.json`, weights (`model.safetensors`, else `pytorch_model.bin`) and a tokenizer
//! (`tokenizer.json`, else `vocab.txt`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::hub;

/// A teacher's origin, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeacherSource {
    /// A folder in the Hugging Face layout.
    Dir(PathBuf),
    /// A hub id and the snapshot folder it resolved to.
    Hub { id: String, dir: PathBuf },
}

/// The weights file of a teacher folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightsFile {
    Safetensors(PathBuf),
    /// A PyTorch `pytorch_model.bin`, read through candle's pickle reader.
    Pickle(PathBuf),
}

impl WeightsFile {
    pub fn path(&self) -> &Path {
        match self {
            WeightsFile::Safetensors(p) | WeightsFile::Pickle(p) => p,
        }
    }
}

/// The tokenizer file of a teacher folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerFile {
    /// A `tokenizers` `tokenizer.json`.
    Json(PathBuf),
    /// A WordPiece `vocab.txt`, from which a BERT tokenizer is built.
    Vocab(PathBuf),
}

/// The files of a resolved teacher.
#[derive(Debug, Clone)]
pub struct TeacherFiles {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub weights: WeightsFile,
    pub tokenizer: TokenizerFile,
    /// `tokenizer_config.json` when present (casing and length settings).
    pub tokenizer_config: Option<PathBuf>,
}

const LAYOUT: &str = "a teacher folder holds config.json, model.safetensors (or pytorch_model.bin) and tokenizer.json (or vocab.txt)";

impl TeacherSource {
    /// A folder when `id_or_dir` names one; a hub id (`org/name`) otherwise. Hub ids go
    /// through the cache first and the network only when needed and allowed.
    pub fn resolve(id_or_dir: &str) -> Result<Self> {
        let path = Path::new(id_or_dir);
        if !path.exists() {
            // A checkpoint whose save a kill interrupted is still there as `<dir>.old`.
            distill_data::io::recover_dir(path)?;
        }
        if path.is_dir() {
            return Ok(TeacherSource::Dir(path.to_path_buf()));
        }
        if path.exists() || looks_like_path(id_or_dir) {
            return Err(Error::MissingFile {
                what: "teacher folder",
                path: path.to_path_buf(),
                hint: format!("not a folder; {LAYOUT}"),
            });
        }
        let dir = hub::resolve(id_or_dir)?;
        Ok(TeacherSource::Hub {
            id: id_or_dir.to_string(),
            dir,
        })
    }

    /// The folder holding the files.
    pub fn dir(&self) -> &Path {
        match self {
            TeacherSource::Dir(dir) | TeacherSource::Hub { dir, .. } => dir,
        }
    }

    /// How the teacher is named in logit metadata and logs: the hub id, or the folder path.
    pub fn name(&self) -> String {
        match self {
            TeacherSource::Dir(dir) => dir.display().to_string(),
            TeacherSource::Hub { id, .. } => id.clone(),
        }
    }

    /// Finds the config, weights and tokenizer files.
    pub fn files(&self) -> Result<TeacherFiles> {
        TeacherFiles::in_dir(self.dir())
    }
}

impl TeacherFiles {
    /// Finds the teacher files in `dir`, preferring safetensors and `tokenizer.json`.
    pub fn in_dir(dir: &Path) -> Result<Self> {
        let missing = |what: &'static str, name: &str| Error::MissingFile {
            what,
            path: dir.join(name),
            hint: LAYOUT.to_string(),
        };
        let config = dir.join("config.json");
        if !config.is_file() {
            return Err(missing("config", "config.json"));
        }
        let weights = if dir.join("model.safetensors").is_file() {
            WeightsFile::Safetensors(dir.join("model.safetensors"))
        } else if dir.join("pytorch_model.bin").is_file() {
            WeightsFile::Pickle(dir.join("pytorch_model.bin"))
        } else {
            return Err(missing("weights", "model.safetensors"));
        };
        let tokenizer = if dir.join("tokenizer.json").is_file() {
            TokenizerFile::Json(dir.join("tokenizer.json"))
        } else if dir.join("vocab.txt").is_file() {
            TokenizerFile::Vocab(dir.join("vocab.txt"))
        } else {
            return Err(missing("tokenizer", "tokenizer.json"));
        };
        let tokenizer_config = Some(dir.join("tokenizer_config.json")).filter(|p| p.is_file());
        Ok(TeacherFiles {
            dir: dir.to_path_buf(),
            config,
            weights,
            tokenizer,
            tokenizer_config,
        })
    }
}

/// Hub ids are `name` or `org/name`; anything else is meant as a path.
fn looks_like_path(s: &str) -> bool {
    s.is_empty()
        || s.starts_with(['.', '/', '~', '\\'])
        || s.ends_with('/')
        || s.matches('/').count() > 1
        || s.contains('\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_paths_are_not_hub_ids() {
        let err = TeacherSource::resolve("./no/such/teacher").unwrap_err();
        assert!(matches!(err, Error::MissingFile { .. }), "{err}");
        assert!(looks_like_path("runs/teacher/best"));
        assert!(!looks_like_path("sentence-transformers/all-MiniLM-L6-v2"));
    }

    #[test]
    fn a_folder_without_weights_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        let err = TeacherFiles::in_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("model.safetensors"), "{err}");
    }
}
