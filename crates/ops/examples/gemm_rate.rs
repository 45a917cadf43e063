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

fn main() {
    let v = |n: usize| (0..n).map(|i| (i % 7) as f32 * 0.1).collect::<Vec<f32>>();
    for threads in [1, 2] {
        // (n, k, m): projection of a layer above the first, 420 tokens, 128 in, 256 gates.
        for (n, k, m) in [(420, 128, 256), (512, 512, 512), (420, 256, 128)] {
            let (a, b) = (v(n * k), v(k * m));
            rate(
                &format!("gemm {n}x{k}·{k}x{m}"),
                2.0 * (n * k * m) as f64,
                threads,
                || {
                    let mut c = vec![0.0; n * m];
                    gemm(n, k, m, &a, k, &b, m, &mut c, m, false);
                },
            );
        }
        // dW = dzᵀ·x: (256 × 420)·(420 × 128).
        let (n, k, m) = (256, 420, 128);
        let (a, b) = (v(k * n), v(k * m));
        rate(
            &format!("gemm_tn {n}x{k}·{k}x{m}"),
            2.0 * (n * k * m) as f64,
            threads,
            || {
                let mut c = vec![0.0; n * m];
                gemm_tn(n, k, m, &a, n, &b, m, &mut c, m, false);
            },
        );
        // One step of the recurrence: (32 × 64)·(64 × 256), and its backward (32×256)·(256×64).
        for (n, k, m) in [(32, 64, 256), (32, 256, 64)] {
            let mut p = Panels::default();
            p.pack(k, m, &v(k * m), m);
            let a = v(n * k);
            rate(
                &format!("gemm_panels {n}x{k}·{k}x{m}"),
                2.0 * (n * k * m) as f64,
                threads,
                || {
                    let mut c = vec![0.0; n * m];
                    gemm_panels(n, &a, k, &p, &mut c, m, true);
                },
            );
        }
    }
}
