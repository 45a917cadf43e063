//! `y = x Wᵀ + b` in bf16 with f32 sums, for the teacher's inference and mixed-precision
//! training, on whichever of two kernels this CPU has.
//!
//! `x` `(rows, k)` and `W` `(out, k)` are rounded to bf16 (round to nearest even) and their
//! products summed in f32 onto the bias. Both kernels read the same packed operands: `A`
//! row-major with `k` padded to 32, `B` as 16 × 16 blocks of *pairs* of `W`'s values (the
//! "VNNI" order: block row `r` holds `W[n][2r]`, `W[n][2r + 1]` for each of 16 columns
//! `n`). `W` is packed once ([`PackedBf16::pack`]); `x` is rounded per call. Every
//! dimension is padded with zeros to a multiple of 32.
//!
//! - `amx.rs`: `TDPBF16PS` on Intel's AMX tiles (Sapphire Rapids and newer), many times the
//!   f32 gemm's throughput.
//! - `avx512.rs`: `VDPBF16PS` on AVX512-BF16 registers (AMD Zen 4 and newer, Intel Cooper
//!   Lake): two products a lane per instruction, twice an f32 FMA's.
//!
//! The cost is precision: inputs keep 8 significant bits (relative error ≤ 2⁻⁹ each), sums
//! stay f32. [`reference`] computes the same rounded product with plain loops and is both
//! kernels' test oracle.

mod amx;
mod avx512;

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

/// A bf16 product kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Intel AMX tiles.
    Amx,
    /// AVX512-BF16 dot products.
    Avx512,
}

impl Kernel {
    /// The fastest kernel this CPU and OS run, if any (asks Linux for the AMX tiles on the
    /// first call).
    pub fn fastest() -> Option<Kernel> {
        static FASTEST: std::sync::OnceLock<Option<Kernel>> = std::sync::OnceLock::new();
        *FASTEST.get_or_init(|| {
            if amx::detect() {
                Some(Kernel::Amx)
            } else if avx512::detect() {
                Some(Kernel::Avx512)
            } else {
                None
            }
        })
    }

    /// Every kernel this machine runs, fastest first (the tests check each).
    #[cfg(test)]
    pub fn all_here() -> Vec<Kernel> {
        let mut all = Vec::new();
        if Kernel::fastest() == Some(Kernel::Amx) {
            all.push(Kernel::Amx);
        }
        if avx512::detect() {
            all.push(Kernel::Avx512);
        }
        all
    }

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Amx => "AMX tiles",
            Kernel::Avx512 => "AVX512-BF16",
        }
    }

    /// `c += a · bᵀ` over padded buffers (see [`finish`]).
    ///
    /// # Safety
    /// The kernel runs here (it came from [`Kernel::fastest`] or [`Kernel::all_here`]);
    /// `a` is `m × k`, `b` `n × k` packed, `c` `m × n`, each a multiple of 32.
    unsafe fn multiply(self, a: &[u16], b: &[u16], c: &mut [f32], m: usize, n: usize, k: usize) {
        // SAFETY: passed on from the caller.
        unsafe {
            match self {
                Kernel::Amx => amx::multiply(a, b, c, m, n, k),
                Kernel::Avx512 => avx512::multiply(a, b, c, m, n, k),
            }
        }
    }
}

/// Whether this CPU runs either kernel: AMX tiles or AVX512-BF16.
pub fn available() -> bool {
    Kernel::fastest().is_some()
}

/// The kernel products run on; panics where there is none (callers check [`available`]).
fn kernel() -> Kernel {
    Kernel::fastest().expect("no bf16 kernel on this machine: neither AMX nor AVX512-BF16")
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
        self.forward_on(kernel(), x, rows)
    }

    /// [`PackedBf16::forward`] on the given kernel, which must run here.
    fn forward_on(&self, kernel: Kernel, x: &[f32], rows: usize) -> Vec<f32> {
        assert_eq!(x.len(), rows * self.k, "input is not {rows}×{}", self.k);
        with_scratch(|s| {
            pack_a(x, rows, self.k, Stored::AsIs, &mut s.a);
            let c = accumulators(rows, self.out, Some(&self.bias));
            finish(
                kernel,
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
/// bf16 and summed in f32. `a` holds `A` row-major, or with [`Stored::Transposed`] `Aᵀ` `(k, m)`;
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
    product_on(kernel(), a, a_stored, b, b_stored, m, n, k, bias)
}

/// [`product`] on the given kernel, which must run here.
#[allow(clippy::too_many_arguments)]
fn product_on(
    kernel: Kernel,
    a: &[f32],
    a_stored: Stored,
    b: &[f32],
    b_stored: Stored,
    m: usize,
    n: usize,
    k: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    assert_eq!(a.len(), m * k, "left operand is not {m}×{k}");
    assert_eq!(b.len(), n * k, "right operand is not {n}×{k}");
    assert!(bias.is_none_or(|b| b.len() == n), "bias is not {n} long");
    with_scratch(|s| {
        pack_a(a, m, k, a_stored, &mut s.a);
        pack_b(b, n, k, b_stored, &mut s.b);
        let c = accumulators(m, n, bias);
        finish(
            kernel,
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

/// Whether the rounding loops may use AVX-512 (both kernels' CPUs have it; checked anyway).
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

/// `c += a · bᵀ` over the padded buffers on `kernel`, then `c` cropped to `(m, n)`. Outside
/// a rayon task the rows of `c` are split over the pool's threads.
fn finish(
    kernel: Kernel,
    a: &[u16],
    b: &[u16],
    mut c: Vec<f32>,
    m: usize,
    n: usize,
    k_pad: usize,
) -> Vec<f32> {
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
                // SAFETY: `kernel` runs here (the callers' contract); `a` is rows × k_pad,
                // `c` rows × n_pad and `b` n_pad × k_pad, rows a multiple of BLOCK.
                unsafe { kernel.multiply(a, b, c, rows, n_pad, k_pad) }
            });
    } else {
        // SAFETY: as above, over all of `a` and `c`.
        unsafe { kernel.multiply(a, b, &mut c, m_pad, n_pad, k_pad) };
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

    /// The kernels this machine runs; says so when there is none (the tests then check
    /// nothing here).
    fn kernels() -> Vec<Kernel> {
        let all = Kernel::all_here();
        if all.is_empty() {
            eprintln!("skipped: no bf16 kernel (AMX or AVX512-BF16) on this machine");
        }
        all
    }

    #[test]
    fn each_kernel_matches_the_plain_product_on_ragged_shapes() {
        // Shapes off every block size, and the teacher's own.
        for kernel in kernels() {
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
                let got = packed.forward_on(kernel, &x, rows);
                let want = reference(&x, rows, &w, &b, out);
                assert_eq!(got.len(), want.len());
                let worst = worst_error(&got, &want);
                // Only the order of f32 additions differs from the oracle.
                assert!(
                    worst < 1e-5 * k as f32,
                    "{kernel:?} {rows}×{out}×{k}: {worst}"
                );
            }
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
        for kernel in kernels() {
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
                    let got = product_on(
                        kernel,
                        a_src,
                        a_stored,
                        b_src,
                        b_stored,
                        m,
                        n,
                        k,
                        Some(&bias),
                    );
                    assert_eq!(got.len(), want.len());
                    let worst = worst_error(&got, &want);
                    assert!(
                        worst < 1e-5 * k as f32,
                        "{kernel:?} {m}×{n}×{k} {a_stored:?}/{b_stored:?}: {worst}"
                    );
                }
                // Without a bias the accumulators start at zero (a bias left in them would
                // be off by up to 1 against a sum of about ±13).
                let plain = product_on(
                    kernel,
                    &a,
                    Stored::AsIs,
                    &bt,
                    Stored::Transposed,
                    m,
                    n,
                    k,
                    None,
                );
                let unbiased = reference(&a, m, &b, &vec![0.0; n], n);
                let worst = worst_error(&plain, &unbiased);
                assert!(
                    worst < 1e-5 * k as f32,
                    "{kernel:?} {m}×{n}×{k} without bias: {worst}"
                );
            }
        }
    }

    #[test]
    fn both_kernels_give_the_same_sums_where_both_run() {
        let all = kernels();
        if all.len() < 2 {
            return;
        }
        let (m, n, k) = (70, 384, 1536);
        let (a, b) = (values(m * k, 12), values(n * k, 13));
        let [first, second] = [all[0], all[1]]
            .map(|kernel| product_on(kernel, &a, Stored::AsIs, &b, Stored::AsIs, m, n, k, None));
        assert!(worst_error(&first, &second) < 1e-5 * k as f32);
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

    /// Each kernel alone and the f32 gemm, one thread each, on the teacher's shapes:
    /// `cargo test --release -p distill-teacher --lib bf16::timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn kernels_against_f32_gemm() {
        for &(rows, out, k) in &[(960, 1536, 384), (960, 384, 1536), (960, 384, 384)] {
            let x: Vec<f32> = (0..rows * k).map(|i| (i % 13) as f32 * 0.1).collect();
            let w: Vec<f32> = (0..out * k).map(|i| (i % 7) as f32 * 0.1).collect();
            let b = vec![0.5f32; out];
            let packed = PackedBf16::pack(&w, &b, out, k);
            let flop = 2.0 * (rows * out * k) as f64;
            let reps = 20;
            let gflops = |f: &mut dyn FnMut()| {
                f();
                let t = std::time::Instant::now();
                for _ in 0..reps {
                    f();
                }
                flop * reps as f64 / t.elapsed().as_secs_f64() / 1e9
            };
            let mut line = format!("{rows}x{out}x{k}, GFLOP/s on one thread:");
            line += &format!(
                " f32 gemm {:.0}",
                gflops(&mut || {
                    let mut y = vec![0f32; rows * out];
                    crate::layers::linear::add_x_wt(
                        &mut y,
                        &x,
                        &w,
                        (rows, out, k),
                        gemm::Parallelism::None,
                    );
                    std::hint::black_box(y);
                })
            );
            let (rp, np, kp) = (
                rows.next_multiple_of(BLOCK),
                out.next_multiple_of(BLOCK),
                k.next_multiple_of(K_STEP),
            );
            let a = vec![0x3f80u16; rp * kp];
            let mut c = vec![0f32; rp * np];
            for kernel in Kernel::all_here() {
                line += &format!(
                    ", {} {:.0}",
                    kernel.name(),
                    gflops(&mut || {
                        // SAFETY: the kernel runs here; the buffers are padded to size.
                        unsafe { kernel.multiply(&a, halves(&packed.tiles), &mut c, rp, np, kp) }
                    })
                );
            }
            line += &format!(
                "; packed forward (rounding x, all threads) {:.0}",
                gflops(&mut || {
                    std::hint::black_box(packed.forward(&x, rows));
                })
            );
            println!("{line}");
        }
    }
}
