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
    k_pad: usize,
    /// Pairs of bf16 (see [`pack_b`]).
    tiles: Vec<u32>,
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
        Self {
            out,
            k,
            k_pad: k.next_multiple_of(K_STEP),
            tiles: {
                let mut tiles = Vec::new();
                pack_b(w, out, k, Stored::AsIs, &mut tiles);
                tiles
            },
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
        with_scratch(|s| {
            pack_a(x, rows, self.k, Stored::AsIs, &mut s.a);
            let c = accumulators(rows, self.out, Some(&self.bias));
            finish(
                halves(&s.a),
                halves(&self.tiles),
                c,
                rows,
                self.out,
                self.k_pad,
            )
        })
    }
}

/// How an operand of [`product`] is stored, row-major: as the matrix itself or as its
/// transpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    AsIs,
    Transposed,
}

/// `C = A Bᵀ (+ bias on every row)` `(m, n)` with `A` `(m, k)` and `B` `(n, k)` rounded to
/// bf16 and summed in f32 on AMX tiles. `a` holds `A` row-major, or with [`Stored::Transposed`] `Aᵀ` `(k, m)`;
/// likewise `b`. Both are packed per call (O((m + n)·k) against the product's O(m·n·k)).
/// A linear layer's three products: `y = x Wᵀ` is `product(x, AsIs, W, AsIs)`,
/// `∂x = g W` is `product(g, AsIs, W, Transposed)`, `∂W = gᵀ x` is
/// `product(g, Transposed, x, Transposed)`. Needs [`available`].
#[allow(clippy::too_many_arguments)]
pub fn product(
    a: &[f32],
    a_stored: Stored,
    b: &[f32],
    b_stored: Stored,
    m: usize,
    n: usize,
    k: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    assert!(available(), "AMX tiles are not available on this machine");
    assert_eq!(a.len(), m * k, "left operand is not {m}×{k}");
    assert_eq!(b.len(), n * k, "right operand is not {n}×{k}");
    assert!(bias.is_none_or(|b| b.len() == n), "bias is not {n} long");
    with_scratch(|s| {
        pack_a(a, m, k, a_stored, &mut s.a);
        pack_b(b, n, k, b_stored, &mut s.b);
        let c = accumulators(m, n, bias);
        finish(
            halves(&s.a),
            halves(&s.b),
            c,
            m,
            n,
            k.next_multiple_of(K_STEP),
        )
    })
}

/// Pairs of bf16 per `u32` (the low half first, as the tiles read memory).
const PAIRS: usize = K_STEP / 2;
/// `u32` pairs in one packed `B` tile.
const B_TILE_PAIRS: usize = B_TILE / 2;

/// `v` read as its bf16 halves.
fn halves(v: &[u32]) -> &[u16] {
    // SAFETY: u16 has a smaller alignment than u32 and twice as many fit in the same bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), v.len() * 2) }
}

fn halves_mut(v: &mut [u32]) -> &mut [u16] {
    // SAFETY: as in `halves`, and the borrow is exclusive.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast(), v.len() * 2) }
}

/// Whether the rounding loops may use AVX-512 (every AMX CPU has it; checked anyway).
fn wide() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static WIDE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *WIDE.get_or_init(|| {
            is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `dst[i] = bf16(src[i])`.
#[inline(always)]
fn round_into(src: &[f32], dst: &mut [u16]) {
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = to_bf16(v);
    }
}

/// `dst[i] = bf16(even[i]) | bf16(odd[i]) << 16` (`odd` missing: zeros).
#[inline(always)]
fn round_pairs_into(even: &[f32], odd: Option<&[f32]>, dst: &mut [u32]) {
    match odd {
        Some(odd) => {
            for ((d, &e), &o) in dst.iter_mut().zip(even).zip(odd) {
                *d = to_bf16(e) as u32 | (to_bf16(o) as u32) << 16;
            }
        }
        None => {
            for (d, &e) in dst.iter_mut().zip(even) {
                *d = to_bf16(e) as u32;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn round_wide(src: &[f32], dst: &mut [u16]) {
    round_into(src, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn round_pairs_wide(even: &[f32], odd: Option<&[f32]>, dst: &mut [u32]) {
    round_pairs_into(even, odd, dst)
}

/// [`round_into`], vectorised 16 wide where the CPU allows.
fn round(src: &[f32], dst: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    if wide() {
        // SAFETY: the CPU has the features `round_wide` is compiled for.
        return unsafe { round_wide(src, dst) };
    }
    round_into(src, dst)
}

/// [`round_pairs_into`], vectorised where the CPU allows.
fn round_pairs(even: &[f32], odd: Option<&[f32]>, dst: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    if wide() {
        // SAFETY: as in `round`.
        return unsafe { round_pairs_wide(even, odd, dst) };
    }
    round_pairs_into(even, odd, dst)
}

/// `buf` cleared and filled with `len` zeros (its allocation kept).
fn zeroed(buf: &mut Vec<u32>, len: usize) {
    buf.clear();
    buf.resize(len, 0);
}

/// Into `a`: `A` `(m, k)` rounded to bf16, row-major, zero-padded to `(m, k)` rounded up to
/// `(BLOCK, K_STEP)`, as pairs of bf16 along `k`.
fn pack_a(src: &[f32], m: usize, k: usize, stored: Stored, a: &mut Vec<u32>) {
    let (m_pad, half) = (m.next_multiple_of(BLOCK), k.next_multiple_of(K_STEP) / 2);
    zeroed(a, m_pad * half);
    match stored {
        Stored::AsIs => {
            for (row, dst) in src.chunks_exact(k).zip(a.chunks_exact_mut(half)) {
                round(row, &mut halves_mut(dst)[..k]);
            }
        }
        Stored::Transposed => {
            // `src` is `(k, m)`: rows 2q and 2q + 1 of it give column q of the pairs of
            // `A`, 16 columns at a time, written out as 64-byte runs of `A`'s rows.
            let mut block = vec![0u32; PAIRS * m];
            for q0 in (0..k.div_ceil(2)).step_by(PAIRS) {
                for (dq, pairs) in block.chunks_exact_mut(m).enumerate() {
                    let kk = 2 * (q0 + dq);
                    if kk >= k {
                        pairs.fill(0);
                        continue;
                    }
                    let odd = (kk + 1 < k).then(|| &src[(kk + 1) * m..(kk + 2) * m]);
                    round_pairs(&src[kk * m..(kk + 1) * m], odd, pairs);
                }
                for (i, row) in a.chunks_exact_mut(half).take(m).enumerate() {
                    let run = &mut row[q0..q0 + PAIRS];
                    for (dq, d) in run.iter_mut().enumerate() {
                        *d = block[dq * m + i];
                    }
                }
            }
        }
    }
}

/// Into `b`: `B` `(n, k)` rounded to bf16 as `B` tiles: tile `(t, j)` (rows `16t..16t+16` of
/// `B`, `k` in `32j..32j+32`) at `(t · k_tiles + j) · 512` bf16, its row `r` holding the
/// pairs `k = 32j + 2r, 32j + 2r + 1` of the tile's 16 rows of `B` side by side (see the
/// module doc); zero-padded to `(n, k)` rounded up to `(BLOCK, K_STEP)`.
fn pack_b(src: &[f32], n: usize, k: usize, stored: Stored, b: &mut Vec<u32>) {
    let (n_pad, k_pad) = (n.next_multiple_of(BLOCK), k.next_multiple_of(K_STEP));
    let (k_tiles, half) = (k_pad / K_STEP, k_pad / 2);
    zeroed(b, n_pad * half);
    match stored {
        Stored::AsIs => {
            // 16 rows of `B` rounded into pairs, then each tile's 16 × 16 pairs transposed.
            let mut rows = vec![0u32; TILE * half];
            for (t, group) in src.chunks(TILE * k).enumerate() {
                rows.fill(0);
                for (row, dst) in group.chunks_exact(k).zip(rows.chunks_exact_mut(half)) {
                    round(row, &mut halves_mut(dst)[..k]);
                }
                for j in 0..k_tiles {
                    let tile = &mut b[(t * k_tiles + j) * B_TILE_PAIRS..][..B_TILE_PAIRS];
                    for (r, dst) in tile.chunks_exact_mut(TILE).enumerate() {
                        for (nn, d) in dst.iter_mut().enumerate() {
                            *d = rows[nn * half + j * PAIRS + r];
                        }
                    }
                }
            }
        }
        Stored::Transposed => {
            // `src` is `(k, n)`: rows 2q and 2q + 1 of it are row q % 16 of the tiles
            // `(t, q / 16)`, 16 pairs each.
            let mut pairs = vec![0u32; n_pad];
            for q in 0..k.div_ceil(2) {
                let kk = 2 * q;
                let odd = (kk + 1 < k).then(|| &src[(kk + 1) * n..(kk + 2) * n]);
                round_pairs(&src[kk * n..(kk + 1) * n], odd, &mut pairs[..n]);
                let (j, r) = (q / PAIRS, q % PAIRS);
                for (t, run) in pairs.chunks_exact(TILE).enumerate() {
                    let at = (t * k_tiles + j) * B_TILE_PAIRS + r * TILE;
                    b[at..at + TILE].copy_from_slice(run);
                }
            }
        }
    }
}

/// Buffers for the packed operands, kept per thread between calls: they are megabytes, and
/// fresh ones cost page faults on every product.
struct Scratch {
    a: Vec<u32>,
    b: Vec<u32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> =
        const { std::cell::RefCell::new(Scratch { a: Vec::new(), b: Vec::new() }) };
}

/// `f` with this thread's scratch buffers (fresh ones if they are in use).
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch {
            a: Vec::new(),
            b: Vec::new(),
        }),
    })
}

/// The accumulators `(m, n)` padded up to `BLOCK`: `bias` on every row, or zeros.
fn accumulators(m: usize, n: usize, bias: Option<&[f32]>) -> Vec<f32> {
    let (m_pad, n_pad) = (m.next_multiple_of(BLOCK), n.next_multiple_of(BLOCK));
    match bias {
        None => vec![0f32; m_pad * n_pad],
        Some(bias) => {
            let mut c = Vec::with_capacity(m_pad * n_pad);
            for _ in 0..m_pad {
                c.extend_from_slice(bias);
                c.resize(c.len() + n_pad - n, 0.0);
            }
            c
        }
    }
}

/// `c += a · bᵀ` over the padded buffers, then `c` cropped to `(m, n)`. Outside a rayon
/// task the rows of `c` are split over the pool's threads (each has its own tiles).
fn finish(a: &[u16], b: &[u16], mut c: Vec<f32>, m: usize, n: usize, k_pad: usize) -> Vec<f32> {
    use rayon::prelude::*;
    let (m_pad, n_pad) = (m.next_multiple_of(BLOCK), n.next_multiple_of(BLOCK));
    debug_assert!(a.len() == m_pad * k_pad && b.len() == n_pad * k_pad);
    let threads = rayon::current_num_threads();
    let blocks = m_pad / BLOCK;
    // Below a few blocks of work per thread the hand-off costs more than it saves.
    let parallel = threads > 1
        && rayon::current_thread_index().is_none()
        && blocks * (n_pad / BLOCK) * (k_pad / K_STEP) >= 64;
    if parallel {
        let rows_per = blocks.div_ceil(threads) * BLOCK;
        c.par_chunks_mut(rows_per * n_pad)
            .zip(a.par_chunks(rows_per * k_pad))
            .for_each(|(c, a)| {
                let rows = c.len() / n_pad;
                // SAFETY: `available()` holds (checked by the callers); `a` is rows × k_pad,
                // `c` rows × n_pad and `b` n_pad × k_pad, rows a multiple of BLOCK.
                unsafe { tiles::multiply(a, b, c, rows, n_pad, k_pad) }
            });
    } else {
        // SAFETY: as above, over all of `a` and `c`.
        unsafe { tiles::multiply(a, b, &mut c, m_pad, n_pad, k_pad) };
    }
    if n_pad == n {
        c.truncate(m * n);
        c
    } else {
        c.chunks_exact(n_pad)
            .take(m)
            .flat_map(|row| &row[..n])
            .copied()
            .collect()
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
        debug_assert!(
            m.is_multiple_of(BLOCK) && n.is_multiple_of(BLOCK) && k.is_multiple_of(K_STEP)
        );
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
            let worst = worst_error(&got, &want);
            // Only the order of f32 additions differs from the oracle.
            assert!(worst < 1e-5 * k as f32, "{rows}×{out}×{k}: {worst}");
        }
    }

    /// The largest `|got − want| / (1 + |want|)`.
    fn worst_error(got: &[f32], want: &[f32]) -> f32 {
        got.iter()
            .zip(want)
            .map(|(g, w)| (g - w).abs() / (1.0 + w.abs()))
            .fold(0f32, f32::max)
    }

    /// `src` `(rows, cols)` row-major, transposed.
    fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        (0..cols)
            .flat_map(|c| (0..rows).map(move |r| src[r * cols + c]))
            .collect()
    }

    #[test]
    fn products_of_every_orientation_match_the_plain_product_on_ragged_shapes() {
        if !available() {
            eprintln!("skipped: no AMX on this machine");
            return;
        }
        // (m, n, k) off every block size; the teacher's backward shapes (∂x: rows × in over
        // out, ∂W: out × in over rows); and shapes big enough to split over threads.
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 5, 7),
            (2, 17, 33),
            (33, 47, 70),
            (45, 31, 63),
            (70, 384, 1536),
            (1536, 384, 70),
            (200, 384, 384),
            (384, 1536, 333),
        ] {
            let (a, b) = (values(m * k, 7), values(n * k, 8));
            let bias = values(n, 9);
            let want = reference(&a, m, &b, &bias, n);
            let (at, bt) = (transpose(&a, m, k), transpose(&b, n, k));
            for (a_stored, b_stored) in [
                (Stored::AsIs, Stored::AsIs),
                (Stored::AsIs, Stored::Transposed),
                (Stored::Transposed, Stored::AsIs),
                (Stored::Transposed, Stored::Transposed),
            ] {
                let a_src = if a_stored == Stored::AsIs { &a } else { &at };
                let b_src = if b_stored == Stored::AsIs { &b } else { &bt };
                let got = product(a_src, a_stored, b_src, b_stored, m, n, k, Some(&bias));
                assert_eq!(got.len(), want.len());
                let worst = worst_error(&got, &want);
                assert!(
                    worst < 1e-5 * k as f32,
                    "{m}×{n}×{k} {a_stored:?}/{b_stored:?}: {worst}"
                );
            }
            // Without a bias the accumulators start at zero.
            let plain = product(&a, Stored::AsIs, &bt, Stored::Transposed, m, n, k, None);
            let with = product(&a, Stored::AsIs, &b, Stored::AsIs, m, n, k, Some(&bias));
            for (r, (p, w)) in plain.chunks(n).zip(with.chunks(n)).enumerate() {
                for c in 0..n {
                    assert!(
                        (p[c] + bias[c] - w[c]).abs() < 1e-4,
                        "{m}×{n}×{k} ({r}, {c})"
                    );
                }
            }
        }
    }

    #[test]
    fn a_product_inside_a_rayon_task_is_the_one_outside() {
        if !available() {
            return;
        }
        let (m, n, k) = (200, 384, 384);
        let (a, b) = (values(m * k, 10), values(n * k, 11));
        let outside = product(&a, Stored::AsIs, &b, Stored::Transposed, m, n, k, None);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("pool");
        let inside =
            pool.install(|| product(&a, Stored::AsIs, &b, Stored::Transposed, m, n, k, None));
        assert_eq!(outside, inside);
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
                crate::layers::linear::add_x_wt(
                    &mut y,
                    &x,
                    &w,
                    (rows, out, k),
                    gemm::Parallelism::None,
                );
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
                unsafe { tiles::multiply(&a, halves(&packed.tiles), &mut c, rp, np, kp) };
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
