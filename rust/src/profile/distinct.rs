//! Distinct-value counts: DataSketches' HyperLogLog (the `datasketches` crate is the Apache
//! project's own port, wire-compatible with its Java and C++ sketches).

use std::hash::Hash;

use datasketches::common::NumStdDev;
use datasketches::hll::{HllSketch, HllType, HllUnion};

use super::codec::{self, Reader, Write};
use crate::error::Result;

/// 2^12 buckets of 4 bits: about 1.6% relative standard error in 2 KB or less.
const LG_K: u8 = 12;

#[derive(Clone, Debug)]
pub struct Distinct(HllSketch);

impl Default for Distinct {
    fn default() -> Self {
        Self(HllSketch::new(LG_K, HllType::Hll4).expect("LG_K is within the HLL limits"))
    }
}

impl Distinct {
    pub fn update(&mut self, value: impl Hash) {
        self.0.update(value);
    }

    pub fn merge(&mut self, other: &Self) {
        if other.0.is_empty() {
            return;
        }
        *self = Self::union([&*self, other]);
    }

    /// One sketch of everything `sketches` counted, through a single union: merging many
    /// sketches pairwise would build a union and compact it back once per pair.
    pub fn union<'a>(sketches: impl IntoIterator<Item = &'a Distinct>) -> Self {
        let mut union = HllUnion::new(LG_K).expect("LG_K is within the HLL limits");
        for sketch in sketches {
            if !sketch.0.is_empty() {
                union.update(&sketch.0);
            }
        }
        Self(union.to_sketch(HllType::Hll4))
    }

    pub fn estimate(&self) -> f64 {
        self.0.estimate()
    }

    /// The (lower, upper) bounds at two standard deviations.
    pub fn bounds(&self) -> (f64, f64) {
        (
            self.0.lower_bound(NumStdDev::Two),
            self.0.upper_bound(NumStdDev::Two),
        )
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.0.serialize());
    }

    pub fn read(reader: &mut Reader<'_>) -> Result<Self> {
        let bytes = reader.bytes("distinct-count sketch")?;
        let sketch = HllSketch::deserialize(bytes)
            .map_err(|e| codec::corrupt(format!("distinct-count sketch: {e}")))?;
        Ok(Self(sketch))
    }
}
