//! Labelling in shards: `distill teacher label --shard I/N` as separate processes, then
//! `distill logits merge`, gives the single run's cache bit for bit; a missing, duplicated
//! or foreign shard is refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use distill_data::TeacherLogits;

mod common;

use common::{assets, distill, head};

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn refused(o: Output, expected: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "accepted; expected an error about {expected}"
    );
    assert!(err.contains(expected), "expected `{expected}` in:\n{err}");
}

fn tiny_bert() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny-bert")
}

/// The first `lines` sentences of SST-2 train: enough for three 4,096-row windows.
fn sst2_head(dst: &Path, lines: usize) {
    head(&assets().join("train.tsv"), dst, lines);
}

/// `distill logits merge --out OUT SHARD…`.
fn merge(out: &Path, shards: &[&Path]) -> Output {
    let mut args = vec!["logits", "merge", "--out", out.to_str().unwrap()];
    args.extend(shards.iter().map(|p| p.to_str().unwrap()));
    distill(&args)
}

fn label(teacher: &Path, data: &Path, out: &Path, shard: Option<&str>) -> Output {
    let mut args = vec![
        "teacher",
        "label",
        "--teacher",
        teacher.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    if let Some(s) = shard {
        args.extend(["--shard", s]);
    }
    distill(&args)
}

#[test]
fn three_shards_merge_into_the_single_runs_cache_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name);
    let data = p("train.tsv");
    sst2_head(&data, 9_000);
    ok(label(&tiny_bert(), &data, &p("whole.safetensors"), None));
    let shards: Vec<PathBuf> = (0..3)
        .map(|i| p(&format!("shard{i}.safetensors")))
        .collect();
    for (i, shard) in shards.iter().enumerate() {
        ok(label(&tiny_bert(), &data, shard, Some(&format!("{i}/3"))));
    }
    // Out of order on purpose: the merge sorts by shard index.
    let [s0, s1, s2] = [&shards[0], &shards[1], &shards[2]].map(PathBuf::as_path);
    ok(merge(&p("merged.safetensors"), &[s2, s0, s1]));
    // Every logit equal to the bit, and the same provenance (the file bytes can differ only
    // in the order safetensors writes the metadata map).
    let whole = TeacherLogits::load(&p("whole.safetensors")).unwrap();
    let merged = TeacherLogits::load(&p("merged.safetensors")).unwrap();
    assert_eq!(whole.len(), 9_000);
    let bits = |t: &TeacherLogits| t.logits.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
    assert!(
        bits(&whole) == bits(&merged),
        "the merged logits differ from the single run's"
    );
    assert_eq!(whole.meta, merged.meta);

    let x = p("x");
    refused(merge(&x, &[s0, s2]), "shards missing: 1/3");
    refused(merge(&x, &[s0, s1, s1, s2]), "given twice");
    refused(merge(&x, &[&p("whole.safetensors")]), "not a shard");
    // A shard of other data (one sentence fewer) is foreign.
    let other = p("other.tsv");
    sst2_head(&other, 8_999);
    let foreign = p("foreign.safetensors");
    ok(label(&tiny_bert(), &other, &foreign, Some("1/3")));
    refused(merge(&x, &[s0, &foreign, s2]), "from another run");
    assert!(!p("x").exists(), "a refused merge writes nothing");
}

#[test]
fn auto_shards_take_the_index_from_the_scheduler() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("train.tsv");
    sst2_head(&data, 50);
    let out = tmp.path().join("s.safetensors");
    let o = Command::new(env!("CARGO_BIN_EXE_distill"))
        .args([
            "teacher",
            "label",
            "--teacher",
            tiny_bert().to_str().unwrap(),
        ])
        .args([
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--shard", "auto/2"])
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env("JOB_COMPLETION_INDEX", "0")
        .output()
        .unwrap();
    ok(o);
    let cache = TeacherLogits::load(&out).unwrap();
    let info = cache.meta.shard.expect("a shard records its place");
    assert_eq!(info.shard.to_string(), "0/2");
    // 50 rows are one window: shard 0 of 2 holds none of them, shard 1 all.
    assert_eq!((info.rows, info.total), (0..0, 50));
    refused(
        label(&tiny_bert(), &data, &out, Some("auto/2")),
        "SLURM_ARRAY_TASK_ID",
    );
}
