//! GFLOP/s of `distill_ops::gemm` on the two-layer student's shapes, on one thread and on
//! two threads at once (each its own product), to tell how far a stage is from this CPU's
//! peak. usage: cargo run --release -p distill-ops --example gemm_rate
use std::time::Instant;

use distill_ops::gemm::{gemm, gemm_panels, gemm_tn, Panels};

fn rate(name: &str, flop: f64, threads: usize, f: impl Fn() + Sync) {
    // Best of five trials: this VM's neighbours make single timings noisy.
    let reps = (4e9 / flop).ceil() as usize;
    f();
    let mut best = 0.0f64;
    for _ in 0..5 {
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for _ in 0..reps {
                        f();
                    }
                });
            }
        });
        best = best.max(threads as f64 * reps as f64 * flop / t.elapsed().as_secs_f64() / 1e9);
    }
    println!("{name:<44} {threads} thread(s): {best:6.1} GFLOP/s");
}

#[derive(Clone, Copy, Debug)]
enum Product {
    /// `A·B`.
    Gemm,
    /// `Aᵀ·B`, `A` stored `k × n` (the weight gradients).
    GemmTn,
    /// `A·B` with `B` packed once (the recurrence).
    Packed,
}

fn main() {
    use Product::*;
    let v = |n: usize| (0..n).map(|i| (i % 7) as f32 * 0.1).collect::<Vec<f32>>();
    // (n, k, m): a layer's input projection over a batch's 420 tokens; its weight gradient
    // dzᵀ·x; one step of the recurrence (32 rows) forward and backward.
    let products = [
        (Gemm, 420, 128, 256),
        (Gemm, 420, 256, 128),
        (Gemm, 512, 512, 512),
        (GemmTn, 256, 420, 128),
        (Packed, 32, 64, 256),
        (Packed, 32, 256, 64),
    ];
    for threads in [1, 2] {
        for (kind, n, k, m) in products {
            let (a, b) = (v(n * k), v(k * m));
            let mut panels = Panels::default();
            panels.pack(k, m, &b, m);
            let flop = 2.0 * (n * k * m) as f64;
            rate(&format!("{kind:?} {n}x{k}·{k}x{m}"), flop, threads, || {
                let mut c = vec![0.0; n * m];
                match kind {
                    Gemm => gemm(n, k, m, &a, k, &b, m, &mut c, m, false),
                    GemmTn => gemm_tn(n, k, m, &a, n, &b, m, &mut c, m, false),
                    Packed => gemm_panels(n, &a, k, &panels, &mut c, m, false),
                }
            });
        }
    }
}
