//! A student's initial embedding table from a teacher (`--init-embeddings teacher`): PCA
//! of the teacher's word embeddings, read through the teacher loader whatever the weights
//! format (safetensors or `pytorch_model.bin`) and dtype (f32, f16, bf16).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use distill_data::{Vocab, VocabBuilder};
use distill_teacher::{student_embeddings, word_embeddings, TeacherFiles};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

/// tiny-bert's config and tokenizer, without weights, in a new folder.
fn tiny_without_weights() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture("tiny-bert").join(name), dir.path().join(name)).unwrap();
    }
    dir
}

fn vocab() -> Vocab {
    let tokens: Vec<Vec<String>> = [
        "the film is good",
        "a dull , lifeless plot",
        "[MASK] acting unflinchingly",
    ]
    .iter()
    .map(|s| s.split(' ').map(String::from).collect())
    .collect();
    let mut builder = VocabBuilder::default();
    builder.specials.push("<mask>".into());
    builder.build(tokens.iter().map(Vec::as_slice))
}

fn table(dir: &Path) -> Vec<f32> {
    student_embeddings(dir.to_str().unwrap(), &vocab(), 4).unwrap()
}

#[test]
fn teacher_embeddings_are_centred_unit_variance_and_padding_is_zero() {
    let vocab = vocab();
    let dim = 4;
    let table = table(&fixture("tiny-bert"));
    assert_eq!(table.len(), vocab.len() * dim);
    let row = |t: &str| &table[vocab.id(t) as usize * dim..][..dim];
    assert!(row("<pad>").iter().all(|&x| x == 0.0), "padding row");
    assert!(table.iter().all(|x| x.is_finite()));
    // Over the rows PCA saw (all but <pad>): zero mean, mean variance 1 per dimension.
    let rows: Vec<&[f32]> = vocab
        .itos()
        .iter()
        .filter(|t| *t != "<pad>")
        .map(|t| row(t))
        .collect();
    let n = rows.len() as f64;
    let mut total_var = 0.0;
    for d in 0..dim {
        let mean = rows.iter().map(|r| r[d] as f64).sum::<f64>() / n;
        assert!(mean.abs() < 1e-5, "dimension {d} mean {mean}");
        total_var += rows
            .iter()
            .map(|r| (r[d] as f64 - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0);
    }
    assert!((total_var / dim as f64 - 1.0).abs() < 1e-4, "{total_var}");
    // Variance decreases along the components; distinct words get distinct rows.
    let var = |d: usize| rows.iter().map(|r| (r[d] as f64).powi(2)).sum::<f64>();
    assert!(var(0) >= var(1) && var(1) >= var(dim - 1));
    assert_ne!(row("good"), row("dull"));
    // Deterministic.
    assert_eq!(table, self::table(&fixture("tiny-bert")));
}

#[test]
fn a_pytorch_bin_teacher_gives_the_same_table_as_safetensors() {
    let dir = tiny_without_weights();
    std::fs::copy(
        fixture("tiny-bert-pth/pytorch_model.bin"),
        dir.path().join("pytorch_model.bin"),
    )
    .unwrap();
    assert_eq!(table(dir.path()), table(&fixture("tiny-bert")));
}

#[test]
fn half_precision_weights_give_the_table_of_their_values() {
    let original =
        candle_core::safetensors::load(fixture("tiny-bert/model.safetensors"), &Device::Cpu)
            .unwrap();
    let f32_table = word_embeddings(&TeacherFiles::in_dir(&fixture("tiny-bert")).unwrap()).unwrap();
    // Round to nearest: at most the unit roundoff 2^-p relative (p = 8 significant bits
    // for bf16, 11 for f16), or half of f16's subnormal spacing 2^-24 near zero.
    let formats = [
        (DType::BF16, 2f32.powi(-8), 0.0),
        (DType::F16, 2f32.powi(-11), 2f32.powi(-25)),
    ];
    for (dtype, rel, abs) in formats {
        let write = |store: DType, dir: &Path| {
            let tensors: std::collections::HashMap<String, Tensor> = original
                .iter()
                .map(|(n, t)| {
                    let t = t.to_dtype(dtype).unwrap().to_dtype(store).unwrap();
                    (n.clone(), t)
                })
                .collect();
            candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
        };
        let (half, rounded) = (tiny_without_weights(), tiny_without_weights());
        write(dtype, half.path());
        write(DType::F32, rounded.path());
        // Stored in half precision or as the same values in f32: the same table.
        assert_eq!(table(half.path()), table(rounded.path()), "{dtype:?}");
        // And those values are the f32 teacher's within the rounding of the format.
        let half_table = word_embeddings(&TeacherFiles::in_dir(half.path()).unwrap()).unwrap();
        assert_eq!(half_table.dtype(), DType::F32);
        let (a, b) = (
            f32_table.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            half_table.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        let outside = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| (*x - *y).abs() > rel * x.abs() + abs)
            .count();
        assert_eq!(outside, 0, "{dtype:?}: values beyond the format's rounding");
    }
}

#[test]
fn a_teacher_without_word_embeddings_is_named() {
    let dir = tiny_without_weights();
    let mut t =
        candle_core::safetensors::load(fixture("tiny-bert/model.safetensors"), &Device::Cpu)
            .unwrap();
    t.remove("bert.embeddings.word_embeddings.weight");
    candle_core::safetensors::save(&t, dir.path().join("model.safetensors")).unwrap();
    let err = student_embeddings(dir.path().to_str().unwrap(), &vocab(), 4).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("bert.embeddings.word_embeddings.weight") && msg.contains("model.safetensors"),
        "{msg}"
    );
}

/// A student wider than its teacher (the pipeline's 128-wide `large-augment` on the 32-wide
/// tiny teacher of the smoke preset): the teacher's components fill the first columns, the
/// rest start at zero, and nothing is NaN.
#[test]
fn a_student_wider_than_the_teacher_gets_zero_columns_past_its_width() {
    let vocab = vocab();
    let teacher = fixture("tiny-bert");
    let width = 32; // tiny-bert's hidden_size
    let dim = width + 8;
    let table = student_embeddings(teacher.to_str().unwrap(), &vocab, dim).unwrap();
    assert_eq!(table.len(), vocab.len() * dim);
    assert!(table.iter().all(|x| x.is_finite()));
    let rows = || table.chunks_exact(dim);
    assert!(rows().all(|r| r[width..].iter().all(|&x| x == 0.0)));
    let good = &table[vocab.id("good") as usize * dim..][..width];
    assert!(
        good.iter().any(|&x| x != 0.0),
        "the teacher's columns hold its components"
    );
}
