//! Parity with transformers for `sentence-transformers/all-MiniLM-L6-v2`, the default
//! teacher base: last hidden state (at the tokens; padding, which nothing reads, to 1e-3) and
//! pooler output to 1e-4 on the six golden sentences
//! (`fixtures/minilm_l6_golden.safetensors`).
//!
//! The model is read from the hf-hub cache through the same resolution as
//! `--teacher sentence-transformers/all-MiniLM-L6-v2`. `distill teacher fetch` puts it
//! there; without it this test fails and says so, rather than passing silently.

mod common;

use candle_core::{DType, Tensor};
use common::{device, fixture, tensor_max_abs_diff};
use distill_teacher::{hub, HeadInit, LoadOptions, Mode, Teacher, TeacherSource};

const ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Largest `|a − b|` over the positions where `mask` (`(B, T)`) is `keep` (1 or 0);
/// `a`, `b` `(B, T, H)`.
fn max_abs_diff_where(a: &Tensor, b: &Tensor, mask: &Tensor, keep: f64) -> f32 {
    let per_position = (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max(candle_core::D::Minus1)
        .unwrap();
    let m = mask.to_dtype(DType::F32).unwrap();
    let m = if keep == 1.0 { m } else { (1.0 - m).unwrap() };
    (per_position * m)
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn minilm_matches_transformers() {
    let Some(dir) = hub::cached_snapshot(ID) else {
        panic!(
            "{ID} is not in the hf-hub cache at {}: run `distill teacher fetch` first",
            hub::cache_dir().display()
        );
    };
    let source = TeacherSource::Hub { id: ID.into(), dir };
    // A bare BertModel: only the encoder and pooler are compared, the head is never read.
    let opts = LoadOptions {
        head: HeadInit::Random,
        ..LoadOptions::default()
    };
    let teacher = Teacher::from_source(source, &opts, &device()).expect("MiniLM loads");

    let path = fixture("minilm_l6_golden.safetensors");
    let golden = candle_core::safetensors::load(path, &device()).expect("golden file");
    let ids = golden["input_ids"].to_dtype(DType::U32).unwrap();
    let mask = golden["attention_mask"].to_dtype(DType::U32).unwrap();

    // The tokenizer gives the same ids as transformers' for the golden sentences.
    let sentences: Vec<String> = {
        let text = std::fs::read_to_string(fixture("tiny-bert/golden.json")).unwrap();
        let g: serde_json::Value = serde_json::from_str(&text).unwrap();
        serde_json::from_value(g["sentences"].clone()).unwrap()
    };
    let ours = teacher.tokenizer.encode_all(&sentences).unwrap();
    let seqs: Vec<&[u32]> = ours.iter().map(Vec::as_slice).collect();
    let (our_ids, _) = distill_teacher::pad_batch(&seqs, 0, &device()).unwrap();
    assert_eq!(
        our_ids.to_vec2::<u32>().unwrap(),
        ids.to_vec2::<u32>().unwrap()
    );

    for mode in [Mode::Eval, Mode::Grad] {
        let out = teacher.model.encode(&ids, &mask, mode).expect("forward");
        let (ours, theirs) = (&out.last_hidden_state, &golden["last_hidden_state"]);
        let hidden = max_abs_diff_where(ours, theirs, &mask, 1.0);
        let padding = max_abs_diff_where(ours, theirs, &mask, 0.0);
        let pooled = tensor_max_abs_diff(&out.pooler_output, &golden["pooler_output"]);
        println!(
            "MiniLM {mode:?}: max abs error of the last hidden state {hidden:.2e} (tokens), \
             {padding:.2e} (padding); pooler output {pooled:.2e}"
        );
        assert!(
            hidden < 1e-4,
            "{mode:?}: last hidden state differs by {hidden}"
        );
        assert!(pooled < 1e-4, "{mode:?}: pooler output differs by {pooled}");
        // Outputs at padded positions are never used (nothing attends to them, the pooler
        // reads [CLS]) and float rounding differs more there, but they are still computed
        // the same way.
        assert!(
            padding < 1e-3,
            "{mode:?}: hidden states at padding differ by {padding}"
        );
    }
}

/// MiniLM's `tokenizer.json` (a `TemplateProcessing` post-processor) reads sentence pairs as
/// transformers does: the ids and type ids of `fixtures/tiny-bert-pairs.json`, which
/// transformers gives for this tokenizer too (same uncased vocabulary).
#[test]
fn minilm_tokenizes_pairs_as_transformers() {
    let Some(dir) = hub::cached_snapshot(ID) else {
        panic!("{ID} is not in the hf-hub cache: run `distill teacher fetch` first");
    };
    let g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("tiny-bert-pairs.json")).unwrap())
            .unwrap();
    let get = |key: &str| -> Vec<Vec<u32>> { serde_json::from_value(g[key].clone()).unwrap() };
    let pairs: Vec<[String; 2]> = serde_json::from_value(g["pairs"].clone()).unwrap();
    let opts = LoadOptions {
        head: HeadInit::Random,
        max_len: g["max_length"].as_u64().unwrap() as usize,
        ..LoadOptions::default()
    };
    let source = TeacherSource::Hub { id: ID.into(), dir };
    let teacher = Teacher::from_source(source, &opts, &device()).expect("MiniLM loads");
    let firsts: Vec<&str> = pairs.iter().map(|[a, _]| a.as_str()).collect();
    let seconds: Vec<&str> = pairs.iter().map(|[_, b]| b.as_str()).collect();
    let enc = teacher.tokenizer.encode_pairs(&firsts, &seconds).unwrap();
    let rows: Vec<usize> = (0..pairs.len()).collect();
    let batch = enc
        .batch(&rows, teacher.tokenizer.pad_id(), &device())
        .unwrap();
    assert_eq!(batch.ids.to_vec2::<u32>().unwrap(), get("input_ids"));
    let types = batch.type_ids.expect("pairs carry type ids");
    assert_eq!(types.to_vec2::<u32>().unwrap(), get("token_type_ids"));
    assert_eq!(batch.mask.to_vec2::<u32>().unwrap(), get("attention_mask"));
}
