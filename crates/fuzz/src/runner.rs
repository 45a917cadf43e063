//! The time-bounded runner: replay a target's corpus, then mutate it until the time is up,
//! each input on a worker thread under a watchdog, with its peak allocation checked against
//! the target's budget. The first failure stops the run; its input is saved to a file that
//! the error names (copy it into `corpus/<target>/` to keep it as a regression input).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::alloc;
use crate::mutate::Mutator;
use crate::targets;

/// One input taking longer than this is a hang.
pub const HANG: Duration = Duration::from_secs(2);
/// The first call builds the target's fixtures (a model, a tokenizer), so it may take longer.
const WARM_UP: Duration = Duration::from_secs(60);
/// Past its budget by this much, an input aborts the process (after being saved).
const HARD_EXTRA: usize = 1 << 30;
/// Accepted mutants kept as bases for further mutation.
const POOL: usize = 256;

/// A fuzz target and its allocation budget: `per_byte · input length + allowance` bytes.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]) -> bool,
    /// Bytes a reader may allocate per input byte.
    pub per_byte: usize,
    /// Bytes a reader may allocate whatever the input (the model it loads, buffers).
    pub allowance: usize,
    /// Tokens of the format, for the mutator.
    pub dict: &'static [&'static [u8]],
    /// Longest mutant.
    pub max_len: usize,
}

impl Target {
    /// The allocation budget for an input of `len` bytes.
    pub fn budget(&self, len: usize) -> usize {
        self.per_byte
            .saturating_mul(len)
            .saturating_add(self.allowance)
    }
}

const MIB: usize = 1 << 20;

/// Every target, in the order CI runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "dataset_tsv",
        run: targets::dataset_tsv,
        per_byte: 128,
        allowance: MIB,
        dict: &[
            b"sentence",
            b"label",
            b"index",
            b"\tlabel\n",
            b"\t1\n",
            b"\t0\n",
        ],
        max_len: 64 << 10,
    },
    Target {
        name: "dataset_csv",
        run: targets::dataset_csv,
        per_byte: 128,
        allowance: MIB,
        dict: &[
            b"sentence",
            b"label",
            b",label\n",
            b",1\n",
            b"\"\"",
            b"\"a,\nb\"",
        ],
        max_len: 64 << 10,
    },
    Target {
        name: "dataset_jsonl",
        run: targets::dataset_jsonl,
        per_byte: 128,
        allowance: MIB,
        dict: &[
            b"{\"text\": ",
            b"\"label\": ",
            b"\"sentence1\": ",
            b"\"sentence2\": ",
            b"null",
            b"}\n",
            b"\"\\u0000\"",
        ],
        max_len: 64 << 10,
    },
    Target {
        name: "vocab_json",
        run: targets::vocab_json,
        per_byte: 128,
        allowance: MIB,
        dict: &[
            b"\"<unk>\"",
            b"\"<pad>\"",
            b"\"itos\"",
            b"\"specials\"",
            b"\"format\"",
            b"\"candle-distill-vocab/1\"",
            b", \"w\"",
        ],
        max_len: 64 << 10,
    },
    Target {
        name: "student_config",
        run: targets::student_config,
        per_byte: 128,
        allowance: 8 * MIB,
        dict: &[
            b"\"vocab_size\"",
            b"\"embedding_dim\"",
            b"\"hidden_size\"",
            b"\"num_layers\"",
            b"\"dropout\"",
            b"\"num_outputs\"",
            b"\"tokenizer\"",
            b"\"wordpiece\"",
            b"\"words\"",
            b"\"normalize\"",
            b"\"max_len\"",
            b"\"preset\"",
        ],
        max_len: 16 << 10,
    },
    Target {
        name: "teacher_config",
        run: targets::teacher_config,
        per_byte: 128,
        allowance: 128 * MIB,
        dict: &[
            b"\"vocab_size\"",
            b"\"hidden_size\"",
            b"\"num_hidden_layers\"",
            b"\"num_attention_heads\"",
            b"\"intermediate_size\"",
            b"\"max_position_embeddings\"",
            b"\"type_vocab_size\"",
            b"\"num_labels\"",
            b"\"id2label\": {\"0\": \"a\"}",
            b"\"architectures\"",
            b"\"BertModel\"",
            b"\"hidden_act\"",
            b"\"relu\"",
            b"\"gelu_new\"",
            b"\"layer_norm_eps\"",
            b"\"classifier_dropout\"",
            b"\"model_type\"",
            b"\"pad_token_id\"",
        ],
        max_len: 16 << 10,
    },
    Target {
        name: "logits_cache",
        run: targets::logits_cache,
        per_byte: 64,
        allowance: MIB,
        dict: &[
            b"\"logits\"",
            b"\"F32\"",
            b"\"F16\"",
            b"\"shape\"",
            b"\"data_offsets\"",
            b"\"__metadata__\"",
            b"\"count\"",
            b"\"format\"",
            b"\"candle-distill-logits/1\"",
        ],
        max_len: 64 << 10,
    },
    Target {
        name: "predict_stdin",
        run: targets::predict_stdin,
        per_byte: 512,
        allowance: 4 * MIB,
        dict: &[
            b"12345678901234567890123456789012345",
            b"1234567890123456789012345678901234567",
            b"[MASK]",
            b"<unk>",
            b" 's ",
            b"\xe2\x80\x94",
            b"\xf0\x9f\x98\x80",
            b"\xcc\x81",
        ],
        max_len: 64 << 10,
    },
];

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: &'static str,
    /// Corpus inputs replayed.
    pub corpus: usize,
    /// Inputs run, corpus included.
    pub executions: u64,
    /// Inputs the reader accepted.
    pub accepted: u64,
    pub seconds: f64,
    /// The largest share of its budget an input used, and that input's length.
    pub worst_budget_share: f64,
    pub worst_len: usize,
    pub seed: u64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fuzz {}: {} executions in {:.1} s ({} corpus inputs, {} accepted), \
             peak allocation at most {:.0}% of budget (a {}-byte input), seed {}",
            self.target,
            self.executions,
            self.seconds,
            self.corpus,
            self.accepted,
            100.0 * self.worst_budget_share,
            self.worst_len,
            self.seed
        )
    }
}

type Outcome = Result<(bool, usize), String>;

/// Runs `target` on the corpus in `corpus_dir`, then on mutants for `seconds`. On a panic, a
/// hang or an over-allocation the input is saved under `failures_dir/<target>/` and the error
/// names the file.
pub fn fuzz(
    target: &'static Target,
    corpus_dir: &Path,
    failures_dir: &Path,
    seconds: f64,
    seed: u64,
) -> Result<Report, String> {
    assert!(
        alloc::installed(),
        "install distill_fuzz::alloc::CountingAlloc as the global allocator"
    );
    let corpus = read_corpus(corpus_dir)?;
    let fail_dir = failures_dir.join(target.name);
    let (to_worker, inputs) = mpsc::channel::<(Vec<u8>, PathBuf)>();
    let (outcomes, from_worker) = mpsc::channel::<Outcome>();
    std::thread::Builder::new()
        .name(format!("fuzz-{}", target.name))
        .spawn(move || {
            for (input, save_to) in inputs {
                let base = alloc::live();
                alloc::arm(
                    base.saturating_add(target.budget(input.len()))
                        .saturating_add(HARD_EXTRA),
                    &input,
                    save_to,
                );
                let base = alloc::start_measure();
                let result = catch_unwind(AssertUnwindSafe(|| (target.run)(&input)));
                let peak = alloc::peak_since(base);
                alloc::disarm();
                let outcome = result.map(|ok| (ok, peak)).map_err(panic_message);
                if outcomes.send(outcome).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| format!("cannot start the worker thread: {e}"))?;

    let mut report = Report {
        target: target.name,
        corpus: corpus.len(),
        executions: 0,
        accepted: 0,
        seconds: 0.0,
        worst_budget_share: 0.0,
        worst_len: 0,
        seed,
    };
    let start = Instant::now();
    let mut run = |input: Vec<u8>, limit: Duration, check_alloc: bool| -> Result<bool, String> {
        let save_to = fail_dir.join(format!("crash-{:016x}", fnv(&input)));
        to_worker
            .send((input.clone(), save_to.clone()))
            .map_err(|_| "the worker thread is gone".to_string())?;
        let fail = |kind: &str, detail: String| {
            let path = fail_dir.join(format!("{kind}-{:016x}", fnv(&input)));
            let saved =
                std::fs::create_dir_all(&fail_dir).and_then(|_| std::fs::write(&path, &input));
            format!(
                "fuzz {}: {kind} on a {}-byte input, saved at {} ({}): {detail}",
                target.name,
                input.len(),
                path.display(),
                saved.map_or_else(|e| format!("could not save: {e}"), |_| "saved".into())
            )
        };
        let (accepted, peak) = match from_worker.recv_timeout(limit) {
            Ok(Ok(r)) => r,
            Ok(Err(message)) => return Err(fail("panic", message)),
            Err(_) => return Err(fail("hang", format!("no answer within {limit:?}"))),
        };
        report.executions += 1;
        report.accepted += u64::from(accepted);
        if check_alloc {
            let budget = target.budget(input.len());
            let share = peak as f64 / budget as f64;
            if share > report.worst_budget_share {
                report.worst_budget_share = share;
                report.worst_len = input.len();
            }
            if peak > budget {
                return Err(fail(
                    "alloc",
                    format!(
                        "peak allocation {peak} bytes, budget {budget} ({} per byte + {})",
                        target.per_byte, target.allowance
                    ),
                ));
            }
        }
        Ok(accepted)
    };

    // The first call builds the fixtures; it counts, but its allocation does not.
    run(corpus[0].clone(), WARM_UP, false)?;
    for input in &corpus {
        run(input.clone(), HANG, true)?;
    }
    let mut mutator = Mutator::new(seed, target.dict, target.max_len);
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds.max(0.0));
    while Instant::now() < deadline {
        let base = match mutator.below(3) {
            0 if !pool.is_empty() => &pool[mutator.below(pool.len())],
            _ => &corpus[mutator.below(corpus.len())],
        };
        let mutant = mutator.mutate(base, &corpus);
        if run(mutant.clone(), HANG, true)? {
            if pool.len() < POOL {
                pool.push(mutant);
            } else {
                let i = mutator.below(POOL);
                pool[i] = mutant;
            }
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// The files of `dir` in name order (an empty input when there are none).
fn read_corpus(dir: &Path) -> Result<Vec<Vec<u8>>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read the corpus folder {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let mut corpus = paths
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display())))
        .collect::<Result<Vec<_>, _>>()?;
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    Ok(corpus)
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// FNV-1a, to name saved inputs.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
