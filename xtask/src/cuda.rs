//! `cargo xtask cuda-toolchain` and `cargo xtask cuda-build`: the CUDA `distill` binary,
//! built on a machine without a GPU or a system CUDA, from registry packages alone.
//!
//! PyPI's CUDA 13 wheels, installed with `pip install --no-deps --target DIR`, leave
//! `DIR/nvidia/cu13` laid out as a CUDA root (`bin/nvcc`, `include/`, `lib/`, `nvvm/`).
//! Two things are missing for linking, and this module makes them:
//! - `libcuda.so`, the driver, which no wheel ships: a stub exporting every driver symbol
//!   cudarc binds ([`DRIVER_SYMBOLS`], from cudarc 0.19.10's bindings), each returning
//!   `CUDA_ERROR_UNKNOWN`. Its soname is `libcuda.so.1`, so at run time the binary loads the
//!   real driver and never the stub;
//! - unversioned `.so` links (`libcublas.so` → `libcublas.so.13`, …) for the linker.
//!
//! CUDA is pinned to 13.0: cudarc reads the version from `nvcc --version`, and 13.0 runs on
//! the oldest CUDA 13 driver (R580).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

/// The pinned wheels (one CUDA 13.0 family).
const WHEELS: [&str; 8] = [
    "nvidia-cuda-nvcc==13.0.88",
    "nvidia-nvvm==13.0.88",
    "nvidia-cuda-crt==13.0.88",
    "nvidia-cuda-runtime==13.0.96",
    "nvidia-cuda-cccl==13.0.85",
    "nvidia-cublas==13.0.2.14",
    "nvidia-curand==10.4.0.35",
    "nvidia-cuda-nvrtc==13.0.88",
];

/// Driver API symbols cudarc 0.19.10 declares (`src/driver/sys/mod.rs`); regenerate with
/// `grep -oP '^\s+fn \Kcu[A-Za-z0-9_]+(?=\()' …/cudarc-*/src/driver/sys/mod.rs | sort -u`
/// when cudarc changes in `Cargo.lock`.
const DRIVER_SYMBOLS: &str = include_str!("../cuda/driver-symbols.txt");

/// Libraries the linker looks for by their unversioned name, with the versioned file
/// the wheels ship.
const UNVERSIONED: [(&str, &str); 5] = [
    ("libcublas.so", "libcublas.so.13"),
    ("libcublasLt.so", "libcublasLt.so.13"),
    ("libcudart.so", "libcudart.so.13"),
    ("libcurand.so", "libcurand.so.10"),
    ("libnvrtc.so", "libnvrtc.so.13"),
];

/// Options of `cargo xtask cuda-toolchain`.
#[derive(Debug, clap::Args)]
pub struct ToolchainArgs {
    /// Where the wheels go (created when missing; git-ignored).
    #[arg(long, default_value = ".cuda")]
    pub dir: PathBuf,
    /// The GPU architecture to compile kernels for (`90` = H100/H200, built as `sm_90a`).
    #[arg(long, default_value = "90")]
    pub compute_cap: String,
}

/// Options of `cargo xtask cuda-build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub toolchain: ToolchainArgs,
    /// Cargo's target folder for the CUDA build (keep it outside the clone to reuse it).
    #[arg(long, default_value = "target/cuda")]
    pub target_dir: PathBuf,
    /// Also build the CUDA test binaries the GPU acceptance run executes.
    #[arg(long)]
    pub tests: bool,
    /// Write a stripped, zstd-compressed bundle (binaries + fixtures) for a GPU machine here.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
}

/// A CUDA root ready for cargo: where it is and the environment a build needs.
pub struct Toolchain {
    root: PathBuf,
    compute_cap: String,
}

impl Toolchain {
    /// The environment for `cargo build --features cuda`.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let bin = self.root.join("bin");
        let path = std::env::var("PATH").unwrap_or_default();
        vec![
            ("CUDA_HOME", self.root.display().to_string()),
            ("CUDA_PATH", self.root.display().to_string()),
            ("NVCC", bin.join("nvcc").display().to_string()),
            ("NVCC_CCBIN", "cc".into()),
            ("CUDA_COMPUTE_CAP", self.compute_cap.clone()),
            (
                "CUDAFORGE_THREADS",
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
                    .to_string(),
            ),
            ("PATH", format!("{}:{path}", bin.display())),
        ]
    }
}

pub fn toolchain(args: &ToolchainArgs) -> Result<()> {
    let tc = prepare(args)?;
    for (key, value) in tc.env() {
        println!("export {key}='{value}'");
    }
    Ok(())
}

/// Installs the wheels when missing, then makes the stub driver and the links.
pub fn prepare(args: &ToolchainArgs) -> Result<Toolchain> {
    // The real path: the CUDA paths are part of cargo's fingerprints (cudarc's and
    // candle-kernels' build scripts rerun when they change), so a link to the same wheels
    // must not look like another toolchain.
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let dir = std::fs::canonicalize(&args.dir)?;
    let root = dir.join("nvidia/cu13");
    if root.join("bin/nvcc").exists() {
        eprintln!("CUDA 13.0 wheels already in {}", dir.display());
    } else {
        eprintln!(
            "installing the CUDA 13.0 wheels into {} (about 1.2 GB) …",
            dir.display()
        );
        let status = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--no-deps", "--no-compile", "--upgrade", "--target"])
            .arg(&dir)
            .args(WHEELS)
            .status()
            .context("running python3 -m pip (is Python 3 with pip installed?)")?;
        ensure!(status.success(), "pip install of the CUDA wheels failed");
        ensure!(
            root.join("bin/nvcc").exists(),
            "the wheels left no nvcc at {}",
            root.join("bin/nvcc").display()
        );
    }
    let lib = root.join("lib");
    for (link, target) in UNVERSIONED {
        ensure!(
            lib.join(target).exists(),
            "{} is missing",
            lib.join(target).display()
        );
        let link = lib.join(link);
        if !link.exists() {
            std::os::unix::fs::symlink(target, &link)
                .with_context(|| format!("linking {}", link.display()))?;
        }
    }
    make_driver_stub(&lib)?;
    Ok(Toolchain {
        root,
        compute_cap: args.compute_cap.clone(),
    })
}

/// Compiles `lib/libcuda.so`: every driver symbol returns `CUDA_ERROR_UNKNOWN` (999).
fn make_driver_stub(lib: &Path) -> Result<()> {
    let out = lib.join("libcuda.so");
    if out.exists() {
        return Ok(());
    }
    let mut c =
        String::from("/* Link-time stand-in for the CUDA driver; never loaded at run time. */\n");
    for name in DRIVER_SYMBOLS.lines().filter(|l| !l.trim().is_empty()) {
        c.push_str(&format!("int {name}(void) {{ return 999; }}\n"));
    }
    let src = lib.join("libcuda_stub.c");
    std::fs::write(&src, c).with_context(|| format!("writing {}", src.display()))?;
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-Wl,-soname,libcuda.so.1", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .context("running the system C compiler (cc)")?;
    if !status.success() {
        bail!("compiling the driver stub {} failed", src.display());
    }
    Ok(())
}

/// `cargo build --release -p distill-cli --features cuda` with the toolchain's environment.
pub fn build(args: &BuildArgs) -> Result<()> {
    let tc = prepare(&args.toolchain)?;
    let started = std::time::Instant::now();
    let cargo = |extra: &[&str]| -> Result<Vec<PathBuf>> {
        let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--features", "cuda"])
            .args([
                "--message-format",
                "json-render-diagnostics",
                "--target-dir",
            ])
            .arg(&args.target_dir)
            .args(extra)
            .envs(tc.env())
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running cargo")?;
        ensure!(output.status.success(), "the CUDA build failed");
        Ok(executables(&output.stdout))
    };
    let mut binaries = cargo(&["-p", "distill-cli"])?;
    if args.tests || args.bundle.is_some() {
        binaries.extend(cargo(&[
            "-p",
            "distill-teacher",
            "--test",
            "tiny_bert",
            "--test",
            "minilm",
        ])?);
    }
    eprintln!(
        "CUDA build done in {:.0} s:",
        started.elapsed().as_secs_f64()
    );
    for b in &binaries {
        eprintln!("  {}", b.display());
    }
    if let Some(bundle) = &args.bundle {
        write_bundle(&binaries, bundle)?;
    }
    Ok(())
}

/// The executables cargo reports in its JSON messages.
fn executables(json_lines: &[u8]) -> Vec<PathBuf> {
    String::from_utf8_lossy(json_lines)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("executable")?.as_str().map(PathBuf::from))
        .collect()
}

/// A tarball for a GPU machine: `bin/` (stripped binaries; test binaries by their test
/// name), the fixtures the parity tests read, SST-2 and the acceptance script,
/// zstd-compressed. MiniLM's weights (87 MB) stay out: the script takes `--minilm DIR`.
fn write_bundle(binaries: &[PathBuf], out: &Path) -> Result<()> {
    let stage = out.with_extension("staging");
    if stage.exists() {
        std::fs::remove_dir_all(&stage)?;
    }
    let bin = stage.join("bin");
    std::fs::create_dir_all(&bin)?;
    for b in binaries {
        let name = b.file_name().and_then(|n| n.to_str()).unwrap_or("binary");
        // Test binaries are named `<test>-<hash>`: keep the test name.
        let name = name.rsplit_once('-').map_or(name, |(stem, _)| stem);
        let status = Command::new("strip")
            .arg("-o")
            .arg(bin.join(name))
            .arg(b)
            .status()
            .context("running strip")?;
        ensure!(status.success(), "strip {} failed", b.display());
    }
    let status = Command::new("tar")
        .arg("--zstd")
        .arg("-cf")
        .arg(out)
        .arg("-C")
        .arg(&stage)
        .arg("bin")
        .arg("-C")
        .arg(std::env::current_dir()?)
        .args([
            "fixtures",
            "scripts/gpu-acceptance.sh",
            "assets/sst2/train.tsv",
            "assets/sst2/dev.tsv",
        ])
        .status()
        .context("running tar (with zstd)")?;
    ensure!(status.success(), "writing {} failed", out.display());
    std::fs::remove_dir_all(&stage)?;
    let size = std::fs::metadata(out)?.len();
    eprintln!("bundle {} ({:.1} MB)", out.display(), size as f64 / 1e6);
    Ok(())
}
