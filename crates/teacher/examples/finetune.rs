//! Fine-tune a teacher from the command line, for machines where the `distill` binary is
//! not at hand (the same library call as `distill teacher finetune`).
//!
//! ```text
//! cargo run --release -p distill-teacher --example finetune -- \
//!     --teacher sentence-transformers/all-MiniLM-L6-v2 \
//!     --train assets/sst2/train.tsv --dev assets/sst2/dev.tsv --out runs/teacher \
//!     [--labels 0,1] [--epochs 1] [--lr 3e-5] [--batch-size 32] [--seed 42] [--max-steps N]
//!     [--eval-every N]
//! ```
//!
//! `--labels` names the classes in id order (SST-2's `0,1` by default); data read as
//! sentence pairs train on pairs.

use std::path::PathBuf;

use candle_core::Device;
use distill_data::{Dataset, LabelSet};
use distill_teacher::{finetune, FinetuneConfig};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // candle's element-wise thread pool spins while it waits; on a busy machine one
    // thread for it (matmuls still use every core) is much faster.
    for (var, default) in [("CANDLE_NUM_THREADS", "1".to_string())] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, default);
        }
    }
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let need = |name: &str| arg(name).ok_or_else(|| format!("{name} is required"));
    let labels = arg("--labels").map_or_else(LabelSet::binary, |v| {
        LabelSet::new(v.split(',').map(str::to_string).collect())
    });
    let train = Dataset::read(need("--train")?.as_ref(), &labels)?;
    let dev = Dataset::read(need("--dev")?.as_ref(), &labels)?;
    let defaults = FinetuneConfig::default();
    let cfg = FinetuneConfig {
        teacher: need("--teacher")?,
        out: PathBuf::from(need("--out")?),
        labels,
        epochs: arg("--epochs").map_or(Ok(defaults.epochs), |v| v.parse())?,
        lr: arg("--lr").map_or(Ok(defaults.lr), |v| v.parse())?,
        batch_size: arg("--batch-size").map_or(Ok(defaults.batch_size), |v| v.parse())?,
        seed: arg("--seed").map_or(Ok(defaults.seed), |v| v.parse())?,
        max_steps: arg("--max-steps").map(|v| v.parse()).transpose()?,
        eval_every: arg("--eval-every").map(|v| v.parse()).transpose()?,
        ..defaults
    };
    let report = finetune(&cfg, &train, &dev, &Device::Cpu)?;
    let b = &report.best;
    println!(
        "fine-tuned {}: {} steps, {:.3} s/step; best dev (step {}): acc {:.4}, AP {:.4}, F1 {:.4}, loss {:.4}; saved to {}",
        cfg.teacher,
        report.steps,
        report.mean_step_seconds,
        b.step.unwrap_or_default(),
        b.val_acc,
        b.val_ap,
        b.val_f1,
        b.val_loss,
        cfg.out.display()
    );
    Ok(())
}
