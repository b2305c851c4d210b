//! Distinct-value counts: DataSketches' HyperLogLog (the `datasketches` crate is the Apache
//! project's own port, wire-compatible with its Java and C++ sketches).

use std::hash::Hash;

use datasketches::common::NumStdDev;
use datasketches::hll::{HllSketch, HllType, HllUnion};

use super::codec::{self, Reader, Write};
use crate::error::Result;

/// 2^12 buckets of 4 bits: about 1.6% relative standard error in 2 KB or less.
const LG_K: u8 = 12;

/// Registers the numbers filter needs before it may skip values: the sketch is then surely
/// in its register array mode (DataSketches keeps at most 2^(LG_K - 3) coupons in its list
/// and set modes, where every distinct coupon counts, not just each register's maximum).
const FILTER_FROM: u32 = 1 << (LG_K - 2);

#[derive(Clone, Debug)]
pub struct Distinct {
    sketch: HllSketch,
    /// A lower bound of each HLL register, from the numbers `update_numbers` passed on.
    registers: Vec<u8>,
    /// Registers above zero in `registers`.
    set: u32,
}

impl Default for Distinct {
    fn default() -> Self {
        Self::from_sketch(
            HllSketch::new(LG_K, HllType::Hll4).expect("LG_K is within the HLL limits"),
        )
    }
}

impl Distinct {
    fn from_sketch(sketch: HllSketch) -> Self {
        Self {
            sketch,
            registers: Vec::new(),
            set: 0,
        }
    }

    pub fn update(&mut self, value: impl Hash) {
        self.sketch.update(value);
    }

    /// Adds numbers (-0.0 and 0.0 are one value), each as `update(value.to_bits())` would:
    /// numeric columns hash every value, so this computes the sketch's own coupons
    /// (MurmurHash3 of the 8 bytes, DataSketches' seed), a chunk at a time so that the hashes
    /// pipeline, and passes on only the values that may raise their register, which few do
    /// once a column has many values. The sketch comes out the same, byte for byte (tested):
    /// a skipped value is one the sketch would ignore, and the rest arrive in the same order.
    /// The `datasketches` crate neither takes coupons made outside it nor shows its registers,
    /// and hashing through its streaming hasher, value by value, was a fifth of the time spent
    /// profiling numeric columns.
    pub fn update_numbers(&mut self, values: &[f64]) {
        const CHUNK: usize = 256;
        if self.registers.is_empty() {
            self.registers = vec![0; 1 << LG_K];
        }
        let mut bits = [0u64; CHUNK];
        let mut coupons = [(0u16, 0u8); CHUNK];
        for chunk in values.chunks(CHUNK) {
            for ((number, made), &value) in bits.iter_mut().zip(&mut coupons).zip(chunk) {
                *number = (value + 0.0).to_bits();
                *made = coupon(*number);
            }
            for (&number, &(slot, value)) in bits.iter().zip(&coupons).take(chunk.len()) {
                let known = &mut self.registers[usize::from(slot)];
                if value <= *known && self.set >= FILTER_FROM {
                    continue;
                }
                if value > *known {
                    self.set += u32::from(*known == 0);
                    *known = value;
                }
                self.sketch.update(number);
            }
        }
    }

    pub fn merge(&mut self, other: &Self) {
        if other.sketch.is_empty() {
            return;
        }
        *self = Self::union([&*self, other]);
    }

    /// One sketch of everything `sketches` counted, through a single union: merging many
    /// sketches pairwise would build a union and compact it back once per pair.
    pub fn union<'a>(sketches: impl IntoIterator<Item = &'a Distinct>) -> Self {
        let mut union = HllUnion::new(LG_K).expect("LG_K is within the HLL limits");
        for sketch in sketches {
            if !sketch.sketch.is_empty() {
                union.update(&sketch.sketch);
            }
        }
        Self::from_sketch(union.to_sketch(HllType::Hll4))
    }

    pub fn estimate(&self) -> f64 {
        self.sketch.estimate()
    }

    /// The (lower, upper) bounds at two standard deviations.
    pub fn bounds(&self) -> (f64, f64) {
        (
            self.sketch.lower_bound(NumStdDev::Two),
            self.sketch.upper_bound(NumStdDev::Two),
        )
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.sketch.serialize());
    }

    pub fn read(reader: &mut Reader<'_>) -> Result<Self> {
        let bytes = reader.bytes("distinct-count sketch")?;
        let sketch = HllSketch::deserialize(bytes)
            .map_err(|e| codec::corrupt(format!("distinct-count sketch: {e}")))?;
        Ok(Self::from_sketch(sketch))
    }
}

/// The HLL coupon DataSketches makes of a u64 (hashed as its 8 little-endian bytes with
/// MurmurHash3 x64 128, seed 9001): the register it addresses and the value it offers, one
/// more than the leading zeros of the hash's high half (at most 63).
#[inline(always)]
fn coupon(bits: u64) -> (u16, u8) {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    const SEED: u64 = 9001;
    const LENGTH: u64 = 8;
    let k1 = bits.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    let (mut h1, mut h2) = ((SEED ^ k1) ^ LENGTH, SEED ^ LENGTH);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (h1, h2) = (fmix64(h1), fmix64(h2));
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    let slot = h1 as u16 & ((1 << LG_K) - 1);
    (slot, h2.leading_zeros().min(62) as u8 + 1)
}

#[inline(always)]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts with and without the filter, for streams of 1 to 2M values with repeats.
    #[test]
    fn numbers_give_the_same_sketch_as_plain_updates() {
        let mut state = 7u64;
        for distinct in [1u64, 10, 100, 400, 1_000, 3_000, 20_000, 2_000_000] {
            let (mut fast, mut plain) = (Distinct::default(), Distinct::default());
            for _ in 0..distinct.max(1_000) {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                let value = ((state >> 11) % distinct) as f64 * 0.37;
                fast.update_numbers(&[value]);
                plain.update(value.to_bits());
            }
            assert_eq!(
                fast.sketch.serialize(),
                plain.sketch.serialize(),
                "{distinct} distinct values"
            );
        }
    }

    #[test]
    fn numbers_after_a_merge_give_the_same_sketch() {
        let (mut fast, mut plain) = (Distinct::default(), Distinct::default());
        let mut other = Distinct::default();
        (0..50_000u64).for_each(|i| other.update((i as f64).to_bits()));
        for i in 0..200_000u64 {
            if i == 100_000 {
                fast.merge(&other);
                plain.merge(&other);
            }
            let value = i as f64 * 1.5;
            fast.update_numbers(&[value]);
            plain.update(value.to_bits());
        }
        assert_eq!(fast.sketch.serialize(), plain.sketch.serialize());
    }
}
