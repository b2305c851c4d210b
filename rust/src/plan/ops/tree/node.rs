//! The node every tree is laid out in (see `layout`): a split, a `key` packing feature, mode
//! and missing flag, and the index of the true child (the false child follows it). Leaves and
//! `Member` branches keep an index in their split's NaN payload.

use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
use super::blocks::Blocks;
use super::ensemble::Mode;
use super::layout::{Columns, Forest, Tree};
use crate::plan::isa::{self, Isa};

/// A split value type nodes can hold: f32 or f64.
pub trait Split: Copy + PartialOrd + Send + Sync + 'static {
    /// The largest slot a NaN payload can carry.
    const MAX_SLOT: u32;
    /// The value; for f32 only called on values that are exactly representable.
    fn from_f64(value: f64) -> Self;
    /// A branch's f64 split (or set member) in this type such that, for every input value
    /// this type holds exactly, comparing with `mode` against the result decides as comparing
    /// against `value` in f64 (see `narrow_f32`).
    fn narrow(value: f64, mode: Mode) -> Self;
    /// A NaN whose payload is `slot` (at most `MAX_SLOT`).
    fn slot_nan(slot: u32) -> Self;
    /// The payload of a NaN made by `slot_nan`.
    fn slot(self) -> u32;
    fn is_nan(self) -> bool;
    /// Bits for comparing the shapes of trees.
    fn bits(self) -> u64;
    /// Bit `lane` set where `self < values[lane]` (`word::below_lanes_f64`).
    ///
    /// # Safety
    /// The CPU has AVX-512 F and BW; `L` is a multiple of 16 and at most 64.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    unsafe fn below_lanes<const L: usize>(self, values: &[Self; L]) -> u64;
    /// The vector walk (`wide`) for forests of this split type whose branches all compare
    /// with mode `MODE` (see `mode_code`), if there is one for `isa`.
    fn wide<const MODE: u32, const MISSING: bool>(_isa: Isa) -> Option<WideWalk<Self>> {
        None
    }
    /// The fused walk `walk` (`FusedWalk`) for forests of this split type whose branches all
    /// compare with mode `MODE`, if there is one.
    fn fused_sums<const MODE: u32, const MISSING: bool>(
        _walk: FusedWalk,
    ) -> Option<FusedSums<Self>> {
        None
    }
    /// `Forest::packed` for the vector walk, if it reads one.
    fn pack(_forest: &Forest<Self>) -> Vec<u64> {
        Vec::new()
    }
    /// `Forest::blocks`, for forests of this split type that the block walk can take.
    #[cfg(target_arch = "x86_64")]
    fn blocks(_forest: &Forest<Self>) -> Option<Blocks> {
        None
    }
    /// The block walk (`Blocks::sums`) of a forest with blocks over the tile `x`, as many rows
    /// as `scores` holds; false if it does not take them. `missing`: whether `x` may hold a NaN.
    #[cfg(target_arch = "x86_64")]
    fn block_sums<X: Copy + Into<Self>>(
        _forest: &Forest<Self>,
        _x: &[X],
        _width: usize,
        _missing: bool,
        _columns: Columns,
        _scores: &mut [f64],
    ) -> bool {
        false
    }
}

/// `wide::leaves`: (forest, tree, rows, width, leaf slots out) -> rows done.
pub type WideWalk<T> = fn(&Forest<T>, &Tree, &[T], usize, &mut [u32]) -> usize;

/// `wide32::sums`, `scalar32::sums`: (forest, tree index, tile, width, columns, scores to
/// add to) -> rows done.
pub type FusedSums<T> = fn(&Forest<T>, usize, &[T], usize, Columns, &mut [f64]) -> usize;

/// The walks that add a random forest's leaf weights into the scores as they go
/// (`evaluate::sum_leaves`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FusedWalk {
    /// `wide32::sums`: eight rows to an AVX-512 vector, node words and values gathered; the
    /// tile row-major.
    Gathers,
    /// `scalar32::sums`: 32 rows in flight, scalar loads; the tile by column
    /// (`scalar32::columns`).
    Chains,
    /// `Chains` from the nodes that `top::Tops::exits` finds 32 rows at depth `top::LEVELS`
    /// with AVX-512 compares.
    TopChains,
    /// `blocks::Blocks::sums`: four levels a step with AVX-512 compares on 16-bit ranks;
    /// `TopChains` for forests without blocks.
    Blocks,
}

impl FusedWalk {
    /// The walk for `isa` on this CPU: `Gathers` on Intel CPUs with AVX-512 (where `wide32`
    /// was tuned), `TopChains` on other CPUs with AVX-512 (on AMD EPYC, Zen 4, `Chains` ran
    /// 1.9x faster than `Gathers`, and the vector tops faster again), else `Chains`, which
    /// needs no vector instructions. `EDGEWISE_TREE_WALK=gathers|chains|tops` overrides the
    /// choice (never below AVX-512 to a walk that needs it), for comparing the walks on one
    /// machine.
    pub fn for_isa(isa: Isa) -> FusedWalk {
        static PREFERRED: OnceLock<FusedWalk> = OnceLock::new();
        let preferred = *PREFERRED.get_or_init(|| match std::env::var("EDGEWISE_TREE_WALK") {
            Ok(walk) if walk == "chains" => FusedWalk::Chains,
            Ok(walk) if walk == "gathers" => FusedWalk::Gathers,
            Ok(walk) if walk == "tops" => FusedWalk::TopChains,
            Ok(walk) if walk == "blocks" => FusedWalk::Blocks,
            _ if isa::is_intel() => FusedWalk::Gathers,
            _ => FusedWalk::Blocks,
        });
        if isa >= Isa::Avx512 {
            preferred
        } else {
            FusedWalk::Chains
        }
    }

    /// The walks this CPU can run.
    #[cfg(test)]
    pub fn available() -> Vec<FusedWalk> {
        let mut walks = vec![FusedWalk::Chains];
        if Isa::Avx512.supported() {
            walks.extend([FusedWalk::Gathers, FusedWalk::TopChains, FusedWalk::Blocks]);
        }
        walks
    }
}

impl Split for f64 {
    const MAX_SLOT: u32 = u32::MAX;
    fn from_f64(value: f64) -> Self {
        value
    }
    fn narrow(value: f64, _mode: Mode) -> Self {
        value
    }
    fn slot_nan(slot: u32) -> Self {
        f64::from_bits(0x7FF8_0000_0000_0000 | u64::from(slot))
    }
    #[inline(always)]
    fn slot(self) -> u32 {
        self.to_bits() as u32
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        self.is_nan()
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    #[inline(always)]
    unsafe fn below_lanes<const L: usize>(self, values: &[Self; L]) -> u64 {
        // SAFETY: as the caller promised.
        unsafe { super::word::below_lanes_f64(self, values) }
    }
    #[cfg(target_arch = "x86_64")]
    fn wide<const MODE: u32, const MISSING: bool>(isa: Isa) -> Option<WideWalk<Self>> {
        (isa >= Isa::Avx512).then_some(super::wide::leaves::<MODE, MISSING>)
    }
}

impl Split for f32 {
    /// A quiet float32 NaN has 22 free payload bits.
    const MAX_SLOT: u32 = (1 << 22) - 1;
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    fn narrow(value: f64, mode: Mode) -> Self {
        narrow_f32(value, mode)
    }
    fn slot_nan(slot: u32) -> Self {
        f32::from_bits(0x7FC0_0000 | slot)
    }
    #[inline(always)]
    fn slot(self) -> u32 {
        self.to_bits() & Self::MAX_SLOT
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        self.is_nan()
    }
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    #[inline(always)]
    unsafe fn below_lanes<const L: usize>(self, values: &[Self; L]) -> u64 {
        // SAFETY: as the caller promised.
        unsafe { super::word::below_lanes_f32(self, values) }
    }
    #[cfg(target_arch = "x86_64")]
    fn wide<const MODE: u32, const MISSING: bool>(isa: Isa) -> Option<WideWalk<Self>> {
        (isa >= Isa::Avx512).then_some(super::wide32::leaves::<MODE, MISSING>)
    }
    fn fused_sums<const MODE: u32, const MISSING: bool>(
        walk: FusedWalk,
    ) -> Option<FusedSums<Self>> {
        match walk {
            FusedWalk::Chains => Some(super::scalar32::sums::<MODE, MISSING, false>),
            #[cfg(target_arch = "x86_64")]
            FusedWalk::Gathers => {
                (Isa::Avx512.supported()).then_some(super::wide32::sums::<MODE, MISSING>)
            }
            #[cfg(target_arch = "x86_64")]
            FusedWalk::TopChains | FusedWalk::Blocks => {
                (Isa::Avx512.supported()).then_some(super::scalar32::sums::<MODE, MISSING, true>)
            }
            #[cfg(not(target_arch = "x86_64"))]
            FusedWalk::Gathers | FusedWalk::TopChains | FusedWalk::Blocks => None,
        }
    }
    #[cfg(target_arch = "x86_64")]
    fn blocks(forest: &Forest<Self>) -> Option<Blocks> {
        Blocks::new(forest)
    }
    #[cfg(target_arch = "x86_64")]
    fn block_sums<X: Copy + Into<Self>>(
        forest: &Forest<Self>,
        x: &[X],
        width: usize,
        missing: bool,
        columns: Columns,
        scores: &mut [f64],
    ) -> bool {
        let (Some(blocks), leaves) = (forest.blocks(), &forest.leaves) else {
            return false;
        };
        if !leaves.fused_fit(columns) {
            return false;
        }
        blocks.sums(x, width, missing, columns, &leaves.values, scores);
        true
    }
    /// Empty also if a leaf's slot is out of `forest.leaves` (the fused walks add by it).
    fn pack(forest: &Forest<Self>) -> Vec<u64> {
        let slots = forest.leaves.slots();
        if (forest.nodes.iter()).any(|n| n.is_leaf() && n.split.slot() as usize >= slots) {
            return Vec::new();
        }
        let trees = forest.trees.iter();
        (trees.flat_map(|t| forest.nodes[t.start..][..t.len].iter().enumerate()))
            .map(|(index, node)| super::packed::pack(node, index))
            .collect::<Option<Vec<u64>>>()
            .unwrap_or_default()
    }
}

/// The float32 split that decides as the f64 split `t` does for every float32 input `x`
/// (scikit-learn's trees compare float32 features with float64 thresholds):
/// `x <= t` and `x > t` hold exactly when they hold against the largest float32 at most `t`;
/// `x < t` and `x >= t` against the smallest float32 at least `t` (both may be infinite:
/// below `-f32::MAX` only `-inf` is at most `t`). A float32 never equals a `t` it cannot
/// hold, so `Eq`, `Neq` and set members that float32 cannot hold become NaN, which equals
/// nothing (`layout` drops such members from sets).
pub fn narrow_f32(t: f64, mode: Mode) -> f32 {
    let near = t as f32;
    let back = f64::from(near);
    if back == t || t.is_nan() {
        return near;
    }
    match mode {
        Mode::Leq | Mode::Gt if back > t => near.next_down(),
        Mode::Lt | Mode::Gte if back < t => near.next_up(),
        Mode::Leq | Mode::Gt | Mode::Lt | Mode::Gte => near,
        Mode::Eq | Mode::Neq | Mode::Member => f32::NAN,
    }
}

pub const FEATURE_MASK: u32 = (1 << 28) - 1;
pub const MODE_SHIFT: u32 = 28;
pub const MISSING_TRUE: u32 = 1 << 31;
/// The mode code of leaves; codes 0-6 follow opset 5's `nodes_modes`.
pub const LEAF: u32 = 7;

pub fn mode_code(mode: Mode) -> u32 {
    match mode {
        Mode::Leq => 0,
        Mode::Lt => 1,
        Mode::Gte => 2,
        Mode::Gt => 3,
        Mode::Eq => 4,
        Mode::Neq => 5,
        Mode::Member => 6,
    }
}

/// `repr(C)`: the vector walk (`wide`) reads the fields at fixed offsets.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Node<T> {
    pub split: T,
    pub key: u32,
    pub left: u32,
}

impl<T: Split> Node<T> {
    #[inline(always)]
    pub fn feature(&self) -> usize {
        (self.key & FEATURE_MASK) as usize
    }

    #[inline(always)]
    pub fn mode(&self) -> u32 {
        (self.key >> MODE_SHIFT) & 7
    }

    #[inline(always)]
    pub fn missing_true(&self) -> bool {
        self.key & MISSING_TRUE != 0
    }

    pub fn is_leaf(&self) -> bool {
        self.mode() == LEAF
    }

    /// Equal as shapes: leaves compare equal whatever their slots.
    pub fn same_shape(&self, other: &Self) -> bool {
        self.key == other.key
            && self.left == other.left
            && (self.is_leaf() || self.split.bits() == other.split.bits())
    }
}

#[cfg(test)]
mod tests {
    use super::super::random_tests::ALL;
    use super::*;

    /// Each narrowed split decides as the double one for float32 inputs around it.
    #[test]
    fn narrowed_float32_splits_decide_as_double_ones() {
        let splits = [
            0.1,
            -0.1,
            1e-50,
            -1e-50,
            1e300,
            -1e300,
            f64::from(f32::MAX) * (1.0 + f64::EPSILON),
            -f64::from(f32::MAX) * (1.0 + f64::EPSILON),
            f64::from(f32::MAX),
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            1.0 + f64::EPSILON,
            f64::NAN,
        ];
        for &t in &splits {
            let near = t as f32;
            let mut inputs = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0];
            inputs.extend([near, near.next_up(), near.next_down(), f32::MAX, -f32::MAX]);
            inputs.extend([near.next_up().next_up(), near.next_down().next_down()]);
            // Every mode but `Member` (sets narrow member by member, as `Eq`).
            for mode in ALL.into_iter().filter(|&m| m != Mode::Member) {
                let narrowed = narrow_f32(t, mode);
                for &x in &inputs {
                    assert_eq!(
                        mode.compare(x, narrowed),
                        mode.compare(f64::from(x), t),
                        "{x:e} {mode:?} {t:e} (narrowed to {narrowed:e})"
                    );
                }
            }
        }
    }
}
