//! Exact counts of a numeric column's values while it has few of them: counts, flags and codes
//! are then compared as distributions over their values, never through quantile bins that
//! would lump their few values together.

use super::codec::{self, Reader, Write};
use crate::error::Result;

/// Beyond this many distinct values a column is treated as continuous.
pub const MAX_VALUES: usize = 64;

/// Sorted distinct values with their counts; `None` in the column once there are too many.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValueCounts {
    values: Vec<f64>,
    counts: Vec<u64>,
}

impl ValueCounts {
    /// Counts `values` (finite); false once the column has more than `MAX_VALUES` values.
    #[must_use]
    pub fn update(&mut self, values: &[f64]) -> bool {
        // Runs of equal values are common (flags, sorted data): count them without a search.
        let mut last: Option<usize> = None;
        for &value in values {
            if let Some(i) = last.filter(|&i| self.values[i] == value) {
                self.counts[i] += 1;
                continue;
            }
            let i = match self.values.binary_search_by(|v| v.total_cmp(&value)) {
                Ok(i) => i,
                Err(i) if self.values.len() < MAX_VALUES => {
                    self.values.insert(i, value);
                    self.counts.insert(i, 0);
                    i
                }
                Err(_) => return false,
            };
            self.counts[i] += 1;
            last = Some(i);
        }
        true
    }

    /// Adds `other`'s counts; false when the union has more than `MAX_VALUES` values.
    #[must_use]
    pub fn merge(&mut self, other: &Self) -> bool {
        for (&value, &count) in other.values.iter().zip(&other.counts) {
            match self.values.binary_search_by(|v| v.total_cmp(&value)) {
                Ok(i) => self.counts[i] += count,
                Err(i) if self.values.len() < MAX_VALUES => {
                    self.values.insert(i, value);
                    self.counts.insert(i, count);
                }
                Err(_) => return false,
            }
        }
        true
    }

    pub fn number_of_values(&self) -> usize {
        self.values.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.values.iter().copied().zip(self.counts.iter().copied())
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u32(self.values.len() as u32);
        for (value, count) in self.iter() {
            out.put_f64(value);
            out.put_u64(count);
        }
    }

    pub fn read(reader: &mut Reader<'_>) -> Result<Self> {
        let len = reader.count(16, "value counts")?;
        if len > MAX_VALUES {
            return Err(codec::corrupt(format!(
                "{len} exact value counts, more than {MAX_VALUES}"
            )));
        }
        let mut counts = Self::default();
        for _ in 0..len {
            let value = reader.f64("value")?;
            let count = reader.u64("value count")?;
            let increasing = counts.values.last().is_none_or(|&last| last < value);
            if !value.is_finite() || !increasing || count == 0 {
                return Err(codec::corrupt(
                    "exact value counts are not finite, distinct, increasing and positive",
                ));
            }
            counts.values.push(value);
            counts.counts.push(count);
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_until_there_are_too_many_values() {
        let mut counts = ValueCounts::default();
        assert!(counts.update(&[1.0, 1.0, 0.0, 3.0, 1.0]));
        assert_eq!(
            counts.iter().collect::<Vec<_>>(),
            [(0.0, 1), (1.0, 3), (3.0, 1)]
        );
        let many: Vec<f64> = (0..MAX_VALUES).map(|i| i as f64 + 0.5).collect();
        let mut other = ValueCounts::default();
        assert!(other.update(&many));
        assert!(!counts.merge(&other));
        assert!(!other.update(&[1e9]));
    }

    #[test]
    fn serialized_counts_are_validated() {
        let mut counts = ValueCounts::default();
        assert!(counts.update(&[2.0, 5.0]));
        let mut out = Vec::new();
        counts.write(&mut out);
        assert_eq!(ValueCounts::read(&mut Reader::new(&out)).unwrap(), counts);
        out[4..12].copy_from_slice(&9.0f64.to_le_bytes()); // now 9.0 before 5.0
        assert!(ValueCounts::read(&mut Reader::new(&out)).is_err());
    }
}
