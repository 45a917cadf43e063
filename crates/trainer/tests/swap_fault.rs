//! A kill inside the swap of a new `last/` checkpoint (stopped there by distill-data's
//! fault hook) costs at most the epoch in flight: the next run puts the old checkpoint
//! back, resumes from it, and ends as an uninterrupted run would.

mod common;

use std::path::Path;

use candle_core::Device;
use common::{records, sst2_slice};
use distill_data::io::{fault::set_swap_fault, SwapStep};
use distill_trainer::StudentRun;

fn run(train: &Path, out: &Path, epochs: usize) -> distill_trainer::Result<()> {
    let mut run = StudentRun::new(train.to_path_buf(), out.to_path_buf());
    run.train.epochs = epochs;
    run.train.seed = 42;
    run.train.progress = false;
    run.run(&Device::Cpu).map(|_| ())
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn a_kill_in_the_checkpoint_swap_resumes_from_the_last_good_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let train = sst2_slice(tmp.path(), 300);
    let reference = tmp.path().join("reference");
    run(&train, &reference, 3).unwrap();
    let steps = [
        SwapStep::Synced,
        SwapStep::OldMovedAside,
        SwapStep::NewInPlace,
    ];
    for stop in steps {
        let out = tmp.path().join(format!("{stop:?}"));
        // Kill the swap of epoch 2's `last/` at `stop`.
        let mut swaps = 0;
        set_swap_fault(Some(Box::new(move |to, step| {
            if to.file_name().is_some_and(|n| n == "last") {
                swaps += usize::from(step == SwapStep::Synced);
                if swaps == 2 && step == stop {
                    return Err(std::io::Error::other("killed"));
                }
            }
            Ok(())
        })));
        let killed = run(&train, &out, 3);
        set_swap_fault(None);
        assert!(killed.is_err(), "{stop:?}");
        assert_eq!(
            out.join("last").exists(),
            stop != SwapStep::OldMovedAside,
            "{stop:?}"
        );
        // Mark epoch 1's record: a resumed run keeps it, a run started over rewrites it.
        let mut kept = records(&out);
        assert_eq!(kept.len(), 2, "{stop:?}");
        kept[0].epoch_seconds = 1234.5;
        let text: String = kept
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        std::fs::write(out.join("metrics.jsonl"), text).unwrap();

        run(&train, &out, 3).unwrap();
        let (got, want) = (records(&out), records(&reference));
        assert_eq!(got[0].epoch_seconds, 1234.5, "{stop:?}: started over");
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert_eq!(
                (a.epoch, a.train_loss, a.val_loss, a.val_acc),
                (b.epoch, b.train_loss, b.val_loss, b.val_acc),
                "{stop:?}"
            );
        }
        for file in ["best/model.safetensors", "last/model.safetensors"] {
            assert_eq!(read(out.join(file)), read(reference.join(file)), "{file}");
        }
        let leftovers: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".old") || n.ends_with(".partial"))
            .collect();
        assert!(leftovers.is_empty(), "{stop:?}: {leftovers:?}");
    }
}
