//! The serving paths against each other and against the references: batched
//! ([`Predictor::logits_batch`]), one sentence ([`Predictor::logits`]) and the per-sentence
//! path ([`Predictor::logits_batch_per_sentence`]) on random models of every shape (1..3
//! layers, odd hidden sizes, N outputs, pairs), with empty, truncated and very long texts;
//! the candle model with the plain-op reference recurrence; the PyTorch goldens; and text in
//! through the word cache against uncached encoding.

mod common;

use candle_core::{Device, Tensor};
use common::{fixture, rel_err};
use distill_data::{Normalizer, TextEncoder, Tokenization, Vocab, VocabBuilder, WordCache};
use distill_student::{
    BiLstmClassifier, Predictor, Recurrence, StudentConfig, StudentModel, StudentPreset,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random model over a vocabulary of `w0 … w{V−3}` (plain words, no stemming).
fn model(
    rng: &mut ChaCha8Rng,
    layers: usize,
    emb: usize,
    hidden: usize,
    outputs: usize,
    pair: bool,
) -> StudentModel {
    let words: Vec<Vec<String>> = (0..40).map(|i| vec![format!("w{i}")]).collect();
    let vocab: Vocab = VocabBuilder::default().build(words.iter().map(Vec::as_slice));
    let preset = StudentPreset {
        name: "test".into(),
        embedding_dim: emb,
        hidden_size: hidden,
        num_layers: layers,
        dropout: 0.0,
    };
    let mut config = StudentConfig::new(&preset, vocab.len(), outputs).with_pair(pair);
    config.normalize = false;
    config.max_len = 50;
    let tensors = BiLstmClassifier::init_tensors(&config, rng, &Device::Cpu).unwrap();
    StudentModel {
        classifier: BiLstmClassifier::from_tensors(&config, &tensors).unwrap(),
        config,
        encoder: TextEncoder::new(Tokenization::Words(Normalizer::plain()), vocab),
    }
}

/// Sequences of random lengths: empty ones, one-token ones, some past `max_len` (50),
/// ids past the vocabulary (read as its last row).
fn sequences(rng: &mut ChaCha8Rng, n: usize, vocab: u32) -> Vec<Vec<u32>> {
    (0..n)
        .map(|i| {
            let len = match i % 7 {
                0 => 0,
                1 => 1,
                2 => rng.gen_range(51..90),
                _ => rng.gen_range(2..30),
            };
            (0..len).map(|_| rng.gen_range(0..vocab + 3)).collect()
        })
        .collect()
}

/// max |a − b| / max(1, |b|) over all logits.
fn max_rel(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut m = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.len(), y.len());
        for (p, q) in x.iter().zip(y) {
            assert!(p.is_finite(), "finite logits");
            m = m.max((p - q).abs() / q.abs().max(1.0));
        }
    }
    m
}

#[test]
fn batched_single_and_per_sentence_paths_agree_for_every_shape() {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    // (layers, embedding, hidden, outputs, pair): the presets' widths (8, 64) run
    // compile-time specialisations, 1, 3, 5 and 12 the run-time ones.
    for (layers, emb, hidden, outputs, pair) in [
        (1, 16, 8, 2, false),
        (1, 16, 8, 1, false),
        (1, 6, 64, 5, false),
        (2, 7, 5, 3, false),
        (3, 4, 3, 2, false),
        (1, 5, 1, 2, false),
        (2, 9, 12, 4, true),
        (1, 16, 8, 3, true),
    ] {
        let what = format!("layers {layers}, E {emb}, H {hidden}, C {outputs}, pair {pair}");
        let m = model(&mut rng, layers, emb, hidden, outputs, pair);
        let p = Predictor::new(&m).unwrap();
        let vocab = m.config.vocab_size as u32;
        // 37 and 70 sequences: blocks of 16 with a partial last one.
        for n in [1, 37, 70] {
            let a = sequences(&mut rng, n, vocab);
            let b = sequences(&mut rng, n, vocab);
            let (batched, per_sentence) = if pair {
                (
                    p.logits_pair_batch(&a, &b).unwrap(),
                    p.logits_pair_batch_per_sentence(&a, &b).unwrap(),
                )
            } else {
                (p.logits_batch(&a), p.logits_batch_per_sentence(&a))
            };
            assert_eq!(batched.len(), n);
            assert!(batched.iter().all(|l| l.len() == p.num_outputs()));
            let e = max_rel(&batched, &per_sentence);
            assert!(e <= 1e-6, "{what}, n {n}: batched vs per-sentence {e:e}");
            // One at a time: the per-sentence arithmetic (bit for bit where the portable loops
            // run, within rounding where hidden size 8 has its AVX-512 kernel).
            let one: Vec<Vec<f32>> = (0..n)
                .map(|i| {
                    if pair {
                        p.logits_pair(&a[i], &b[i]).unwrap()
                    } else {
                        p.logits(&a[i])
                    }
                })
                .collect();
            if hidden != 8 {
                assert_eq!(one, per_sentence, "{what}: one sentence at a time");
            }
            let e = max_rel(&one, &per_sentence);
            assert!(
                e <= 1e-6,
                "{what}, n {n}: one at a time vs per-sentence {e:e}"
            );
            // Order is kept: reversing the input reverses the output.
            if !pair {
                let rev: Vec<Vec<u32>> = a.iter().rev().cloned().collect();
                let back: Vec<Vec<f32>> = p.logits_batch(&rev).into_iter().rev().collect();
                assert_eq!(back, batched, "{what}: input order");
            }
        }
    }
}

#[test]
fn batched_logits_match_the_candle_reference_recurrence() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for (layers, hidden) in [(1, 8), (2, 5)] {
        let m = model(&mut rng, layers, 16, hidden, 2, false);
        let p = Predictor::new(&m).unwrap();
        // Lengths 1..=19 (the candle model pads; 0 is covered against the per-sentence
        // path), every id in the vocabulary.
        let seqs: Vec<Vec<u32>> = (0..19)
            .map(|i| (0..=i).map(|t| ((t * 7 + i) % 42) as u32).collect())
            .collect();
        let time = seqs.iter().map(Vec::len).max().unwrap();
        let padded: Vec<u32> = seqs
            .iter()
            .flat_map(|s| s.iter().copied().chain(std::iter::repeat(1)).take(time))
            .collect();
        let ids = Tensor::from_vec(padded, (seqs.len(), time), &Device::Cpu).unwrap();
        let lengths: Vec<usize> = seqs.iter().map(Vec::len).collect();
        let reference = m
            .classifier
            .clone()
            .with_recurrence(Recurrence::Reference)
            .forward(&ids, &lengths, None)
            .unwrap();
        let fast = Tensor::new(p.logits_batch(&seqs), &Device::Cpu).unwrap();
        let e = rel_err(&fast, &reference);
        assert!(
            e < 1e-5,
            "layers {layers}: batched vs candle reference {e:e}"
        );
    }
}

#[test]
fn batched_logits_match_the_pytorch_goldens() {
    // The original student (vocab 50, 16/8) on 4 sentences of lengths 7, 2, 5, 1.
    let g = fixture("seed_student_distill.safetensors");
    let mut config = StudentConfig::new(&StudentPreset::original(), 50, 2);
    config.normalize = false;
    let tensors = BiLstmClassifier::parameter_shapes(&config)
        .into_iter()
        .map(|(n, _)| (n.clone(), g[&n].clone()))
        .collect();
    let words: Vec<Vec<String>> = (0..48).map(|i| vec![format!("w{i}")]).collect();
    let vocab: Vocab = VocabBuilder::default().build(words.iter().map(Vec::as_slice));
    let m = StudentModel {
        classifier: BiLstmClassifier::from_tensors(&config, &tensors).unwrap(),
        config,
        encoder: TextEncoder::new(Tokenization::Words(Normalizer::plain()), vocab),
    };
    let p = Predictor::new(&m).unwrap();
    // Time-major ids (T, B).
    let ids = g["ids"]
        .t()
        .unwrap()
        .to_dtype(candle_core::DType::U32)
        .unwrap();
    let rows = ids.to_vec2::<u32>().unwrap();
    let lengths = g["lengths"].to_vec1::<i64>().unwrap();
    let seqs: Vec<Vec<u32>> = rows
        .iter()
        .zip(&lengths)
        .map(|(r, &l)| r[..l as usize].to_vec())
        .collect();
    // Repeated past a block, so the golden rows sit in several lanes and blocks.
    let many: Vec<Vec<u32>> = seqs.iter().cycle().take(4 * 9).cloned().collect();
    let fast = p.logits_batch(&many);
    let want = g["logits"].to_vec2::<f32>().unwrap();
    for (i, row) in fast.iter().enumerate() {
        let golden = Tensor::new(want[i % 4].as_slice(), &Device::Cpu).unwrap();
        let got = Tensor::new(row.as_slice(), &Device::Cpu).unwrap();
        let e = rel_err(&got, &golden);
        assert!(e < 1e-5, "row {i}: batched vs PyTorch {e:e}");
    }
}

#[test]
fn very_long_texts_read_the_first_max_len_tokens_in_every_path() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    // A multi-layer model with a long max_len: sentences past the block limit are read
    // one at a time, the rest in blocks.
    for layers in [1, 2] {
        let mut m = model(&mut rng, layers, 8, 8, 2, false);
        m.config.max_len = 3000;
        let p = Predictor::new(&m).unwrap();
        let long: Vec<u32> = (0..2500).map(|i| (i * 13 % 41) as u32).collect();
        let longer: Vec<u32> = long.iter().chain(&long).copied().collect();
        let seqs = vec![
            long.clone(),
            vec![3, 4],
            longer.clone(),
            vec![],
            long[..1100].to_vec(),
        ];
        let batched = p.logits_batch(&seqs);
        let per = p.logits_batch_per_sentence(&seqs);
        let e = max_rel(&batched, &per);
        assert!(e <= 1e-6, "layers {layers}: {e:e}");
        // Past max_len nothing counts.
        assert_eq!(p.logits(&longer), p.logits(&longer[..3000]));
        assert_eq!(batched[2], p.logits_batch(&[longer[..3000].to_vec()])[0]);
    }
}

#[test]
fn text_through_the_word_cache_equals_uncached_encoding() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let corpus = [
        "it 's a charming and often affecting journey .",
        "in exactly 89 minutes , most of which passed slowly",
        "ÜBER über naïve 東京 🙂 — [MASK] the end",
    ];
    for normalize in [true, false] {
        let n = Normalizer::new(normalize);
        let tokens: Vec<Vec<String>> = corpus.iter().map(|t| n.tokens(t)).collect();
        let vocab: Vocab = VocabBuilder::default().build(tokens.iter().map(Vec::as_slice));
        let mut config = StudentConfig::new(&StudentPreset::original(), vocab.len(), 2);
        config.normalize = normalize;
        config.max_len = 6;
        let tensors = BiLstmClassifier::init_tensors(&config, &mut rng, &Device::Cpu).unwrap();
        let m = StudentModel {
            classifier: BiLstmClassifier::from_tensors(&config, &tensors).unwrap(),
            config,
            encoder: TextEncoder::new(Tokenization::Words(n), vocab),
        };
        let p = Predictor::new(&m).unwrap();
        let long = "charming ".repeat(5000);
        let mut texts: Vec<String> = corpus.iter().map(|s| s.to_string()).collect();
        texts.extend(
            [
                "",
                "   \t ",
                "?!... -- ,",
                "Charming CHARMING charming. charms",
                "a\u{1c}b\u{a0}c\u{2003}d",
                "\u{0}\u{7f} \u{feff}x 1999 2-d '007",
                long.as_str(),
            ]
            .map(String::from),
        );
        // Three rounds: the first fills the caches, the others read them.
        for round in 0..3 {
            let batch = p.predict_batch(&texts);
            let encoded = p.encode_batch(&texts);
            for (i, text) in texts.iter().enumerate() {
                let mut want = m.encoder.encode(text);
                want.truncate(6);
                assert_eq!(p.encode(text), want, "{text:?} round {round}");
                assert_eq!(encoded[i], want, "{text:?} round {round}, batch");
                let one = p.predict(text);
                assert_eq!(one.logits, p.logits(&want), "{text:?}");
                assert!(
                    max_rel(
                        std::slice::from_ref(&batch[i].logits),
                        std::slice::from_ref(&one.logits)
                    ) <= 1e-6,
                    "{text:?}"
                );
                assert_eq!(batch[i].label, one.label, "{text:?}");
            }
        }
    }
    // Many texts: chunks of 128 read on different threads, put back in order.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let m = model(&mut rng, 1, 16, 8, 4, false);
    let p = Predictor::new(&m).unwrap();
    let many: Vec<String> = (0..300)
        .map(|i| {
            (0..i % 23)
                .map(|k| format!("w{} ", (i * 5 + k * 3) % 41))
                .collect()
        })
        .collect();
    let batch = p.predict_batch(&many);
    assert_eq!(batch.len(), many.len());
    for (text, got) in many.iter().zip(&batch) {
        let one = p.predict(text);
        let e = max_rel(
            std::slice::from_ref(&got.logits),
            std::slice::from_ref(&one.logits),
        );
        assert!(e <= 1e-6, "{text:?}: {e:e}");
    }
    // The cache itself is bounded (its own tests cover eviction).
    assert!(WordCache::default().capacity() > 0);
}

#[test]
fn pair_texts_batched_equal_each_pair_alone() {
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let m = model(&mut rng, 1, 16, 8, 3, true);
    let p = Predictor::new(&m).unwrap();
    let words = |i: usize| -> String {
        (0..i % 9)
            .map(|k| format!("w{} ", (i * 7 + k) % 45))
            .collect()
    };
    let a: Vec<String> = (0..40).map(words).collect();
    let b: Vec<String> = (0..40).map(|i| words(i * 3 + 1)).collect();
    let batch = p.predict_pair_batch(&a, &b).unwrap();
    assert_eq!(batch.len(), 40);
    for (i, got) in batch.iter().enumerate() {
        let one = p.predict_pair(&a[i], &b[i]).unwrap();
        let e = max_rel(
            std::slice::from_ref(&got.logits),
            std::slice::from_ref(&one.logits),
        );
        assert!(e <= 1e-6, "pair {i}: {e:e}");
        assert_eq!(got.label_name, one.label_name);
    }
    assert!(
        p.predict_pair_batch(&a, &b[..3]).is_err(),
        "lists of different lengths"
    );
    let single = Predictor::new(&model(&mut rng, 1, 16, 8, 2, false)).unwrap();
    let e = single.predict_pair_batch(&a, &b).unwrap_err();
    assert!(e.to_string().contains("single texts"), "{e}");
}
