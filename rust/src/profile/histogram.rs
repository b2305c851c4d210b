//! A fixed-bin histogram for sensitive numeric columns: the bins do not depend on the data, so
//! no raw value (not even the minimum or maximum) is kept, and histograms merge by adding counts.
//!
//! Bins are geometric: `BINS_PER_OCTAVE` per power of two on each side of zero (edges at
//! ±2^(i / BINS_PER_OCTAVE)), so every bin is about 19% wide relative to its values whatever
//! the scale, plus one bin for values whose magnitude is below 2^-64 (zero).

use std::collections::BTreeMap;

use super::codec::{self, Reader, Write};
use crate::error::Result;

const BINS_PER_OCTAVE: f64 = 4.0;
/// Magnitudes below 2^-64 fall in the zero bin; f64 goes up to 2^1024: bins stay within ±4352.
const SMALLEST_EXPONENT: f64 = -64.0;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// Signed bin index -> count; 0 is the zero bin, ±i the i-th bin above/below zero.
    bins: BTreeMap<i32, u64>,
}

impl Histogram {
    fn bin(value: f64) -> i32 {
        let exponent = value.abs().log2();
        if exponent < SMALLEST_EXPONENT {
            return 0;
        }
        let index = ((exponent - SMALLEST_EXPONENT) * BINS_PER_OCTAVE).floor() as i32 + 1;
        if value < 0.0 {
            -index
        } else {
            index
        }
    }

    /// The (lower, upper) edges of a bin (magnitudes from the lower, included, to the upper).
    pub fn edges(bin: i32) -> (f64, f64) {
        if bin == 0 {
            let edge = SMALLEST_EXPONENT.exp2();
            return (-edge, edge);
        }
        let magnitude = |i: i32| (f64::from(i - 1) / BINS_PER_OCTAVE + SMALLEST_EXPONENT).exp2();
        let (low, high) = (magnitude(bin.abs()), magnitude(bin.abs() + 1));
        if bin < 0 {
            (-high, -low)
        } else {
            (low, high)
        }
    }

    /// Counts finite values.
    pub fn update(&mut self, values: &[f64]) {
        for &value in values {
            self.add(value, 1);
        }
    }

    /// Counts `count` occurrences of the finite `value`.
    pub fn add(&mut self, value: f64, count: u64) {
        *self.bins.entry(Self::bin(value)).or_default() += count;
    }

    pub fn merge(&mut self, other: &Self) {
        for (&bin, &count) in &other.bins {
            *self.bins.entry(bin).or_default() += count;
        }
    }

    /// Bins in increasing order of their values, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.bins.iter().map(|(&bin, &count)| (bin, count))
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u32(self.bins.len() as u32);
        for (bin, count) in self.iter() {
            out.put_u32(bin as u32);
            out.put_u64(count);
        }
    }

    pub fn read(reader: &mut Reader<'_>) -> Result<Self> {
        let len = reader.count(12, "histogram bins")?;
        let mut bins = BTreeMap::new();
        let mut previous = i32::MIN;
        for _ in 0..len {
            let bin = reader.u32("histogram bin")? as i32;
            let count = reader.u64("histogram count")?;
            if bin <= previous || bin.unsigned_abs() > 5000 || count == 0 {
                return Err(codec::corrupt(
                    "histogram bins are not increasing, known and used",
                ));
            }
            previous = bin;
            bins.insert(bin, count);
        }
        Ok(Self { bins })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_falls_inside_its_bin() {
        for value in [
            -1e300, -3.0, -1.0, -1e-30, 0.0, 1e-25, 0.7, 1.0, 1.19, 1.2, 5e12, 1e300,
        ] {
            let (low, high) = Histogram::edges(Histogram::bin(value));
            assert!(
                low <= value && value <= high,
                "{value} not in [{low}, {high}]"
            );
        }
        assert!(Histogram::bin(1.0) < Histogram::bin(1.2));
        assert!(Histogram::bin(-1.2) < Histogram::bin(-1.0));
    }

    #[test]
    fn merged_histograms_add_counts_and_survive_a_round_trip() {
        let mut a = Histogram::default();
        a.update(&[1.0, 2.0, -3.0]);
        let mut b = Histogram::default();
        b.update(&[2.0, 0.0]);
        a.merge(&b);
        let mut whole = Histogram::default();
        whole.update(&[1.0, 2.0, -3.0, 2.0, 0.0]);
        assert_eq!(a, whole);
        let mut out = Vec::new();
        a.write(&mut out);
        assert_eq!(Histogram::read(&mut Reader::new(&out)).unwrap(), a);
        assert!(Histogram::read(&mut Reader::new(&out[..out.len() - 1])).is_err());
    }
}
