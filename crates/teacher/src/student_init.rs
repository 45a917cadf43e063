//! A student embedding table from what the teacher knows: each vocabulary token's row is
//! the teacher's input embedding of it (the mean over its WordPieces for a word the
//! teacher splits), reduced to the student's width by PCA and scaled to the unit variance
//! of the default N(0, 1) initialisation, so the LSTM sees inputs of the usual size.
//!
//! The teacher is found as [`crate::Teacher::load`] finds it (a folder or a hub id;
//! `model.safetensors` or `pytorch_model.bin`; f32, f16 or bf16), but only its config,
//! tokenizer and word-embedding table are read: no model is built.

use candle_core::Tensor;
use distill_data::{Vocab, MASK_TOKEN};

use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::model::WORD_EMBEDDINGS;
use crate::pca::{column_means, principal_components};
use crate::source::{TeacherFiles, TeacherSource};
use crate::tokenize::TeacherTokenizer;
use crate::weights::read_tensor;

/// The teacher's input word-embedding table `[vocab_size, hidden_size]` in f32, checked
/// against its config.
pub fn word_embeddings(files: &TeacherFiles) -> Result<Tensor> {
    let config = BertConfig::from_file(&files.config)?;
    let table = read_tensor(&files.weights, WORD_EMBEDDINGS)?;
    let expected = [config.vocab_size, config.hidden_size];
    if table.dims() != expected {
        return Err(Error::ShapeMismatch {
            path: files.weights.path().to_path_buf(),
            name: WORD_EMBEDDINGS.into(),
            expected: expected.to_vec(),
            found: table.dims().to_vec(),
        });
    }
    Ok(table)
}

/// `[vocab.len(), dim]` row-major initial embeddings for `vocab` from the teacher
/// `id_or_dir`. `<pad>` gets zeros (padding never reaches a state).
pub fn student_embeddings(id_or_dir: &str, vocab: &Vocab, dim: usize) -> Result<Vec<f32>> {
    let source = TeacherSource::resolve(id_or_dir)?;
    let files = source.files()?;
    let table = word_embeddings(&files)?;
    let (teacher_vocab, width) = table.dims2()?;
    let table = table.flatten_all()?.to_vec1::<f32>()?;
    // Words are short: any length that fits [CLS] and [SEP] will do.
    let tokenizer =
        TeacherTokenizer::load(&files.tokenizer, files.tokenizer_config.as_deref(), 512)?;
    if tokenizer.vocab_size() > teacher_vocab {
        return Err(Error::ConfigMismatch {
            path: files.config.clone(),
            message: format!(
                "the tokenizer has {} tokens, the embeddings only {teacher_vocab} (vocab_size)",
                tokenizer.vocab_size()
            ),
        });
    }
    let (rows, present) = token_rows(&tokenizer, &table, width, vocab)?;
    if rows.len() < 2 * width.max(1) {
        return Err(Error::Setting(format!(
            "{} of {} vocabulary tokens map into the embeddings of {}: too few for PCA",
            rows.len() / width.max(1),
            vocab.len(),
            source.name()
        )));
    }
    if dim > width {
        // Defined, not refused: the teacher's components fill the first columns and the
        // rest start at zero and learn (the smoke preset's 32-wide tiny teacher does this).
        tracing::warn!(
            "the student's {dim} embedding columns exceed {}'s {width}: columns {width}.. start at zero",
            source.name()
        );
    }
    let out = project(&rows, &present, width, dim);
    tracing::info!(
        tokens = present.iter().filter(|&&p| p).count(),
        "student embeddings from {}: PCA {width} → {dim}",
        source.name()
    );
    Ok(out)
}

/// The teacher-space row of each student token (`present[i]` false for `<pad>` and for
/// tokens with no WordPiece), rows of present tokens only, in vocabulary order.
fn token_rows(
    tokenizer: &TeacherTokenizer,
    table: &[f32],
    width: usize,
    vocab: &Vocab,
) -> Result<(Vec<f32>, Vec<bool>)> {
    let mut rows = Vec::with_capacity(vocab.len() * width);
    let mut present = Vec::with_capacity(vocab.len());
    for token in vocab.itos() {
        let special = match token.as_str() {
            "<unk>" => Some("[UNK]"),
            MASK_TOKEN | "[MASK]" => Some("[MASK]"),
            _ => None,
        };
        let ids = match tokenizer.token_to_id(special.unwrap_or(token)) {
            Some(id) => vec![id],
            None => tokenizer.encode_pieces(token)?,
        };
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
    Ok((rows, present))
}

/// The rows projected on their `dim` principal directions, centred and scaled to unit
/// mean variance, at the places `present` marks (zeros elsewhere).
fn project(rows: &[f32], present: &[bool], width: usize, dim: usize) -> Vec<f32> {
    let (directions, variances) = principal_components(rows, width, dim);
    let mean = column_means(rows, width);
    // One scale for all components keeps their relative variances.
    let scale = 1.0 / (variances.iter().sum::<f64>() / dim as f64).sqrt();
    let mut out = vec![0f32; present.len() * dim];
    let mut src = rows.chunks_exact(width);
    for (dst, &has) in out.chunks_exact_mut(dim).zip(present) {
        if !has {
            continue;
        }
        let Some(row) = src.next() else { break };
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
    out
}
