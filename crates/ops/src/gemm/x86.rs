//! The register tiles of [`super::gemm`] written with AVX-512 and AVX2 + FMA intrinsics
//! (auto-vectorised, the tile arrays came out with shuffles and masked moves in the inner
//! loop). A tile of `R` rows × `NV` vectors of `C` stays in registers over the whole `k`;
//! per `k` step it loads `NV` vectors of a row of `B`, broadcasts `R` values of `A` and does
//! `R·NV` multiply-adds. Columns past a multiple of the vector width are masked, so any `m`
//! runs on the vector path.

use std::arch::x86_64::*;

use super::Args;

/// `A[row, q]`: row-major, or stored transposed (`k × n`).
#[inline(always)]
unsafe fn a_at<const AT: bool>(p: &Args, row: usize, q: usize) -> f32 {
    let idx = if AT { q * p.lda + row } else { row * p.lda + q };
    *p.a.get_unchecked(idx)
}

/// Rows in tiles of 8, then 4, 2, 1 (the rows of one step of the recurrence are any count).
macro_rules! row_tiles {
    ($p:ident, $tile:ident, $c:ident, $j:expr, $($extra:expr),*) => {{
        let mut i = 0;
        while i + 8 <= $p.n {
            $tile::<AT, 8, NV>($p, $c, i, $j, $($extra),*);
            i += 8;
        }
        if i + 4 <= $p.n {
            $tile::<AT, 4, NV>($p, $c, i, $j, $($extra),*);
            i += 4;
        }
        if i + 2 <= $p.n {
            $tile::<AT, 2, NV>($p, $c, i, $j, $($extra),*);
            i += 2;
        }
        if i < $p.n {
            $tile::<AT, 1, NV>($p, $c, i, $j, $($extra),*);
        }
    }};
}

/// `C = [C +] op(A)·B` with 16-lane vectors. The caller checked every slice's length.
#[target_feature(enable = "avx512f")]
pub unsafe fn gemm_avx512<const AT: bool>(p: &Args, c: &mut [f32]) {
    let c = c.as_mut_ptr();
    let mut j = 0;
    while j + 32 <= p.m {
        block512::<AT, 2>(p, c, j, [0xFFFF; 2]);
        j += 32;
    }
    while j < p.m {
        let left = p.m - j;
        let mask = if left >= 16 {
            0xFFFF
        } else {
            (1u16 << left) - 1
        };
        block512::<AT, 1>(p, c, j, [mask]);
        j += 16;
    }
}

#[inline(always)]
unsafe fn block512<const AT: bool, const NV: usize>(
    p: &Args,
    c: *mut f32,
    j: usize,
    masks: [__mmask16; NV],
) {
    row_tiles!(p, tile512, c, j, masks)
}

#[inline(always)]
unsafe fn tile512<const AT: bool, const R: usize, const NV: usize>(
    p: &Args,
    c: *mut f32,
    i: usize,
    j: usize,
    masks: [__mmask16; NV],
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; R];
    if p.accumulate {
        for (r, acc) in acc.iter_mut().enumerate() {
            let row = c.add((i + r) * p.ldc + j);
            for (v, acc) in acc.iter_mut().enumerate() {
                *acc = _mm512_maskz_loadu_ps(masks[v], row.add(16 * v));
            }
        }
    }
    let b = p.b.as_ptr();
    for q in 0..p.k {
        let brow = b.add(q * p.ldb + j);
        let bv: [__m512; NV] =
            std::array::from_fn(|v| _mm512_maskz_loadu_ps(masks[v], brow.add(16 * v)));
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = _mm512_set1_ps(a_at::<AT>(p, i + r, q));
            for (acc, bv) in acc.iter_mut().zip(&bv) {
                *acc = _mm512_fmadd_ps(x, *bv, *acc);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let row = c.add((i + r) * p.ldc + j);
        for (v, acc) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(row.add(16 * v), masks[v], *acc);
        }
    }
}

/// `C = [C +] op(A)·B` with 8-lane vectors, `B` packed first (see [`gemm_avx2_panels`]).
/// The caller checked every slice's length.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gemm_avx2<const AT: bool>(p: &Args, c: &mut [f32]) {
    PANELS.with_borrow_mut(|panels| {
        super::pack_panels(p.k, p.m, p.b, p.ldb, panels);
        gemm_avx2_panels::<AT>(&Args { b: panels, ..*p }, c)
    })
}

thread_local! {
    /// `B` in panels, reused from product to product.
    static PANELS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `C = [C +] op(A)·B` with `p.b` in panels ([`super::pack_panels`]; `p.ldb` unused).
///
/// AVX2 has 16 vector registers: a tile of 6 rows × 2 vectors (12 sums, 2 loaded `B`
/// vectors, one broadcast) is the widest that does not spill; 8 × 2 spilled and ran at
/// half the speed. `B` is read from contiguous panels: in place, its rows lie a
/// power-of-two stride apart and fall into the same few sets of the L1 cache, so every tile
/// fetched them again from L2.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gemm_avx2_panels<const AT: bool>(p: &Args, c: &mut [f32]) {
    let c = c.as_mut_ptr();
    let mut j = 0;
    while j < p.m {
        let width = (p.m - j).min(super::PANEL);
        let vectors = width.div_ceil(8);
        let q = Args {
            b: &p.b[p.k * j..],
            ldb: 8 * vectors,
            ..*p
        };
        match (vectors, width.is_multiple_of(8)) {
            (2, true) => rows256::<AT, 2, 6, false>(&q, c, j, 8),
            (2, false) => rows256::<AT, 2, 6, true>(&q, c, j, width - 8),
            (_, true) => rows256::<AT, 1, 12, false>(&q, c, j, 8),
            (_, false) => rows256::<AT, 1, 12, true>(&q, c, j, width),
        }
        j += width;
    }
}

/// Columns `j..j + 8·NV` of every row of `C`, in tiles of `MR` rows, then 4, 2, 1. With
/// `MASKED`, the last vector stores only its first `left` (< 8) columns; `B` (a panel) is
/// read whole.
#[inline(always)]
unsafe fn rows256<const AT: bool, const NV: usize, const MR: usize, const MASKED: bool>(
    p: &Args,
    c: *mut f32,
    j: usize,
    left: usize,
) {
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(left as i32), lanes);
    let mut i = 0;
    while i + MR <= p.n {
        tile256::<AT, MR, NV, MASKED>(p, c, i, j, mask);
        i += MR;
    }
    if i + 4 <= p.n && MR > 4 {
        tile256::<AT, 4, NV, MASKED>(p, c, i, j, mask);
        i += 4;
    }
    if i + 2 <= p.n {
        tile256::<AT, 2, NV, MASKED>(p, c, i, j, mask);
        i += 2;
    }
    // Up to MR − 1 rows can be left after the first loop, so this one repeats.
    while i < p.n {
        tile256::<AT, 1, NV, MASKED>(p, c, i, j, mask);
        i += 1;
    }
}

#[inline(always)]
unsafe fn tile256<const AT: bool, const R: usize, const NV: usize, const MASKED: bool>(
    p: &Args,
    c: *mut f32,
    i: usize,
    j: usize,
    mask: __m256i,
) {
    let mut acc = [[_mm256_setzero_ps(); NV]; R];
    if p.accumulate {
        for (r, acc) in acc.iter_mut().enumerate() {
            let row = c.add((i + r) * p.ldc + j);
            for (v, acc) in acc.iter_mut().enumerate() {
                *acc = if MASKED && v + 1 == NV {
                    _mm256_maskload_ps(row.add(8 * v), mask)
                } else {
                    _mm256_loadu_ps(row.add(8 * v))
                };
            }
        }
    }
    // `B` is a packed panel: its columns start at 0 and are whole vectors.
    let b = p.b.as_ptr();
    for q in 0..p.k {
        let brow = b.add(q * p.ldb);
        let bv: [__m256; NV] = std::array::from_fn(|v| _mm256_loadu_ps(brow.add(8 * v)));
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = _mm256_set1_ps(a_at::<AT>(p, i + r, q));
            for (acc, bv) in acc.iter_mut().zip(&bv) {
                *acc = _mm256_fmadd_ps(x, *bv, *acc);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let row = c.add((i + r) * p.ldc + j);
        for (v, acc) in acc.iter().enumerate() {
            if MASKED && v + 1 == NV {
                _mm256_maskstore_ps(row.add(8 * v), mask, *acc);
            } else {
                _mm256_storeu_ps(row.add(8 * v), *acc);
            }
        }
    }
}

/// The 8×8 block of `a` (stride `lda`) at row `r0`, column `c0`, transposed into `out`
/// (stride `rows`) through registers.
#[target_feature(enable = "avx")]
pub unsafe fn transpose8(
    a: &[f32],
    lda: usize,
    r0: usize,
    c0: usize,
    out: &mut [f32],
    rows: usize,
) {
    let src = a.as_ptr().add(r0 * lda + c0);
    let mut r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * lda)));
    crate::math::avx2::transpose8(&mut r);
    let dst = out.as_mut_ptr().add(c0 * rows + r0);
    for (i, v) in r.iter().enumerate() {
        _mm256_storeu_ps(dst.add(i * rows), *v);
    }
}
