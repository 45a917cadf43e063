//! The AMX kernel: `TDPBF16PS` on Intel's tile registers (Xeon Sapphire Rapids and newer).
//!
//! A tile holds 16 rows of 64 bytes: `C` 16×16 f32, `A` 16 rows × 32 bf16, `B` 16 rows ×
//! 16 columns of pairs (the packed order of [`super`]), so one instruction adds
//! 16·16·32 products. Each 32×32 block of `c` keeps four accumulator tiles (tmm0–3) and
//! streams two `A` (tmm4–5) and two `B` tiles (tmm6–7) along `k`.
//!
//! Linux hands a process the tiles' register state only on request
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`), which [`detect`] makes.

#[cfg(target_arch = "x86_64")]
use std::arch::asm;

#[cfg(target_arch = "x86_64")]
use super::{BLOCK, B_TILE, K_STEP, TILE};

/// Whether this CPU has AMX bf16 tiles and Linux grants them to this process.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(super) fn detect() -> bool {
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
pub(super) fn detect() -> bool {
    false
}

/// Palette 1, all eight tiles 16 rows × 64 bytes.
#[cfg(target_arch = "x86_64")]
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

#[cfg(target_arch = "x86_64")]
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
/// [`detect`] must have returned true and the buffers at least the sizes stated.
#[cfg(target_arch = "x86_64")]
pub(super) unsafe fn multiply(a: &[u16], b: &[u16], c: &mut [f32], m: usize, n: usize, k: usize) {
    debug_assert!(m.is_multiple_of(BLOCK) && n.is_multiple_of(BLOCK) && k.is_multiple_of(K_STEP));
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

#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn multiply(_: &[u16], _: &[u16], _: &mut [f32], _: usize, _: usize, _: usize) {
    unreachable!("AMX exists only on x86_64; `detect()` is false elsewhere")
}
