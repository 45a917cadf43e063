//! The report of a fixed run folder (`fixtures/report/run`, a trimmed smoke run: see its
//! README) must be `fixtures/report/report.expected.md` exactly: every number of every
//! table (accuracy, AP, F1, per-label precision, recall, F1, support and AP, confusion
//! counts, parameters, sizes, speed-ups), the pictures' titles and links, stage times,
//! settings and commands.
//!
//! After a deliberate change of the report, regenerate the expected file with
//!
//! ```sh
//! DISTILL_BLESS=1 cargo test --release -p distill-report --test golden
//! ```
//!
//! and read its diff before committing it: a changed number is a changed result.

use std::path::{Path, PathBuf};

use distill_report::{RunFolder, Selection};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/report")
}

/// Copies the folder `from` into `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn the_report_of_a_fixed_run_is_the_expected_one() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("golden");
    copy_dir(&fixtures().join("run"), &run);
    let written =
        distill_report::write(&RunFolder::new(&run), &Selection::default(), None).unwrap();
    let md = std::fs::read_to_string(&written.markdown).unwrap();
    let expected_path = fixtures().join("report.expected.md");
    if std::env::var_os("DISTILL_BLESS").is_some() {
        std::fs::write(&expected_path, &md).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap();
    if md != expected {
        let first = md
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(md.lines().count().min(expected.lines().count()));
        panic!(
            "report.md differs from {} from line {}:\n  got:      {}\n  expected: {}\n\
             (DISTILL_BLESS=1 rewrites the expected file; see this test's module doc)",
            expected_path.display(),
            first + 1,
            md.lines().nth(first).unwrap_or("<end>"),
            expected.lines().nth(first).unwrap_or("<end>"),
        );
    }
    // The pictures and the other documents are there too.
    for f in [
        "report.html",
        "report.json",
        "plots/pr.png",
        "plots/training.svg",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
}

#[test]
fn without_pipeline_json_the_report_still_has_every_model() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, piped) = (tmp.path().join("bare"), tmp.path().join("piped"));
    copy_dir(&fixtures().join("run"), &run);
    copy_dir(&fixtures().join("run"), &piped);
    std::fs::remove_file(run.join("pipeline.json")).unwrap();
    // Students by name, each described from its training settings; no stages or settings.
    let written =
        distill_report::write(&RunFolder::new(&run), &Selection::default(), None).unwrap();
    let md = std::fs::read_to_string(&written.markdown).unwrap();
    assert!(md.starts_with("# candle-distill report: bare\n"), "{md}");
    assert!(
        md.contains("| distill-augment | distilled: CE + logit MSE + augmentation |"),
        "{md}"
    );
    assert!(
        !md.contains("## Stages") && !md.contains("## Settings"),
        "{md}"
    );
    // The same numbers as the pipeline's report: the rows differ in their second column only.
    // Written elsewhere (`--out`), leaving the run folder as it was.
    let out = tmp.path().join("out");
    let written =
        distill_report::write(&RunFolder::new(&piped), &Selection::default(), Some(&out)).unwrap();
    assert_eq!(written.markdown, out.join("report.md"));
    assert!(out.join("plots/confusion.png").is_file());
    assert!(!piped.join("report.md").exists() && !piped.join("plots").exists());
    let expected = std::fs::read_to_string(&written.markdown).unwrap();
    let numbers = |text: &str, model: &str| -> Vec<String> {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| {model} |")))
            .unwrap_or_else(|| panic!("no row for {model}"))
            .to_string();
        row.split('|').skip(3).map(str::to_string).collect()
    };
    for model in ["teacher", "baseline", "distill", "distill-augment"] {
        assert_eq!(numbers(&md, model), numbers(&expected, model), "{model}");
    }
}
