//! A student embedding table from what the teacher knows: each vocabulary token's row is
//! the teacher's input embedding of it (the mean over its WordPieces for a word the
//! teacher splits), reduced to the student's width by PCA and scaled to the unit variance
//! of the default N(0, 1) initialisation, so the LSTM sees inputs of the usual size.
//!
//! Reads the teacher folder's `model.safetensors` (`[bert.]embeddings.word_embeddings`)
//! and `tokenizer.json` directly: no teacher model is built.

use std::path::Path;

use distill_data::{Vocab, MASK_TOKEN};

use crate::pca::{column_means, principal_components};
use crate::{Error, Result};

const TABLES: [&str; 2] = [
    "bert.embeddings.word_embeddings.weight",
    "embeddings.word_embeddings.weight",
];

/// `[vocab.len(), dim]` row-major initial embeddings for `vocab` from the teacher in
/// `teacher_dir`. `<pad>` gets zeros (padding never reaches a state).
pub fn teacher_embeddings(teacher_dir: &Path, vocab: &Vocab, dim: usize) -> Result<Vec<f32>> {
    let weights = teacher_dir.join("model.safetensors");
    let format_err = |reason: String| Error::Format {
        path: weights.clone(),
        reason,
    };
    let bytes = std::fs::read(&weights).map_err(|e| format_err(e.to_string()))?;
    // Only the word-embedding table is converted, not the whole model.
    let file = candle_core::safetensors::BufferedSafetensors::new(bytes)
        .map_err(|e| format_err(e.to_string()))?;
    let name = TABLES
        .iter()
        .find(|n| file.get(n).is_ok())
        .ok_or_else(|| format_err(format!("no word-embedding table ({})", TABLES.join(" or "))))?;
    let table = file
        .load(name, &candle_core::Device::Cpu)
        .map_err(|e| format_err(e.to_string()))?;
    let (teacher_vocab, width) = table.dims2()?;
    let table = table.flatten_all()?.to_vec1::<f32>()?;
    let tok_path = teacher_dir.join("tokenizer.json");
    let tokenizer = tokenizers::Tokenizer::from_file(&tok_path).map_err(|e| Error::Format {
        path: tok_path.clone(),
        reason: e.to_string(),
    })?;
    let teacher_ids = |token: &str| -> Vec<u32> {
        let special = match token {
            "<unk>" => Some("[UNK]"),
            MASK_TOKEN | "[MASK]" => Some("[MASK]"),
            _ => None,
        };
        if let Some(id) = tokenizer.token_to_id(special.unwrap_or(token)) {
            return vec![id];
        }
        tokenizer
            .encode(token, false)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default()
    };
    // Rows of the teacher's space, one per student token (None: `<pad>` or unreadable).
    let mut rows = Vec::with_capacity(vocab.len() * width);
    let mut present = Vec::with_capacity(vocab.len());
    for token in vocab.itos() {
        let ids: Vec<u32> = teacher_ids(token)
            .into_iter()
            .filter(|&i| (i as usize) < teacher_vocab)
            .collect();
        if token == "<pad>" || ids.is_empty() {
            present.push(false);
            continue;
        }
        let mut mean = vec![0f32; width];
        for &id in &ids {
            let row = &table[id as usize * width..][..width];
            mean.iter_mut()
                .zip(row)
                .for_each(|(m, x)| *m += x / ids.len() as f32);
        }
        rows.extend(mean);
        present.push(true);
    }
    if rows.len() < 2 * width {
        return Err(Error::Config(format!(
            "{} of {} vocabulary tokens map into the teacher's embeddings: too few for PCA",
            rows.len() / width,
            vocab.len()
        )));
    }
    let (directions, variances) = principal_components(&rows, width, dim);
    let mean = column_means(&rows, width);
    // One scale for all components keeps their relative variances.
    let scale = 1.0 / (variances.iter().sum::<f64>() / dim as f64).sqrt();
    let mut out = vec![0f32; vocab.len() * dim];
    let mut src = rows.chunks_exact(width);
    for (dst, &has) in out.chunks_exact_mut(dim).zip(&present) {
        if !has {
            continue;
        }
        let row = src.next().expect("one row per present token");
        for (o, d) in dst.iter_mut().zip(&directions) {
            let proj: f64 = row
                .iter()
                .zip(&mean)
                .zip(d)
                .map(|((&x, m), w)| (x as f64 - m) * w)
                .sum();
            *o = (proj * scale) as f32;
        }
    }
    let kept: f64 = variances.iter().sum();
    tracing::info!(
        tokens = present.iter().filter(|&&p| p).count(),
        "student embeddings from {}: PCA {width} → {dim} ({} components)",
        teacher_dir.display(),
        directions.len()
    );
    tracing::debug!(variance_kept = kept, "PCA");
    Ok(out)
}
