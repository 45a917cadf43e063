//! The AVX512-BF16 kernel: `VDPBF16PS` on zmm registers (AMD Zen 4 and newer, Intel Cooper
//! Lake and Sapphire Rapids).
//!
//! One instruction takes 16 lanes of bf16 pairs from each operand and adds both products of
//! a lane to its f32 accumulator: 64 flops against an f32 FMA's 32. A packed `B` block row
//! (16 columns of one `k` pair) is exactly one such operand, so the kernel broadcasts a pair
//! of `A` to all lanes and multiplies it into two block rows at once. A micro-tile of
//! [`ROWS`] rows × 32 columns keeps its 16 accumulators in registers over the whole of `k`;
//! the rows of `a` go [`ROW_CHUNK`] at a time (a chunk stays in L2) past every column block
//! of `b` (one block's `k` pairs stay in L1 or L2).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[cfg(target_arch = "x86_64")]
use super::{BLOCK, B_TILE, K_STEP, TILE};

/// Rows of `c` per micro-tile: 8 rows × 2 column blocks = 16 accumulators, enough to
/// cover the instruction's latency, with registers to spare for the operands.
#[cfg(target_arch = "x86_64")]
const ROWS: usize = 8;
/// Rows of `a` per pass over all of `b`.
#[cfg(target_arch = "x86_64")]
const ROW_CHUNK: usize = 64;

/// Whether this CPU runs AVX512-BF16.
pub(super) fn detect() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `c += a · bᵀ` over padded buffers: `a` `(m, k)` bf16 row-major, `b` packed blocks of
/// `(n, k)`, `c` `(m, n)` f32 row-major; `m`, `n` multiples of 32, `k` of 32.
///
/// # Safety
/// [`detect`] must have returned true and the buffers be at least the sizes stated.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn multiply(a: &[u16], b: &[u16], c: &mut [f32], m: usize, n: usize, k: usize) {
    debug_assert!(m.is_multiple_of(BLOCK) && n.is_multiple_of(BLOCK) && k.is_multiple_of(K_STEP));
    debug_assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
    // The `k` pairs of one 16-column block are contiguous: block `t`'s pair `q` is the
    // 32 bf16 at `t · k · 16 + 32 q` (its `B` tiles laid end to end).
    let block_len = (k / K_STEP) * B_TILE;
    for m0 in (0..m).step_by(ROW_CHUNK) {
        let m1 = (m0 + ROW_CHUNK).min(m);
        for n0 in (0..n).step_by(BLOCK) {
            let b0 = b.as_ptr().add((n0 / TILE) * block_len);
            let b1 = b0.add(block_len);
            for r0 in (m0..m1).step_by(ROWS) {
                // SAFETY: rows r0..r0 + ROWS of `a` and `c` and columns n0..n0 + 32 of `c`
                // are in bounds (m and n multiples of 32 ≥ ROWS), `b0`, `b1` hold k / 2
                // pairs of 16 lanes each.
                unsafe {
                    micro_tile(
                        a.as_ptr().add(r0 * k),
                        k,
                        b0,
                        b1,
                        c.as_mut_ptr().add(r0 * n + n0),
                        n,
                    )
                }
            }
        }
    }
}

/// `c[r][0..32] += Σ_q a[r][q] · (b0[q] ‖ b1[q])` for the [`ROWS`] rows from `a` (stride
/// `k` bf16) and `c` (stride `n` f32), over the `k / 2` pairs `q`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn micro_tile(
    a: *const u16,
    k: usize,
    b0: *const u16,
    b1: *const u16,
    c: *mut f32,
    n: usize,
) {
    // SAFETY (whole body): the caller's bounds; unaligned loads throughout.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 2]; ROWS];
        for (r, acc) in acc.iter_mut().enumerate() {
            acc[0] = _mm512_loadu_ps(c.add(r * n));
            acc[1] = _mm512_loadu_ps(c.add(r * n + TILE));
        }
        for q in 0..k / 2 {
            let w0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b0.add(32 * q).cast()));
            let w1: __m512bh = std::mem::transmute(_mm512_loadu_si512(b1.add(32 * q).cast()));
            for (r, acc) in acc.iter_mut().enumerate() {
                let pair = a.add(r * k + 2 * q).cast::<i32>().read_unaligned();
                let x: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair));
                acc[0] = _mm512_dpbf16_ps(acc[0], x, w0);
                acc[1] = _mm512_dpbf16_ps(acc[1], x, w1);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(c.add(r * n), acc[0]);
            _mm512_storeu_ps(c.add(r * n + TILE), acc[1]);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn multiply(_: &[u16], _: &[u16], _: &mut [f32], _: usize, _: usize, _: usize) {
    unreachable!("AVX512-BF16 exists only on x86_64; `detect()` is false elsewhere")
}
