//! Benchmarks of the teacher on this machine (not a test): fine-tuning step time and
//! labelling throughput.
//!
//! ```text
//! cargo run --release -p distill-teacher --example bench -- \
//!     [--teacher ID_OR_DIR] [--data assets/sst2/train.tsv] [--steps 30] [--label 3000] [--batch 32] \
//!     [--parts 2]
//! ```
//!
//! Step time is measured over `--steps` steps of the fine-tuning loop
//! ([`distill_teacher::step::train_step_parts`] on seeded length-bucketed batches of the
//! data, each cut into `--parts` parts as fine-tuning cuts it, the first 3 steps excluded
//! as warm-up; `--parts 1` runs the whole batch at once); throughput over the first `--label`
//! sentences of the data, tokenisation included.

use std::time::Instant;

use candle_core::Device;
use distill_data::{Dataset, LabelSet};
use distill_teacher::optim::{AdamW, AdamWConfig};
use distill_teacher::step::{split_rows, train_step_parts, StepPart, CPU_PARTS};
use distill_teacher::{predict_logits, HeadInit, InferOptions, LoadOptions, Teacher};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// CPU seconds (user + system) this process has used so far, from /proc (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // As the `distill` binary runs: candle's element-wise pool off, so that the parts of a
    // batch, one per core, do not queue on its lock (see `distill-cli`'s `main`).
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    let teacher_id = arg("--teacher", "sentence-transformers/all-MiniLM-L6-v2");
    let data_path = arg(
        "--data",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/sst2/train.tsv"),
    );
    let steps: usize = arg("--steps", "30").parse()?;
    let label_n: usize = arg("--label", "3000").parse()?;
    let batch: usize = arg("--batch", "32").parse()?;
    let parts: usize = arg("--parts", &CPU_PARTS.to_string()).parse()?;
    let phases = std::env::args().any(|a| a == "--phases");

    let data = Dataset::read(data_path.as_ref(), &LabelSet::binary())?;
    let labels = data.labels().ok_or("the data must be labelled")?;
    let opts = LoadOptions {
        labels: Some(vec!["0".into(), "1".into()]),
        // Times fine-tuning steps and labelling; a base model's head is started fresh.
        head: HeadInit::Random,
        ..Default::default()
    };
    let teacher = Teacher::load(&teacher_id, &opts, &Device::Cpu)?;
    println!(
        "teacher {teacher_id}: {} parameters",
        teacher.model.params().count()
    );

    if label_n > 0 {
        let texts: Vec<&str> = data.texts().into_iter().take(label_n).collect();
        let (start, cpu) = (Instant::now(), cpu_seconds());
        let infer = InferOptions {
            batch_size: 64,
            progress: false,
        };
        let logits = predict_logits(&teacher, &texts, &infer)?;
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu;
        println!(
            "labelling: {} sentences in {secs:.2} s = {:.0} sentences/s ({} logits; {cpu:.1} CPU-s, {:.0} sentences per CPU-s)",
            texts.len(),
            texts.len() as f64 / secs,
            logits.len(),
            texts.len() as f64 / cpu.max(1e-9)
        );
    }

    if steps > 0 {
        let start = Instant::now();
        let encoded = teacher.tokenizer.encode_data(&data)?;
        println!(
            "tokenised {} rows in {:.2} s",
            encoded.len(),
            start.elapsed().as_secs_f64()
        );
        let lengths: Vec<usize> = encoded.ids.iter().map(Vec::len).collect();
        let mut opt = AdamW::new(teacher.model.params().iter(), AdamWConfig::default())?;
        teacher.model.seed_dropout(42);
        let batches = distill_data::Batcher::new(batch)
            .max_len(usize::MAX)
            .shuffle(true)
            .seed(42)
            .index_batches(&lengths, 0);
        let mut times = Vec::new();
        let mut tokens = 0usize;
        let mut cpu_total = 0f64;
        for (step, b) in batches.iter().take(steps + 3).enumerate() {
            let ys: Vec<u32> = b.iter().map(|&i| labels[i]).collect();
            let (t0, c0) = (Instant::now(), cpu_seconds());
            let loss = if phases {
                let inputs = encoded.batch(b, teacher.tokenizer.pad_id(), teacher.device())?;
                phase_step(&teacher, &mut opt, &inputs, &ys)?
            } else {
                let split = split_rows(b, parts)
                    .into_iter()
                    .map(|rows| {
                        Ok(StepPart {
                            inputs: encoded.batch(
                                &rows,
                                teacher.tokenizer.pad_id(),
                                teacher.device(),
                            )?,
                            labels: rows.iter().map(|&i| labels[i]).collect(),
                        })
                    })
                    .collect::<distill_teacher::Result<Vec<_>>>()?;
                train_step_parts(&teacher, &mut opt, &split, 3e-5, 1.0)?
            };
            let dt = t0.elapsed().as_secs_f64();
            let t = b.iter().map(|&i| lengths[i]).max().unwrap_or(0);
            if step >= 3 {
                cpu_total += cpu_seconds() - c0;
                times.push(dt);
                tokens += t * b.len();
            }
            println!("step {step:3}: T = {t:3}, loss {loss:.4}, {dt:.3} s");
        }
        let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
        println!(
            "fine-tuning: {} steps of batch {batch} in {parts} part(s): mean {mean:.3} s/step, median {median:.3} s/step, {:.0} padded tokens/step, {:.3} CPU-s/step",
            times.len(),
            tokens as f64 / times.len().max(1) as f64,
            cpu_total / times.len().max(1) as f64
        );
    }
    Ok(())
}

/// A one-part step with each phase timed (forward, backward, gradient norm, update).
fn phase_step(
    teacher: &Teacher,
    opt: &mut AdamW,
    batch: &distill_teacher::Batch,
    ys: &[u32],
) -> Result<f64, Box<dyn std::error::Error>> {
    use distill_teacher::Mode;
    let dev = teacher.device();
    let t = Instant::now();
    let ys = candle_core::Tensor::new(ys, dev)?;
    let (logits, words) = teacher.model.forward_sparse(
        &batch.ids,
        batch.type_ids.as_ref(),
        &batch.mask,
        Mode::Train,
    )?;
    let loss = candle_nn::loss::cross_entropy(&logits, &ys)?;
    let f = t.elapsed().as_secs_f64();
    let grads = loss.backward()?;
    let b = t.elapsed().as_secs_f64();
    let words = words.ok_or("no word rows")?;
    let values = grads
        .get(words.leaf.as_tensor())
        .ok_or("no word gradient")?;
    let table = teacher
        .model
        .params()
        .var(distill_teacher::model::WORD_EMBEDDINGS)?;
    let sparse = distill_teacher::optim::SparseGrad {
        var: table,
        rows: &words.rows,
        values,
    };
    let norm = opt.grad_norm(&grads, Some(&sparse))?;
    let n = t.elapsed().as_secs_f64();
    opt.step(
        &grads,
        3e-5,
        distill_teacher::optim::clip_factor(norm, 1.0),
        Some(&sparse),
    )?;
    let u = t.elapsed().as_secs_f64();
    println!(
        "    forward {f:.3}  backward {:.3}  norm {:.3}  update {:.3}",
        b - f,
        n - b,
        u - n
    );
    Ok(loss.to_scalar::<f32>()? as f64)
}
