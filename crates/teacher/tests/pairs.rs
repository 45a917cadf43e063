//! Sentence pairs against transformers on the tiny random BERT (`fixtures/tiny-bert-pairs.json`,
//! written by `scripts/golden/tiny_bert_pairs.py`): `[CLS] a [SEP] b [SEP]` ids and token
//! type ids exactly (`longest_first` truncation included, from `tokenizer.json` and from a
//! bare `vocab.txt`), logits to 1e-4 as the single-sentence golden; labelling and evaluation
//! of a pair data set; and a short pair fine-tuning run whose checkpoint reloads.

mod common;

use candle_core::Device;
use common::{device, fixture};
use distill_data::{Dataset, Example, LabelSet};
use distill_teacher::{
    evaluate, finetune, label, predict_data_logits, predict_pair_logits, FinetuneConfig,
    InferOptions, LoadOptions, Mode, Teacher,
};
use serde_json::Value;

struct Golden {
    max_length: usize,
    pairs: Vec<(String, String)>,
    ids: Vec<Vec<u32>>,
    types: Vec<Vec<u32>>,
    mask: Vec<Vec<u32>>,
    logits: Vec<Vec<f32>>,
}

impl Golden {
    fn firsts(&self) -> Vec<&str> {
        self.pairs.iter().map(|(a, _)| a.as_str()).collect()
    }

    fn seconds(&self) -> Vec<&str> {
        self.pairs.iter().map(|(_, b)| b.as_str()).collect()
    }

    /// Row `i` without its padding.
    fn unpadded(&self, rows: &[Vec<u32>], i: usize) -> Vec<u32> {
        let n = self.mask[i].iter().sum::<u32>() as usize;
        rows[i][..n].to_vec()
    }

    fn dataset(&self, labels: bool) -> Dataset {
        let examples = self
            .pairs
            .iter()
            .enumerate()
            .map(|(i, (a, b))| Example {
                text: a.clone(),
                text_pair: Some(b.clone()),
                label: labels.then_some((i % 2) as u32),
            })
            .collect();
        Dataset {
            examples,
            source: None,
        }
    }
}

fn golden() -> Golden {
    let text = std::fs::read_to_string(fixture("tiny-bert-pairs.json")).expect("golden pairs");
    let g: Value = serde_json::from_str(&text).expect("golden pairs parse");
    fn get<T: serde::de::DeserializeOwned>(g: &Value, key: &str) -> T {
        serde_json::from_value(g[key].clone()).expect(key)
    }
    let pairs: Vec<[String; 2]> = get(&g, "pairs");
    Golden {
        max_length: g["max_length"].as_u64().expect("max_length") as usize,
        pairs: pairs.into_iter().map(|[a, b]| (a, b)).collect(),
        ids: get(&g, "input_ids"),
        types: get(&g, "token_type_ids"),
        mask: get(&g, "attention_mask"),
        logits: get(&g, "logits"),
    }
}

fn load(dir: &std::path::Path, max_len: usize) -> Teacher {
    let opts = LoadOptions {
        max_len,
        ..Default::default()
    };
    Teacher::load(dir.to_str().expect("utf-8 path"), &opts, &device()).expect("tiny-bert loads")
}

fn quiet() -> InferOptions {
    InferOptions {
        batch_size: 3,
        progress: false,
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// tiny-bert with `vocab.txt` (from its `tokenizer.json`) instead of `tokenizer.json`.
fn tiny_bert_with_vocab_txt() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer_config.json",
        "tokenizer.json",
    ] {
        std::fs::copy(fixture("tiny-bert").join(f), dir.path().join(f)).unwrap();
    }
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("tokenizer.json")).unwrap())
            .unwrap();
    let vocab = json["model"]["vocab"].as_object().unwrap();
    let mut words = vec![String::new(); vocab.len()];
    for (word, id) in vocab {
        words[id.as_u64().unwrap() as usize] = word.clone();
    }
    std::fs::write(dir.path().join("vocab.txt"), words.join("\n")).unwrap();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    dir
}

#[test]
fn pair_ids_and_type_ids_match_transformers_exactly() {
    let g = golden();
    let vocab_dir = tiny_bert_with_vocab_txt();
    for (what, t) in [
        ("tokenizer.json", load(&fixture("tiny-bert"), g.max_length)),
        ("vocab.txt", load(vocab_dir.path(), g.max_length)),
    ] {
        let enc = t.tokenizer.encode_pairs(&g.firsts(), &g.seconds()).unwrap();
        let types = enc.type_ids.as_ref().expect("pairs have type ids");
        assert_eq!((enc.ids.len(), types.len()), (g.pairs.len(), g.pairs.len()));
        for (i, (a, b)) in g.pairs.iter().enumerate() {
            assert_eq!(enc.ids[i], g.unpadded(&g.ids, i), "{what}: ids of pair {i}");
            assert_eq!(
                types[i],
                g.unpadded(&g.types, i),
                "{what}: types of pair {i}"
            );
            let (ids, tys) = t.tokenizer.encode_pair(a, b).unwrap();
            assert_eq!(
                (&ids, &tys),
                (&enc.ids[i], &types[i]),
                "{what}: one pair alone"
            );
        }
        // Padded as transformers pads them: ids with [PAD], types and mask with 0.
        let rows: Vec<usize> = (0..g.pairs.len()).collect();
        let batch = enc.batch(&rows, t.tokenizer.pad_id(), &device()).unwrap();
        assert_eq!(batch.ids.to_vec2::<u32>().unwrap(), g.ids, "{what}");
        let padded_types = batch.type_ids.expect("pair batches carry type ids");
        assert_eq!(padded_types.to_vec2::<u32>().unwrap(), g.types, "{what}");
        assert_eq!(batch.mask.to_vec2::<u32>().unwrap(), g.mask, "{what}");
    }
}

#[test]
fn truncation_is_longest_first_with_the_tokenizers_tie_rule() {
    // 16 tokens leave 13 for text; both texts long: the shorter (the first on a tie)
    // keeps 6, the longer 7; only one long: it alone is cut.
    let g = golden();
    let sep = 102;
    let split = |ids: &[u32]| {
        let first_sep = ids.iter().position(|&i| i == sep).unwrap();
        (first_sep - 1, ids.len() - first_sep - 2)
    };
    let t = load(&fixture("tiny-bert"), g.max_length);
    let lengths: Vec<(usize, usize)> = g
        .pairs
        .iter()
        .map(|(a, b)| split(&t.tokenizer.encode_pair(a, b).unwrap().0))
        .collect();
    assert_eq!(
        lengths[1],
        (8, 0),
        "an empty second text: [CLS] a [SEP] [SEP]"
    );
    assert_eq!(lengths[2], (10, 3), "the longer first text alone is cut");
    assert_eq!(lengths[3], (3, 10), "the longer second text alone is cut");
    assert_eq!(lengths[4], (7, 6), "both cut, the first longer");
    assert_eq!(lengths[5], (6, 7), "both cut, the second longer");
    assert_eq!(lengths[6], (6, 7), "both cut, a tie");
}

#[test]
fn pair_logits_match_transformers() {
    let g = golden();
    let t = load(&fixture("tiny-bert"), g.max_length);
    let enc = t.tokenizer.encode_pairs(&g.firsts(), &g.seconds()).unwrap();
    let rows: Vec<usize> = (0..g.pairs.len()).collect();
    let batch = enc.batch(&rows, t.tokenizer.pad_id(), &device()).unwrap();
    let expected = g.logits.concat();
    for mode in [Mode::Eval, Mode::Grad] {
        let logits = t
            .model
            .forward_typed(&batch.ids, batch.type_ids.as_ref(), &batch.mask, mode)
            .unwrap();
        let got = logits.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let err = max_abs_diff(&got, &expected);
        println!("tiny-bert pair logits, {mode:?}: max abs error {err:.2e}");
        assert!(err < 1e-4, "{mode:?} logits differ by {err}");
    }
    // The type ids matter: all-zero types give other logits.
    let untyped = t
        .model
        .forward(&batch.ids, &batch.mask, Mode::Eval)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(max_abs_diff(&untyped, &expected) > 1e-3);
}

#[test]
fn labelling_and_evaluation_read_pairs_in_input_order() {
    let g = golden();
    let t = load(&fixture("tiny-bert"), g.max_length);
    let data = g.dataset(true);
    let expected = g.logits.concat();
    // Batches of 3 sorted by length: rows are put back in input order.
    let logits = label(&t, &data, &quiet()).unwrap();
    assert_eq!((logits.len(), logits.num_labels), (g.pairs.len(), 2));
    assert_eq!(logits.meta.data_sha256, data.fingerprint());
    let err = max_abs_diff(&logits.logits, &expected);
    assert!(err < 1e-4, "labelled pair logits differ by {err}");
    let direct = predict_pair_logits(&t, &g.firsts(), &g.seconds(), &quiet()).unwrap();
    assert_eq!(direct, predict_data_logits(&t, &data, &quiet()).unwrap());
    assert!(max_abs_diff(&direct, &expected) < 1e-4);

    let eval = evaluate(&t, &data, &quiet()).unwrap();
    let labels = data.labels().unwrap();
    let ce: f64 = g
        .logits
        .iter()
        .zip(&labels)
        .map(|(row, &y)| {
            let lse = row.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln();
            lse - row[y as usize] as f64
        })
        .sum::<f64>()
        / labels.len() as f64;
    assert!((eval.loss - ce).abs() < 1e-4, "{} vs {ce}", eval.loss);

    // Single sentences are unchanged by the pair path: a sentence alone is not the
    // sentence with an empty partner.
    let single = Dataset::from_texts(vec![g.pairs[1].0.clone()]);
    let alone = predict_data_logits(&t, &single, &quiet()).unwrap();
    assert_ne!(alone, direct[2..4].to_vec());
}

#[test]
fn pair_shards_merge_to_the_whole_run_bit_for_bit() {
    use distill_data::shard::{merge, Shard};
    use distill_teacher::{infer::SORT_WINDOW, label_shard};
    let t = load(&fixture("tiny-bert"), 32);
    // Two sort windows: rows of different lengths, so sorting and padding matter.
    let mut data = same_or_not(SORT_WINDOW + 40, 0);
    for (i, e) in data.examples.iter_mut().enumerate() {
        e.text_pair = Some(format!(
            "{} {}",
            e.text_pair.take().unwrap(),
            "so ".repeat(i % 5)
        ));
    }
    let opts = InferOptions {
        batch_size: 64,
        progress: false,
    };
    let whole = label(&t, &data, &opts).unwrap();
    let shards = (0..2)
        .map(|index| label_shard(&t, &data, Shard { index, count: 2 }, &opts).unwrap())
        .collect();
    let merged = merge(shards).unwrap();
    assert_eq!(merged.logits, whole.logits);
    assert_eq!(merged.meta.data_sha256, data.fingerprint());
}

#[test]
fn a_data_set_mixing_pairs_and_sentences_is_refused() {
    let g = golden();
    let t = load(&fixture("tiny-bert"), g.max_length);
    let mut data = g.dataset(false);
    data.examples[3].text_pair = None;
    let err = label(&t, &data, &quiet()).unwrap_err();
    assert!(err.to_string().contains("mixes"), "{err}");
    data.examples.swap(0, 3);
    assert!(
        label(&t, &data, &quiet()).is_err(),
        "whichever row comes first"
    );
    let err = predict_pair_logits(&t, &["a", "b"], &["c"], &quiet()).unwrap_err();
    assert!(err.to_string().contains("2 first texts but 1"), "{err}");
}

/// Pairs whose label says whether the two texts share their adjective.
fn same_or_not(n: usize, offset: usize) -> Dataset {
    let words = ["good", "bad", "dull", "bright"];
    let examples = (0..n)
        .map(|i| {
            let j = i + offset;
            let a = words[j % 4];
            let same = !j.is_multiple_of(3);
            let b = if same { a } else { words[(j + 1) % 4] };
            Example {
                text: format!("a {a} film ."),
                text_pair: Some(format!("it is {b} .")),
                label: Some(same as u32),
            }
        })
        .collect();
    Dataset {
        examples,
        source: None,
    }
}

#[test]
fn pair_fine_tuning_runs_and_its_checkpoint_reloads() {
    let out = tempfile::tempdir().unwrap();
    let labels = LabelSet::new(vec!["different".into(), "same".into()]);
    let cfg = FinetuneConfig {
        teacher: fixture("tiny-bert").to_str().unwrap().into(),
        out: out.path().to_path_buf(),
        labels: labels.clone(),
        lr: 1e-3,
        batch_size: 8,
        max_steps: Some(6),
        eval_every: Some(3),
        max_len: 32,
        progress: false,
        ..Default::default()
    };
    let (train, dev) = (same_or_not(48, 0), same_or_not(16, 1));
    let report = finetune(&cfg, &train, &dev, &Device::Cpu).unwrap();
    assert_eq!(report.steps, 6);
    assert!(report
        .history
        .iter()
        .all(|r| r.train_loss.is_finite() && r.val_loss.is_finite()));

    let saved = Teacher::load(
        out.path().to_str().unwrap(),
        &LoadOptions {
            max_len: 32,
            ..Default::default()
        },
        &Device::Cpu,
    )
    .unwrap();
    saved.check_labels(&labels).unwrap();
    let eval = evaluate(&saved, &dev, &quiet()).unwrap();
    assert!((eval.metrics.acc - report.best.val_acc).abs() < 1e-9);
    assert!((eval.loss - report.best.val_loss).abs() < 1e-4);

    // Pairs for training, single sentences for dev: refused before any step.
    let singles = Dataset::from_texts(vec!["a good film .".into()]);
    let mut dev_singles = singles.clone();
    dev_singles.examples[0].label = Some(1);
    let other = tempfile::tempdir().unwrap();
    let cfg = FinetuneConfig {
        out: other.path().join("out"),
        ..cfg
    };
    let err = finetune(&cfg, &train, &dev_singles, &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("both be sentence pairs"), "{err}");
}
