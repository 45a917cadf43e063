//! The one place a `--device` string becomes a candle device.

use anyhow::{bail, Context, Result};
use candle_core::Device;

/// Parses `cpu`, `cuda`, `cuda:N` or `metal`. A GPU device needs the binary built with the
/// matching cargo feature (`--features cuda` / `metal`); the error says which of the two is
/// missing: the feature, or a driver and GPU at run time.
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
        "cuda" if !candle_core::utils::cuda_is_available() => bail!(
            "`{spec}`: this `distill` is built without CUDA (build one with `cargo xtask cuda-build`)"
        ),
        "cuda" => Device::new_cuda(index).with_context(|| {
            format!("`{spec}`: no usable CUDA driver or GPU (this binary is built with CUDA)")
        }),
        "metal" if !candle_core::utils::metal_is_available() => bail!(
            "`{spec}`: this `distill` is built without Metal (`--features metal`)"
        ),
        "metal" => Device::new_metal(index)
            .with_context(|| format!("`{spec}`: no usable Metal device")),
        other => bail!("unknown device `{other}` (expected cpu, cuda[:N] or metal)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_gpu_is_named_for_what_it_is() {
        match parse("cuda") {
            // A CUDA build on a GPU machine opens it.
            Ok(device) => assert!(device.is_cuda()),
            Err(e) => {
                let err = format!("{e:#}");
                let expected = if candle_core::utils::cuda_is_available() {
                    "no usable CUDA driver or GPU"
                } else {
                    "built without CUDA"
                };
                assert!(err.contains(expected), "{err}");
            }
        }
        assert!(parse("tpu").is_err());
        assert!(parse("cuda:x").is_err());
        assert!(matches!(parse("cpu"), Ok(Device::Cpu)));
    }
}
