//! Dense products of small row-major matrices, the only linear algebra the fused step needs.
//!
//! `C (n×m) = [C +] A (n×k) · B (k×m)` ([`gemm`]), or `Aᵀ·B` with `A` stored `k×n`
//! ([`gemm_tn`]), every matrix row-major with its own row stride (`lda`, `ldb`, `ldc` ≥ the
//! row length), so a block of rows of a larger buffer is a matrix as is.
//!
//! The shapes are the student's: `n` a batch's rows or tokens (up to a few thousand), `k`
//! and `m` between 1 and `8H`. That is too small for a library GEMM's blocking to pay and
//! too large for a naive triple loop: the product runs in register tiles (up to 8 rows × 32
//! columns) held over the whole `k`, so each loaded row of `B` feeds several rows of `A`.
//! With AVX-512 or AVX2 + FMA the tiles are written with intrinsics (`x86`), otherwise a
//! portable auto-vectorised version runs. The AVX2 tiles read `B` from contiguous panels
//! (packed per product, or once for many with [`Panels`]). On one machine the result
//! depends on neither `n` nor the blocking nor the packing, only on the instruction set:
//! every output is one sum in `k` order.

/// `C = [C +] A·B`; see the module docs. `accumulate` adds to `C` instead of overwriting.
///
/// # Panics
/// If a slice is too short for its shape and stride.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    n: usize,
    k: usize,
    m: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    run::<false>(n, k, m, a, lda, b, ldb, c, ldc, accumulate)
}

/// `C = [C +] Aᵀ·B` with `A` stored `k × n` (stride `lda`): the weight gradients `dzᵀ·x`
/// without transposing `dz`.
///
/// # Panics
/// If a slice is too short for its shape and stride.
#[allow(clippy::too_many_arguments)]
pub fn gemm_tn(
    n: usize,
    k: usize,
    m: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    run::<true>(n, k, m, a, lda, b, ldb, c, ldc, accumulate)
}

#[allow(clippy::too_many_arguments)]
fn run<const AT: bool>(
    n: usize,
    k: usize,
    m: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    if n == 0 || m == 0 {
        return;
    }
    let need = |rows: usize, cols: usize, ld: usize| (rows - 1) * ld + cols;
    let (a_rows, a_cols) = if AT { (k, n) } else { (n, k) };
    assert!(
        lda >= a_cols && ldb >= m && ldc >= m,
        "gemm: strides shorter than rows"
    );
    assert!(
        (a_rows == 0 || a.len() >= need(a_rows, a_cols, lda)) && c.len() >= need(n, m, ldc),
        "gemm: A or C too short"
    );
    assert!(k == 0 || b.len() >= need(k, m, ldb), "gemm: B too short");
    let args = Args {
        n,
        k,
        m,
        a,
        lda,
        b,
        ldb,
        ldc,
        accumulate,
    };
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features were just detected on this CPU, and every slice was
            // checked above to hold its matrix.
            return unsafe { x86::gemm_avx512::<AT>(&args, c) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            return unsafe { x86::gemm_avx2::<AT>(&args, c) };
        }
    }
    gemm_impl::<AT>(&args, c)
}

/// Columns per panel of a packed `B` ([`Panels`]).
const PANEL: usize = 16;

/// `B` (`k × m`, stride `ldb`) as panels of [`PANEL`] columns, one after the other, each
/// `k` contiguous rows; the last panel's rows are padded with zeros to a multiple of 8. The
/// panel of column `j` (a multiple of [`PANEL`]) starts at `k·j`.
fn pack_panels(k: usize, m: usize, b: &[f32], ldb: usize, out: &mut Vec<f32>) {
    out.clear();
    let mut j = 0;
    while j < m {
        let width = (m - j).min(PANEL);
        let stride = 8 * width.div_ceil(8);
        for q in 0..k {
            let o = q * ldb + j;
            out.extend_from_slice(&b[o..o + width]);
            out.resize(out.len() + stride - width, 0.0);
        }
        j += width;
    }
}

/// A right-hand matrix `B` packed once for many products ([`gemm_panels`]): the
/// recurrence multiplies by the same `W_hh` at every step of a batch.
#[derive(Default)]
pub struct Panels {
    k: usize,
    m: usize,
    /// `B` as given (`k × m`, dense), for the paths that read it in place.
    plain: Vec<f32>,
    /// `B` in panels ([`pack_panels`]).
    packed: Vec<f32>,
}

impl Panels {
    /// Packs `b` (`k × m`, row stride `ldb`), reusing this value's buffers.
    pub fn pack(&mut self, k: usize, m: usize, b: &[f32], ldb: usize) {
        assert!(
            ldb >= m && (k == 0 || b.len() >= (k - 1) * ldb + m),
            "Panels: B too short"
        );
        (self.k, self.m) = (k, m);
        self.plain.clear();
        for q in 0..k {
            self.plain.extend_from_slice(&b[q * ldb..q * ldb + m]);
        }
        pack_panels(k, m, b, ldb, &mut self.packed);
    }

    /// Rows of `B` (`k`).
    pub fn rows(&self) -> usize {
        self.k
    }
}

/// `C = [C +] A·B` with `B` packed; as [`gemm`] otherwise.
///
/// # Panics
/// If a slice is too short for its shape and stride.
pub fn gemm_panels(
    n: usize,
    a: &[f32],
    lda: usize,
    b: &Panels,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if !std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        let (k, m) = (b.k, b.m);
        if n == 0 || m == 0 {
            return;
        }
        assert!(
            lda >= k && ldc >= m && a.len() >= (n - 1) * lda + k && c.len() >= (n - 1) * ldc + m,
            "gemm_panels: A or C too short"
        );
        let args = Args {
            n,
            k,
            m,
            a,
            lda,
            b: &b.packed,
            ldb: 0,
            ldc,
            accumulate,
        };
        // SAFETY: the features were just detected; A and C were checked above, and the
        // panels were packed to hold B.
        return unsafe { x86::gemm_avx2_panels::<false>(&args, c) };
    }
    gemm(n, b.k, b.m, a, lda, &b.plain, b.m, c, ldc, accumulate)
}

/// `Aᵀ`: `a` is `rows × cols` (stride `lda`), `out` becomes `cols × rows` (stride `rows`).
pub fn transpose(rows: usize, cols: usize, a: &[f32], lda: usize, out: &mut [f32]) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        lda >= cols && a.len() >= (rows - 1) * lda + cols && out.len() >= rows * cols,
        "transpose: slices too short"
    );
    // Blocks of 8×8: whole blocks as eight vectors shuffled in registers, the edges one by
    // one (the weights are transposed every step; element by element that was 4% of a
    // 64/64 student's step).
    const BLK: usize = 8;
    #[cfg(target_arch = "x86_64")]
    let avx = std::arch::is_x86_feature_detected!("avx");
    for r0 in (0..rows).step_by(BLK) {
        for c0 in (0..cols).step_by(BLK) {
            #[cfg(target_arch = "x86_64")]
            if avx && r0 + BLK <= rows && c0 + BLK <= cols {
                // SAFETY: AVX was detected; the block lies inside both slices (asserted above).
                unsafe { x86::transpose8(a, lda, r0, c0, out, rows) };
                continue;
            }
            for r in r0..(r0 + BLK).min(rows) {
                let row = &a[r * lda..r * lda + cols];
                for c in c0..(c0 + BLK).min(cols) {
                    out[c * rows + r] = row[c];
                }
            }
        }
    }
}

/// One product's shapes and operands.
#[derive(Clone, Copy)]
struct Args<'a> {
    n: usize,
    k: usize,
    m: usize,
    a: &'a [f32],
    lda: usize,
    b: &'a [f32],
    ldb: usize,
    ldc: usize,
    accumulate: bool,
}

#[cfg(target_arch = "x86_64")]
mod x86;

#[inline(always)]
fn gemm_impl<const AT: bool>(p: &Args, c: &mut [f32]) {
    let mut j = 0;
    while j + 32 <= p.m {
        column_block::<AT, 4, 32>(p, c, j);
        j += 32;
    }
    if j + 16 <= p.m {
        column_block::<AT, 4, 16>(p, c, j);
        j += 16;
    }
    // Narrow blocks take more rows per tile, so that enough independent sums are in flight
    // to hide the latency of the multiply-adds.
    if j + 8 <= p.m {
        column_block::<AT, 8, 8>(p, c, j);
        j += 8;
    }
    while j < p.m {
        column_block::<AT, 8, 1>(p, c, j);
        j += 1;
    }
}

/// Columns `j..j + NR` of `C`, all rows, in tiles of `MR` rows.
#[inline(always)]
fn column_block<const AT: bool, const MR: usize, const NR: usize>(
    p: &Args,
    c: &mut [f32],
    j: usize,
) {
    let mut i = 0;
    while i + MR <= p.n {
        tile::<AT, MR, NR>(p, c, i, j);
        i += MR;
    }
    while i < p.n {
        tile::<AT, 1, NR>(p, c, i, j);
        i += 1;
    }
}

/// The `R × NR` block of `C` at row `i`, column `j`, held in registers over the whole `k`.
#[inline(always)]
fn tile<const AT: bool, const R: usize, const NR: usize>(
    p: &Args,
    c: &mut [f32],
    i: usize,
    j: usize,
) {
    let k = p.k;
    let mut acc = [[0.0f32; NR]; R];
    if p.accumulate {
        for (r, acc) in acc.iter_mut().enumerate() {
            let o = (i + r) * p.ldc + j;
            acc.copy_from_slice(&c[o..o + NR]);
        }
    }
    // Row `r` of the tile's A: contiguous (A·B), or a column read with stride (Aᵀ·B).
    let rows: [&[f32]; R] = if AT {
        [&[][..]; R]
    } else {
        std::array::from_fn(|r| &p.a[(i + r) * p.lda..(i + r) * p.lda + k])
    };
    // `q` walks A's columns and B's rows together.
    #[allow(clippy::needless_range_loop)]
    for q in 0..k {
        let o = q * p.ldb + j;
        let brow: &[f32; NR] = p.b[o..o + NR].try_into().expect("NR columns");
        let a_col: [f32; R] = if AT {
            p.a[q * p.lda + i..q * p.lda + i + R]
                .try_into()
                .expect("R rows")
        } else {
            std::array::from_fn(|r| rows[r][q])
        };
        for r in 0..R {
            let x = a_col[r];
            for (acc, &y) in acc[r].iter_mut().zip(brow) {
                *acc += x * y;
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let o = (i + r) * p.ldc + j;
        c[o..o + NR].copy_from_slice(acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn naive(
        n: usize,
        k: usize,
        m: usize,
        a: &[f32],
        b: &[f32],
        c0: &[f32],
        acc: bool,
    ) -> Vec<f64> {
        let mut c = vec![0.0f64; n * m];
        for i in 0..n {
            for j in 0..m {
                let mut s = if acc { c0[i * m + j] as f64 } else { 0.0 };
                for q in 0..k {
                    s += a[i * k + q] as f64 * b[q * m + j] as f64;
                }
                c[i * m + j] = s;
            }
        }
        c
    }

    #[test]
    fn matches_a_naive_product_over_awkward_shapes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for &(n, k, m) in &[
            (1, 1, 1),
            (3, 5, 7),
            (4, 8, 32),
            (9, 16, 57),
            (33, 64, 256),
            (5, 0, 9),
            (7, 130, 8),
        ] {
            let a: Vec<f32> = (0..n * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..k * m).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let c0: Vec<f32> = (0..n * m).map(|_| rng.gen_range(-1.0..1.0)).collect();
            for acc in [false, true] {
                let mut c = c0.clone();
                gemm(n, k, m, &a, k, &b, m, &mut c, m, acc);
                let want = naive(n, k, m, &a, &b, &c0, acc);
                for (x, y) in c.iter().zip(&want) {
                    assert!(
                        (*x as f64 - y).abs() <= 1e-5 * (1.0 + k as f64).sqrt(),
                        "{n}×{k}×{m} acc {acc}: {x} vs {y}"
                    );
                }
            }
        }
    }

    /// Each implementation this CPU can run, on the same awkward shapes.
    #[test]
    fn every_instruction_set_path_matches_the_naive_product() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        type Path = fn(&Args, &mut [f32]);
        let mut paths: Vec<(&str, Path)> = vec![("portable", |a, c| gemm_impl::<false>(a, c))];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY (both): features detected; the shapes below fit their slices.
                paths.push(("avx2", |a, c| unsafe { x86::gemm_avx2::<false>(a, c) }));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                paths.push(("avx512", |a, c| unsafe { x86::gemm_avx512::<false>(a, c) }));
            }
        }
        for &(n, k, m) in &[
            (1, 1, 1),
            (3, 5, 7),
            (15, 9, 33),
            (9, 16, 57),
            (33, 64, 256),
            (11, 3, 8),
        ] {
            let a: Vec<f32> = (0..n * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..k * m).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let c0: Vec<f32> = (0..n * m).map(|_| rng.gen_range(-1.0..1.0)).collect();
            for accumulate in [false, true] {
                let want = naive(n, k, m, &a, &b, &c0, accumulate);
                for (name, path) in &paths {
                    // A trailing guard column must stay as it was.
                    let mut c = vec![7.0f32; n * (m + 1)];
                    for i in 0..n {
                        c[i * (m + 1)..i * (m + 1) + m].copy_from_slice(&c0[i * m..(i + 1) * m]);
                    }
                    let args = Args {
                        n,
                        k,
                        m,
                        a: &a,
                        lda: k,
                        b: &b,
                        ldb: m,
                        ldc: m + 1,
                        accumulate,
                    };
                    path(&args, &mut c);
                    for i in 0..n {
                        assert_eq!(c[i * (m + 1) + m], 7.0, "{name}: guard overwritten");
                        for j in 0..m {
                            let (x, y) = (c[i * (m + 1) + j] as f64, want[i * m + j]);
                            assert!(
                                (x - y).abs() <= 1e-5 * (1.0 + k as f64).sqrt(),
                                "{name} {n}×{k}×{m}: {x} vs {y}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Packed once, `B` gives the same products as read in place, bit for bit (each output
    /// is the same sum in the same order), for widths around the panel's and the vector's.
    #[test]
    fn packed_panels_give_the_same_products_as_b_in_place() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        let mut panels = Panels::default();
        for &(n, k, m) in &[
            (1, 1, 1),
            (7, 3, 7),
            (13, 64, 8),
            (6, 9, 9),
            (32, 64, 16),
            (5, 17, 17),
            (11, 33, 57),
            (32, 64, 256),
            (3, 256, 64),
        ] {
            // B as a block of a wider matrix (stride m + 3), to pack through its stride.
            let ldb = m + 3;
            let b: Vec<f32> = (0..k * ldb).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let a: Vec<f32> = (0..n * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let c0: Vec<f32> = (0..n * m).map(|_| rng.gen_range(-1.0..1.0)).collect();
            panels.pack(k, m, &b, ldb);
            for accumulate in [false, true] {
                let (mut want, mut got) = (c0.clone(), c0.clone());
                gemm(n, k, m, &a, k, &b, ldb, &mut want, m, accumulate);
                gemm_panels(n, &a, k, &panels, &mut got, m, accumulate);
                assert_eq!(got, want, "{n}×{k}×{m} accumulate {accumulate}");
                let reference = naive_strided(n, k, m, &a, &b, ldb, &c0, accumulate);
                for (x, y) in got.iter().zip(&reference) {
                    assert!((*x as f64 - y).abs() <= 1e-5 * (1.0 + k as f64).sqrt());
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn naive_strided(
        n: usize,
        k: usize,
        m: usize,
        a: &[f32],
        b: &[f32],
        ldb: usize,
        c0: &[f32],
        acc: bool,
    ) -> Vec<f64> {
        let dense: Vec<f32> = (0..k)
            .flat_map(|q| b[q * ldb..q * ldb + m].iter().copied())
            .collect();
        naive(n, k, m, a, &dense, c0, acc)
    }

    #[test]
    fn transposed_a_matches_the_product_with_a_transposed_copy() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        for &(n, k, m) in &[(1, 1, 1), (32, 300, 8), (9, 17, 57), (64, 33, 16)] {
            let at: Vec<f32> = (0..k * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..k * m).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut a = vec![0.0; n * k];
            transpose(k, n, &at, n, &mut a);
            let (mut want, mut got) = (vec![0.0; n * m], vec![0.0; n * m]);
            gemm(n, k, m, &a, k, &b, m, &mut want, m, false);
            gemm_tn(n, k, m, &at, n, &b, m, &mut got, m, false);
            assert_eq!(got, want, "{n}×{k}×{m}");
        }
    }

    #[test]
    fn strided_blocks_leave_the_rest_untouched() {
        // A 3×2 block of a 3×5 C, from a 3×4 block of A with stride 6.
        let a: Vec<f32> = (0..18).map(|x| x as f32).collect();
        let b: Vec<f32> = (0..8).map(|x| (x % 3) as f32).collect();
        let mut c = [-1.0f32; 15];
        gemm(3, 4, 2, &a, 6, &b, 2, &mut c[1..], 5, false);
        for i in 0..3 {
            assert_eq!(c[i * 5], -1.0);
            for j in 0..2 {
                let want: f32 = (0..4).map(|q| a[i * 6 + q] * b[q * 2 + j]).sum();
                assert_eq!(c[i * 5 + 1 + j], want);
            }
            assert_eq!(&c[i * 5 + 3..i * 5 + 5], &[-1.0, -1.0]);
        }
    }

    #[test]
    fn transpose_round_trips() {
        let a: Vec<f32> = (0..35).map(|x| x as f32).collect();
        let mut t = vec![0.0; 35];
        transpose(5, 7, &a, 7, &mut t);
        let mut back = vec![0.0; 35];
        transpose(7, 5, &t, 5, &mut back);
        assert_eq!(a, back);
        assert_eq!(t[1], a[7]);
    }

    #[test]
    fn transpose_matches_element_by_element_with_whole_blocks_and_edges() {
        for &(rows, cols, lda) in &[
            (8, 8, 8),
            (17, 24, 30),
            (64, 256, 256),
            (256, 64, 70),
            (9, 3, 3),
        ] {
            let a: Vec<f32> = (0..rows * lda).map(|x| x as f32).collect();
            let mut t = vec![-1.0; rows * cols];
            transpose(rows, cols, &a, lda, &mut t);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(t[c * rows + r], a[r * lda + c], "{rows}×{cols} at {r},{c}");
                }
            }
        }
    }
}
