use candle_core::{Device, Tensor, DType};
use std::time::Instant;
fn main() -> candle_core::Result<()> {
    let d = Device::Cpu;
    let a = Tensor::randn(0f32, 1., (832, 384), &d)?;
    let w = Tensor::randn(0f32, 1., (1536, 384), &d)?;
    let wt = w.t()?.contiguous()?;
    for (name, rhs) in [("w.t() view", w.t()?), ("contiguous", wt.clone())] {
        for _ in 0..3 { a.matmul(&rhs)?; }
        let n = 30; let t = Instant::now();
        for _ in 0..n { a.matmul(&rhs)?; }
        let dt = t.elapsed().as_secs_f64() / n as f64;
        println!("{name}: {:.2} ms, {:.1} GFLOPS", dt * 1e3, 2.0 * 832.0 * 384.0 * 1536.0 / dt / 1e9);
    }
    let q = Tensor::randn(0f32, 1., (64, 12, 13, 32), &d)?;
    let k = Tensor::randn(0f32, 1., (64, 12, 13, 32), &d)?;
    let t = Instant::now(); let n = 30;
    for _ in 0..n { q.matmul(&k.t()?)?; }
    println!("attn scores batched: {:.2} ms", t.elapsed().as_secs_f64() / n as f64 * 1e3);
    let x = Tensor::randn(0f32, 1., (832, 1536), &d)?;
    let t = Instant::now();
    for _ in 0..n { x.gelu_erf()?; }
    println!("gelu_erf 832x1536: {:.2} ms", t.elapsed().as_secs_f64() / n as f64 * 1e3);
    let t = Instant::now();
    for _ in 0..n { (&x + &x)?; }
    println!("add 832x1536: {:.2} ms", t.elapsed().as_secs_f64() / n as f64 * 1e3);
    let _ = DType::F32;
    Ok(())
}
