//! The one place the pipeline's `--device` is decided: which cargo feature the `distill`
//! binary is built with, and which `--device` its computing stages get. Evaluation and
//! timing always run on the CPU, so the report's speed figures compare like with like.

use std::fmt;

use anyhow::{bail, Context, Result};

/// `cpu`, `cuda[:N]` or `metal[:N]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceChoice {
    kind: Kind,
    index: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Cpu,
    Cuda,
    Metal,
}

impl DeviceChoice {
    pub fn parse(spec: &str) -> Result<Self> {
        let (kind, index) = match spec.split_once(':') {
            Some((k, i)) => (
                k,
                Some(
                    i.parse()
                        .with_context(|| format!("bad device index in `{spec}`"))?,
                ),
            ),
            None => (spec, None),
        };
        let kind = match kind {
            "cpu" => Kind::Cpu,
            "cuda" => Kind::Cuda,
            "metal" => Kind::Metal,
            other => bail!("unknown device `{other}` (expected cpu, cuda[:N] or metal)"),
        };
        if kind == Kind::Cpu && index.is_some() {
            bail!("`cpu` takes no index");
        }
        Ok(Self { kind, index })
    }

    pub fn is_cpu(&self) -> bool {
        self.kind == Kind::Cpu
    }

    /// The cargo feature of `distill-cli` this device needs.
    pub fn cargo_feature(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Cpu => None,
            Kind::Cuda => Some("cuda"),
            Kind::Metal => Some("metal"),
        }
    }

    /// The `--device` value passed to the CLI's computing stages.
    pub fn arg(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Cpu => "cpu",
            Kind::Cuda => "cuda",
            Kind::Metal => "metal",
        };
        match self.index {
            Some(i) => write!(f, "{kind}:{i}"),
            None => f.write_str(kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_maps_to_features() {
        let cpu = DeviceChoice::parse("cpu").unwrap();
        assert_eq!((cpu.cargo_feature(), cpu.arg().as_str()), (None, "cpu"));
        let cuda = DeviceChoice::parse("cuda:1").unwrap();
        assert_eq!(
            (cuda.cargo_feature(), cuda.arg().as_str()),
            (Some("cuda"), "cuda:1")
        );
        assert!(DeviceChoice::parse("tpu").is_err());
        assert!(DeviceChoice::parse("cpu:0").is_err());
    }
}
