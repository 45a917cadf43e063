//! The one place a `--device` string becomes a candle device.

use anyhow::{bail, Context, Result};
use candle_core::Device;

/// Parses `cpu`, `cuda`, `cuda:N` or `metal`. A GPU device needs the binary built with the
/// matching cargo feature (`--features cuda` / `metal`).
pub fn parse(spec: &str) -> Result<Device> {
    let (kind, index) = match spec.split_once(':') {
        Some((k, i)) => (
            k,
            i.parse::<usize>()
                .with_context(|| format!("bad device index in `{spec}`"))?,
        ),
        None => (spec, 0),
    };
    match kind {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Device::new_cuda(index).with_context(|| {
            format!("cannot open `{spec}` (is this binary built with `--features cuda`?)")
        }),
        "metal" => Device::new_metal(index).with_context(|| {
            format!("cannot open `{spec}` (is this binary built with `--features metal`?)")
        }),
        other => bail!("unknown device `{other}` (expected cpu, cuda[:N] or metal)"),
    }
}
