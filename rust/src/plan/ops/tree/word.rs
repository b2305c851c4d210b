//! The word holding a tree's leaves as bits in the bitvector scan (`scan`), and the scan's
//! AVX-512 kernels: which lanes a split is false for, and the masked ANDs of those lanes.

use std::ops::{BitAnd, BitAndAssign, BitOr};

/// A tree's leaves as bits, lowest bit the leftmost leaf.
pub trait Word:
    Copy + PartialEq + BitAnd<Output = Self> + BitOr<Output = Self> + BitAndAssign + 'static
{
    const BITS: usize;
    const ONES: Self;
    /// The low `Self::BITS` bits of `mask` (the caller checked that the higher ones are set).
    fn truncate(mask: u64) -> Self;
    /// Zero when `cond`, all ones otherwise, without a branch on `cond` (a comparison's result,
    /// which would be mispredicted half the time).
    fn unless(cond: bool) -> Self;
    fn lowest(self) -> usize;
    /// AND each pair's mask into its tree's words (`found[tree]`) at the lanes set in `lanes`,
    /// with AVX-512 masked ANDs. Written by hand: the compiler's version recomputes the lane
    /// mask for every pair once there are more lanes than one vector holds.
    ///
    /// # Safety
    /// The CPU has AVX-512 F; every tree is below `found.len()`; `L` is a multiple of 16.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    unsafe fn and_lanes_avx512<const L: usize>(
        found: &mut [[Self; L]],
        pairs: &[(u32, Self)],
        lanes: u64,
    );
}

/// `impl Word` for `$word`, whose AVX-512 ANDs take `$per_vector` lanes a vector.
macro_rules! word {
    ($word:ty, $per_vector:expr, $set1:ident, $and:ident, $lowest:expr) => {
        impl Word for $word {
            const BITS: usize = <$word>::BITS as usize;
            const ONES: Self = !0;
            fn truncate(mask: u64) -> Self {
                mask as $word
            }
            #[inline(always)]
            fn unless(cond: bool) -> Self {
                <$word>::from(cond).wrapping_sub(1)
            }
            #[inline(always)]
            fn lowest(self) -> usize {
                $lowest(self)
            }
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            #[inline(always)]
            unsafe fn and_lanes_avx512<const L: usize>(
                found: &mut [[Self; L]],
                pairs: &[(u32, Self)],
                lanes: u64,
            ) {
                #[target_feature(enable = "avx512f")]
                fn and<const L: usize>(
                    found: &mut [[$word; L]],
                    pairs: &[(u32, $word)],
                    lanes: u64,
                ) {
                    use std::arch::x86_64::*;
                    for &(tree, mask) in pairs {
                        // SAFETY: the caller checked the tree is in `found`.
                        let bits = unsafe { found.get_unchecked_mut(tree as usize) }.as_mut_ptr();
                        let mask = $set1(mask as _);
                        for chunk in 0..L / $per_vector {
                            let at = bits.wrapping_add(chunk * $per_vector).cast::<__m512i>();
                            let k = (lanes >> (chunk * $per_vector)) as _;
                            // SAFETY: `at` is `$per_vector` words inside `found[tree]`.
                            unsafe {
                                let v = _mm512_loadu_si512(at);
                                _mm512_storeu_si512(at, $and(v, k, v, mask));
                            }
                        }
                    }
                }
                // SAFETY: as the caller promised.
                unsafe { and(found, pairs, lanes) }
            }
        }
    };
}

// The exponent of the lowest set bit as a float (exact: a power of two), which AVX-512
// computes for sixteen lanes in a few instructions where `trailing_zeros` has none.
word!(
    u32,
    16,
    _mm512_set1_epi32,
    _mm512_mask_and_epi32,
    |w: u32| {
        let bit = w & w.wrapping_neg();
        ((bit as f32).to_bits() >> 23).wrapping_sub(127) as usize
    }
);
word!(
    u64,
    8,
    _mm512_set1_epi64,
    _mm512_mask_and_epi64,
    |w: u64| w.trailing_zeros() as usize
);

/// Bit `lane` set where `split < values[lane]` (false for NaN), by `$per_vector` lanes a
/// comparison: the compiler's own version of this extracts and shifts each lane's bit. The
/// comparisons' masks are joined pairwise in mask registers (`join`): shifted and ORed in
/// general registers, they were a quarter of the tree-by-tree scan's time (`by_tree`).
#[cfg(target_arch = "x86_64")]
macro_rules! below_lanes {
    ($split:ty, $per_vector:expr, $set1:ident, $load:ident, $cmp:ident, $name:ident) => {
        #[allow(unsafe_code)]
        #[target_feature(enable = "avx512f,avx512bw")]
        pub unsafe fn $name<const L: usize>(split: $split, values: &[$split; L]) -> u64 {
            use std::arch::x86_64::*;
            let split = $set1(split);
            let mut masks = [0u64; 8];
            for (chunk, mask) in masks[..L / $per_vector].iter_mut().enumerate() {
                // SAFETY: `$per_vector` values inside `values`.
                let v = unsafe { $load(values.as_ptr().add(chunk * $per_vector)) };
                *mask = u64::from($cmp::<_CMP_LT_OQ>(split, v));
            }
            join(masks, L / $per_vector, $per_vector)
        }
    };
}

/// The first `count` of `masks` (`bits` bits each; `count * bits` at most 64) as one mask,
/// the first lowest, joined pairwise with the mask registers' unpack instructions.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn join(mut masks: [u64; 8], mut count: usize, mut bits: usize) -> u64 {
    use std::arch::x86_64::*;
    while count > 1 {
        for i in 0..count / 2 {
            let (low, high) = (masks[2 * i], masks[2 * i + 1]);
            masks[i] = match bits {
                8 => u64::from(_mm512_kunpackb(high as u16, low as u16)),
                16 => u64::from(_mm512_kunpackw(high as u32, low as u32)),
                _ => _mm512_kunpackd(high, low),
            };
        }
        count /= 2;
        bits *= 2;
    }
    masks[0]
}

#[cfg(target_arch = "x86_64")]
below_lanes!(
    f64,
    8,
    _mm512_set1_pd,
    _mm512_loadu_pd,
    _mm512_cmp_pd_mask,
    below_lanes_f64
);
#[cfg(target_arch = "x86_64")]
below_lanes!(
    f32,
    16,
    _mm512_set1_ps,
    _mm512_loadu_ps,
    _mm512_cmp_ps_mask,
    below_lanes_f32
);
