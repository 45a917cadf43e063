//! Settings and data the teacher's library functions refuse with a typed error instead of
//! a panic or an empty result, and the label names a logit cache records.

use std::path::PathBuf;

use candle_core::Device;
use distill_data::Dataset;
use distill_teacher::{label, similar_words, Error, InferOptions, LoadOptions, Teacher};

fn tiny() -> Teacher {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny-bert");
    Teacher::load(dir.to_str().unwrap(), &LoadOptions::default(), &Device::Cpu).unwrap()
}

fn quiet() -> InferOptions {
    InferOptions {
        batch_size: 4,
        progress: false,
    }
}

#[test]
fn zero_neighbours_is_a_setting_error_not_a_panic() {
    let teacher = tiny();
    let words: Vec<String> = ["good", "bad", "film", "movie"].map(String::from).to_vec();
    let e = similar_words(&teacher, &words, 0).unwrap_err();
    assert!(matches!(e, Error::Setting(_)), "{e:?}");
    assert!(e.to_string().contains("at least 1"), "{e}");
    let subs = similar_words(&teacher, &words, 1).unwrap();
    assert!(subs.values().all(|c| c.len() == 1), "{subs:?}");
}

#[test]
fn label_records_the_teachers_label_names_and_refuses_empty_data() {
    let teacher = tiny();
    let data = Dataset::from_texts(vec!["a good film".into(), "dull".into()]);
    let cache = label(&teacher, &data, &quiet()).unwrap();
    assert_eq!(cache.meta.labels, teacher.labels());
    assert_eq!(cache.meta.labels.len(), cache.num_labels);

    let empty = Dataset::from_texts(vec![]);
    let e = label(&teacher, &empty, &quiet()).unwrap_err();
    assert!(matches!(e, Error::Data(_)), "{e:?}");
    assert!(e.to_string().contains("at least one"), "{e}");
}
