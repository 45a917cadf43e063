//! A fine-tuning step over a batch split in parts (one per core on the CPU) is the step over
//! the whole batch: same loss, same gradient of every parameter, the word-embedding rows
//! merged; and a seeded run of split steps repeats itself.

mod common;

use candle_core::Device;
use common::{fixture, tensor_max_abs, tensor_max_abs_diff, toy};
use distill_data::LabelSet;
use distill_teacher::optim::{AdamW, AdamWConfig};
use distill_teacher::step::{split_rows, step_gradients, train_step_parts, StepPart};
use distill_teacher::{HeadInit, LoadOptions, Mode, Teacher};

fn teacher() -> Teacher {
    let load = LoadOptions {
        labels: Some(LabelSet::binary().names().to_vec()),
        head: HeadInit::Random,
        seed: 5,
        ..Default::default()
    };
    Teacher::load(fixture("tiny-bert").to_str().unwrap(), &load, &Device::Cpu).unwrap()
}

/// The rows `rows` of `data` as parts cut by [`split_rows`].
fn parts(
    teacher: &Teacher,
    data: &distill_data::Dataset,
    rows: &[usize],
    n: usize,
) -> Vec<StepPart> {
    let encoded = teacher.tokenizer.encode_data(data).unwrap();
    let labels = data.labels().unwrap();
    split_rows(rows, n)
        .into_iter()
        .map(|rows| StepPart {
            inputs: encoded
                .batch(&rows, teacher.tokenizer.pad_id(), teacher.device())
                .unwrap(),
            labels: rows.iter().map(|&i| labels[i]).collect(),
        })
        .collect()
}

#[test]
fn split_rows_interleaves_and_never_makes_an_empty_part() {
    assert_eq!(
        split_rows(&[4, 5, 6, 7, 8], 2),
        vec![vec![4, 6, 8], vec![5, 7]]
    );
    assert_eq!(split_rows(&[9], 2), vec![vec![9]]);
    assert_eq!(split_rows(&[1, 2], 1), vec![vec![1, 2]]);
}

#[test]
fn gradients_of_two_parts_are_those_of_the_whole_batch() {
    let teacher = teacher();
    let data = toy(11, 0);
    let rows: Vec<usize> = (0..data.len()).collect();
    // No dropout (Mode::Grad): the two passes see the same function.
    let whole = step_gradients(&teacher, &parts(&teacher, &data, &rows, 1), Mode::Grad).unwrap();
    let split = step_gradients(&teacher, &parts(&teacher, &data, &rows, 2), Mode::Grad).unwrap();
    assert!(
        (whole.loss - split.loss).abs() <= 1e-5 * whole.loss.abs(),
        "{} vs {}",
        whole.loss,
        split.loss
    );
    let mut compared = 0;
    for (name, var) in teacher.model.params().iter() {
        match (
            whole.dense.get(var.as_tensor()),
            split.dense.get(var.as_tensor()),
        ) {
            (Some(a), Some(b)) => {
                let scale = tensor_max_abs(a);
                let diff = tensor_max_abs_diff(a, b);
                // The attention key bias's gradient is zero up to rounding (a softmax does
                // not see a shift common to all its scores): an absolute floor covers it.
                assert!(
                    diff <= 1e-4 * scale + 1e-6,
                    "{name}: {diff} (scale {scale})"
                );
                compared += 1;
            }
            (None, None) => {}
            (a, b) => panic!(
                "{name}: gradient in one pass only ({} / {})",
                a.is_some(),
                b.is_some()
            ),
        }
    }
    assert!(compared > 10, "{compared} parameters compared");
    let (rows_a, values_a) = whole.words.unwrap();
    let (rows_b, values_b) = split.words.unwrap();
    assert_eq!(rows_a, rows_b, "the same word rows, sorted and distinct");
    let scale = tensor_max_abs(&values_a);
    assert!(tensor_max_abs_diff(&values_a, &values_b) <= 1e-4 * scale);
}

#[test]
fn seeded_split_training_repeats_itself_and_learns() {
    let run = || {
        let teacher = teacher();
        teacher.model.seed_dropout(7);
        let mut opt = AdamW::new(teacher.model.params().iter(), AdamWConfig::default()).unwrap();
        let data = toy(16, 0);
        let rows: Vec<usize> = (0..data.len()).collect();
        (0..6)
            .map(|_| {
                let p = parts(&teacher, &data, &rows, 2);
                train_step_parts(&teacher, &mut opt, &p, 1e-3, 1.0).unwrap()
            })
            .collect::<Vec<f64>>()
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b, "same seed, same losses");
    assert!(a.last().unwrap() < a.first().unwrap(), "{a:?}");
}
