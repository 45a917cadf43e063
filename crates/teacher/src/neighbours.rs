//! Words of the same kind, from the teacher's input embeddings: the offline stand-in for the
//! part-of-speech classes of Tang et al.'s augmentation.
//!
//! A word that is a single WordPiece in the teacher's vocabulary has an input embedding row;
//! its `k` nearest other such words by cosine similarity (among the words given) become its
//! replacement candidates. Neighbours in BERT's input space mostly share part of speech and
//! inflection (`good` → `great`, `bad`, `nice`; `walked` → `walking`, `ran`), which is what the
//! swap needs, and the teacher relabels every sample anyway. Words split into several pieces
//! get no candidates and are never swapped.

use candle_core::{Device, Tensor, D};
use distill_data::Substitutes;

use crate::{Error, Result, Teacher};

/// Rows per similarity block: `[block, n]` floats stay a few tens of MB.
const BLOCK: usize = 1024;

/// For each of `words` that is one WordPiece, its `k` nearest such words; `k` must be
/// at least 1.
pub fn similar_words(teacher: &Teacher, words: &[String], k: usize) -> Result<Substitutes> {
    if k == 0 {
        return Err(Error::Setting(
            "the number of swap candidates per word (neighbours) must be at least 1, got 0".into(),
        ));
    }
    let mut kept: Vec<&str> = Vec::new();
    let mut ids: Vec<u32> = Vec::new();
    for w in words {
        if !w.chars().all(|c| c.is_alphabetic()) {
            continue;
        }
        // `[CLS] piece [SEP]`: one piece means the word has its own embedding row.
        let enc = teacher.tokenizer.encode(w)?;
        if enc.len() == 3 {
            kept.push(w);
            ids.push(enc[1]);
        }
    }
    let mut out = Substitutes::new();
    if kept.len() < 2 {
        return Ok(out);
    }
    let table = teacher
        .model
        .params()
        .get("bert.embeddings.word_embeddings.weight")?;
    let table = table.to_device(&Device::Cpu)?;
    let n = ids.len();
    let rows = table.index_select(&Tensor::new(ids.as_slice(), &Device::Cpu)?, 0)?;
    let norms = rows
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-6, f32::MAX)?;
    let unit = rows.broadcast_div(&norms)?;
    let unit_t = unit.t()?.contiguous()?;
    for start in (0..n).step_by(BLOCK) {
        let len = BLOCK.min(n - start);
        let sims = unit
            .narrow(0, start, len)?
            .matmul(&unit_t)?
            .to_vec2::<f32>()?;
        for (r, row) in sims.iter().enumerate() {
            let me = start + r;
            let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
            for (j, &s) in row.iter().enumerate() {
                if j == me || kept[j] == kept[me] {
                    continue;
                }
                if best.len() < k || s > best[best.len() - 1].0 {
                    let pos = best.partition_point(|&(b, _)| b >= s);
                    best.insert(pos, (s, j));
                    best.truncate(k);
                }
            }
            out.insert(
                kept[me].to_string(),
                best.iter().map(|&(_, j)| kept[j].to_string()).collect(),
            );
        }
    }
    Ok(out)
}
