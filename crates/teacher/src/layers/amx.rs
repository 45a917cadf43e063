//! `y = x Wᵀ + b` in bf16 on Intel AMX tiles, for the teacher's inference.
//!
//! `x` `(rows, k)` and `W` `(out, k)` are rounded to bf16 (round to nearest even), and
//! `TDPBF16PS` accumulates their products in f32 onto the bias. A tile holds 16 rows of
//! 64 bytes: `C` 16×16 f32, `A` 16 rows × 32 bf16 of `x`, `B` 16 rows × 16 columns of
//! *pairs* of `W`'s values (the "VNNI" order: row `r` holds `W[n][2r]`, `W[n][2r + 1]` for
//! each column `n`), so one instruction adds 16·16·32 products. Each 32×32 block of `y`
//! keeps four accumulator tiles (tmm0–3) and streams two `A` (tmm4–5) and two `B` tiles
//! (tmm6–7) along `k`. `W` is packed into that order once ([`PackedBf16::pack`]); `x` is
//! rounded per call. Every dimension is padded with zeros to a multiple of 32.
//!
//! The f32 gemm this replaces runs at about half the CPU's f32 peak; the tiles' bf16
//! throughput is many times that. The cost is precision: inputs keep 8 significant bits
//! (relative error ≤ 2⁻⁹ each), sums stay f32. [`reference`] computes the same rounded
//! product with plain loops and is the kernel's test oracle.
//!
//! Linux hands a process the tiles' register state only on request
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`), which [`available`] makes once.

/// Rows of a tile, and f32 columns of an accumulator tile.
const TILE: usize = 16;
/// bf16 values in a row of an `A` tile (64 bytes).
const K_STEP: usize = 32;
/// Rows and columns of `y` per block of four accumulator tiles.
const BLOCK: usize = 2 * TILE;
/// bf16 values in one packed `B` tile.
const B_TILE: usize = TILE * K_STEP;

/// `x` rounded to the nearest bf16 (ties to even); NaN stays NaN.
#[inline(always)]
pub fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    let rounded = (bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16) as u16;
    let quiet_nan = ((bits >> 16) | 0x40) as u16;
    if x.is_nan() {
        quiet_nan
    } else {
        rounded
    }
}

/// The f32 value of a bf16.
#[cfg(test)]
#[inline(always)]
pub fn from_bf16(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// Whether this CPU and OS run AMX bf16 tiles (asks Linux for them on the first call).
pub fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(detect)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    use std::arch::x86_64::__cpuid_count;
    // cpuid exists on every x86_64 CPU; an unlisted leaf 7 reads as zeros.
    let (max_leaf, edx) = (__cpuid_count(0, 0).eax, __cpuid_count(7, 0).edx);
    const AMX_BF16: u32 = 1 << 22;
    const AMX_TILE: u32 = 1 << 24;
    if max_leaf < 7 || edx & AMX_BF16 == 0 || edx & AMX_TILE == 0 {
        return false;
    }
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: a plain syscall with integer arguments; it fails cleanly where the kernel
    // does not manage tile state.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// A weight `W` `(out, k)` and bias `b` `(out)`, with `W` rounded to bf16 and laid out as
/// `B` tiles: tile `(n, j)` (columns `16n..16n+16`, `k` in `32j..32j+32`) at
/// `(n · k_tiles + j) · 512`.
#[derive(Clone)]
pub struct PackedBf16 {
    out: usize,
    k: usize,
    out_pad: usize,
    k_pad: usize,
    tiles: Vec<u16>,
    bias: Vec<f32>,
}

impl std::fmt::Debug for PackedBf16 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedBf16({}×{})", self.out, self.k)
    }
}

impl PackedBf16 {
    /// Packs `w` `(out, k)` row-major (PyTorch's layout) and `bias` `(out)`.
    pub fn pack(w: &[f32], bias: &[f32], out: usize, k: usize) -> Self {
        assert_eq!(w.len(), out * k, "weight is not {out}×{k}");
        assert_eq!(bias.len(), out, "bias is not {out} long");
        let (out_pad, k_pad) = (out.next_multiple_of(BLOCK), k.next_multiple_of(K_STEP));
        let k_tiles = k_pad / K_STEP;
        let mut tiles = vec![0u16; out_pad * k_pad];
        for (n, row) in w.chunks_exact(k).enumerate() {
            for (kk, &v) in row.iter().enumerate() {
                let tile = (n / TILE) * k_tiles + kk / K_STEP;
                let r = kk % K_STEP;
                tiles[tile * B_TILE + (r / 2) * 2 * TILE + 2 * (n % TILE) + r % 2] = to_bf16(v);
            }
        }
        Self {
            out,
            k,
            out_pad,
            k_pad,
            tiles,
            bias: bias.to_vec(),
        }
    }

    pub fn out_features(&self) -> usize {
        self.out
    }

    pub fn in_features(&self) -> usize {
        self.k
    }

    /// `y = x Wᵀ + b` for `x` `(rows, k)` row-major; returns `(rows, out)`. Needs
    /// [`available`].
    pub fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        assert!(available(), "AMX tiles are not available on this machine");
        assert_eq!(x.len(), rows * self.k, "input is not {rows}×{}", self.k);
        let rows_pad = rows.next_multiple_of(BLOCK);
        // Built row by row rather than zeroed and then filled: on the teacher's shapes the
        // extra pass over these buffers cost a tenth of the product.
        let mut a = Vec::with_capacity(rows_pad * self.k_pad);
        for src in x.chunks_exact(self.k) {
            a.extend(src.iter().map(|&v| to_bf16(v)));
            a.resize(a.len() + self.k_pad - self.k, 0);
        }
        a.resize(rows_pad * self.k_pad, 0);
        let mut c = Vec::with_capacity(rows_pad * self.out_pad);
        for _ in 0..rows_pad {
            c.extend_from_slice(&self.bias);
            c.resize(c.len() + self.out_pad - self.out, 0.0);
        }
        // SAFETY: `available()` holds; `a` is rows_pad × k_pad, `c` rows_pad × out_pad and
        // `tiles` out_pad × k_pad, all multiples of the block sizes the kernel steps by.
        unsafe { tiles::multiply(&a, &self.tiles, &mut c, rows_pad, self.out_pad, self.k_pad) };
        if self.out_pad == self.out {
            c.truncate(rows * self.out);
            c
        } else {
            c.chunks_exact(self.out_pad)
                .take(rows)
                .flat_map(|row| &row[..self.out])
                .copied()
                .collect()
        }
    }
}

/// The kernel's oracle: `x Wᵀ + b` with `x` and `W` rounded to bf16, summed in f64.
#[cfg(test)]
pub fn reference(x: &[f32], rows: usize, w: &[f32], bias: &[f32], out: usize) -> Vec<f32> {
    let k = w.len() / out;
    let mut y = Vec::with_capacity(rows * out);
    for r in 0..rows {
        let xr = &x[r * k..(r + 1) * k];
        for (n, b) in bias.iter().enumerate() {
            let wn = &w[n * k..(n + 1) * k];
            let dot: f64 = xr
                .iter()
                .zip(wn)
                .map(|(&a, &b)| from_bf16(to_bf16(a)) as f64 * from_bf16(to_bf16(b)) as f64)
                .sum();
            y.push((dot + *b as f64) as f32);
        }
    }
    y
}

#[cfg(target_arch = "x86_64")]
mod tiles {
    use std::arch::asm;

    use super::{BLOCK, B_TILE, K_STEP, TILE};

    /// Palette 1, all eight tiles 16 rows × 64 bytes.
    #[repr(C, align(64))]
    struct TileConfig([u8; 64]);

    impl TileConfig {
        fn all_16_by_64() -> Self {
            let mut c = [0u8; 64];
            c[0] = 1;
            for t in 0..8 {
                c[16 + 2 * t] = 64; // bytes per row (u16 little endian)
                c[48 + t] = TILE as u8; // rows
            }
            Self(c)
        }
    }

    /// `c += a · bᵀ` over padded buffers: `a` `(m, k)` bf16 row-major, `b` packed tiles of
    /// `(n, k)`, `c` `(m, n)` f32 row-major; `m`, `n` multiples of 32, `k` of 32.
    ///
    /// # Safety
    /// AMX must be [`super::available`] and the buffers at least the sizes stated.
    pub(super) unsafe fn multiply(
        a: &[u16],
        b: &[u16],
        c: &mut [f32],
        m: usize,
        n: usize,
        k: usize,
    ) {
        debug_assert!(m % BLOCK == 0 && n % BLOCK == 0 && k % K_STEP == 0);
        debug_assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
        let config = TileConfig::all_16_by_64();
        let k_tiles = k / K_STEP;
        let a_stride = k * 2;
        let c_stride = n * 4;
        let b_stride = 2 * TILE * 2;
        asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack, readonly));
        for m0 in (0..m).step_by(BLOCK) {
            let a0 = a.as_ptr().add(m0 * k);
            let a1 = a0.add(TILE * k);
            for n0 in (0..n).step_by(BLOCK) {
                let c00 = c.as_mut_ptr().add(m0 * n + n0);
                let c01 = c00.add(TILE);
                let c10 = c00.add(TILE * n);
                let c11 = c10.add(TILE);
                let b0 = b.as_ptr().add((n0 / TILE) * k_tiles * B_TILE);
                let b1 = b0.add(k_tiles * B_TILE);
                asm!(
                    "tileloadd tmm0, [{c00} + {s}*1]",
                    "tileloadd tmm1, [{c01} + {s}*1]",
                    "tileloadd tmm2, [{c10} + {s}*1]",
                    "tileloadd tmm3, [{c11} + {s}*1]",
                    c00 = in(reg) c00, c01 = in(reg) c01, c10 = in(reg) c10, c11 = in(reg) c11,
                    s = in(reg) c_stride,
                    options(nostack, readonly),
                );
                for j in 0..k_tiles {
                    asm!(
                        "tileloadd tmm4, [{a0} + {sa}*1]",
                        "tileloadd tmm5, [{a1} + {sa}*1]",
                        "tileloadd tmm6, [{b0} + {sb}*1]",
                        "tileloadd tmm7, [{b1} + {sb}*1]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tdpbf16ps tmm1, tmm4, tmm7",
                        "tdpbf16ps tmm2, tmm5, tmm6",
                        "tdpbf16ps tmm3, tmm5, tmm7",
                        a0 = in(reg) a0.add(j * K_STEP),
                        a1 = in(reg) a1.add(j * K_STEP),
                        b0 = in(reg) b0.add(j * B_TILE),
                        b1 = in(reg) b1.add(j * B_TILE),
                        sa = in(reg) a_stride,
                        sb = in(reg) b_stride,
                        options(nostack, readonly),
                    );
                }
                asm!(
                    "tilestored [{c00} + {s}*1], tmm0",
                    "tilestored [{c01} + {s}*1], tmm1",
                    "tilestored [{c10} + {s}*1], tmm2",
                    "tilestored [{c11} + {s}*1], tmm3",
                    c00 = in(reg) c00, c01 = in(reg) c01, c10 = in(reg) c10, c11 = in(reg) c11,
                    s = in(reg) c_stride,
                    options(nostack),
                );
            }
        }
        asm!("tilerelease", options(nostack, nomem));
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod tiles {
    pub(super) unsafe fn multiply(
        _: &[u16],
        _: &[u16],
        _: &mut [f32],
        _: usize,
        _: usize,
        _: usize,
    ) {
        unreachable!("AMX exists only on x86_64; `available()` is false elsewhere")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 2001) as f32 / 1000.0
                    - 1.0
            })
            .collect()
    }

    #[test]
    fn bf16_rounds_to_nearest_even_and_keeps_specials() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties go to the even mantissa (1).
        assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(to_bf16(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::MAX)), f32::INFINITY); // rounds past the top
    }

    #[test]
    fn tiles_match_the_plain_product_on_ragged_shapes() {
        if !available() {
            eprintln!("skipped: no AMX on this machine");
            return;
        }
        // Shapes off every block size, and the teacher's own.
        for &(rows, out, k) in &[
            (1, 1, 1),
            (3, 5, 7),
            (33, 47, 70),
            (64, 384, 384),
            (17, 1536, 384),
            (40, 384, 1536),
        ] {
            let (x, w, b) = (values(rows * k, 1), values(out * k, 2), values(out, 3));
            let packed = PackedBf16::pack(&w, &b, out, k);
            let got = packed.forward(&x, rows);
            let want = reference(&x, rows, &w, &b, out);
            assert_eq!(got.len(), want.len());
            let worst = got
                .iter()
                .zip(&want)
                .map(|(g, w)| (g - w).abs() / (1.0 + w.abs()))
                .fold(0f32, f32::max);
            // Only the order of f32 additions differs from the oracle.
            assert!(worst < 1e-5 * k as f32, "{rows}×{out}×{k}: {worst}");
        }
    }

    #[test]
    fn rows_on_other_threads_get_the_same_answer() {
        if !available() {
            return;
        }
        let (rows, out, k) = (48, 64, 96);
        let (x, w, b) = (values(rows * k, 4), values(out * k, 5), values(out, 6));
        let packed = PackedBf16::pack(&w, &b, out, k);
        let here = packed.forward(&x, rows);
        let there = std::thread::spawn(move || packed.forward(&x, rows))
            .join()
            .expect("thread");
        assert_eq!(here, there);
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// `cargo test --release -p distill-teacher --lib amx::timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn tiles_against_f32_gemm() {
        if !available() {
            return;
        }
        for &(rows, out, k) in &[(960, 1536, 384), (960, 384, 1536), (960, 384, 384)] {
            let x: Vec<f32> = (0..rows * k).map(|i| (i % 13) as f32 * 0.1).collect();
            let w: Vec<f32> = (0..out * k).map(|i| (i % 7) as f32 * 0.1).collect();
            let b = vec![0.5f32; out];
            let packed = PackedBf16::pack(&w, &b, out, k);
            let reps = 20;
            let t = std::time::Instant::now();
            for _ in 0..reps {
                std::hint::black_box(packed.forward(&x, rows));
            }
            let amx = t.elapsed().as_secs_f64() / reps as f64;
            let t = std::time::Instant::now();
            for _ in 0..reps {
                let mut y = vec![0f32; rows * out];
                unsafe {
                    gemm::gemm(
                        rows,
                        out,
                        k,
                        y.as_mut_ptr(),
                        1,
                        out as isize,
                        true,
                        x.as_ptr(),
                        1,
                        k as isize,
                        w.as_ptr(),
                        k as isize,
                        1,
                        1.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
                std::hint::black_box(y);
            }
            let f32_s = t.elapsed().as_secs_f64() / reps as f64;
            let (rp, np, kp) = (
                rows.next_multiple_of(BLOCK),
                out.next_multiple_of(BLOCK),
                k.next_multiple_of(K_STEP),
            );
            let a = vec![0x3f80u16; rp * kp];
            let mut c = vec![0f32; rp * np];
            let t = std::time::Instant::now();
            for _ in 0..reps {
                unsafe { tiles::multiply(&a, &packed.tiles, &mut c, rp, np, kp) };
            }
            let kernel = t.elapsed().as_secs_f64() / reps as f64;
            println!(
                "kernel alone {:.0} GFLOP/s",
                2.0 * (rows * out * k) as f64 / kernel / 1e9
            );
            let flop = 2.0 * (rows * out * k) as f64;
            println!(
                "{rows}x{out}x{k}: amx {:.0} GFLOP/s, f32 gemm {:.0} GFLOP/s",
                flop / amx / 1e9,
                flop / f32_s / 1e9
            );
        }
    }
}
