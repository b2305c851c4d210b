//! Exact counts of a numeric column's values while it has few of them: counts, flags and codes
//! are then compared as distributions over their values, never through quantile bins that
//! would lump their few values together.

use super::codec::{self, Reader, Write};
use crate::error::Result;

/// Beyond this many distinct values a column is treated as continuous.
pub const MAX_VALUES: usize = 64;
/// Integers 0..SMALL are counted in a table first.
const SMALL: usize = 64;

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
        // Counts, flags and codes are mostly small non-negative integers: those are tallied in
        // a table indexed by value, with no search, and added to the sorted counts at the end.
        let mut small = [0u64; SMALL];
        // Runs of other equal values are common (sorted data): count them without a search.
        let mut last: Option<usize> = None;
        for &value in values {
            let index = value as usize; // saturates: negative values give 0, caught below
            if index < SMALL && index as f64 == value {
                small[index] += 1;
            } else if let Some(i) = last.filter(|&i| self.values[i] == value) {
                self.counts[i] += 1;
            } else if let Some(i) = self.slot(value) {
                self.counts[i] += 1;
                last = Some(i);
            } else {
                return false;
            }
        }
        small
            .iter()
            .enumerate()
            .filter(|&(_, &count)| count > 0)
            .all(|(value, &count)| self.add(value as f64, count))
    }

    /// Adds `other`'s counts; false when the union has more than `MAX_VALUES` values.
    #[must_use]
    pub fn merge(&mut self, other: &Self) -> bool {
        other.iter().all(|(value, count)| self.add(value, count))
    }

    #[must_use]
    fn add(&mut self, value: f64, count: u64) -> bool {
        self.slot(value).map(|i| self.counts[i] += count).is_some()
    }

    /// Where `value` is counted, added with a count of 0 if new; None when there is no room.
    fn slot(&mut self, value: f64) -> Option<usize> {
        // -0.0 is 0.0, as in the small-integer table.
        let value = value + 0.0;
        match self.values.binary_search_by(|v| v.total_cmp(&value)) {
            Ok(i) => Some(i),
            Err(i) if self.values.len() < MAX_VALUES => {
                self.values.insert(i, value);
                self.counts.insert(i, 0);
                Some(i)
            }
            Err(_) => None,
        }
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
    fn small_integers_and_other_values_count_alike() {
        let values = [3.0, -0.0, 0.0, 70.0, 3.0, 2.5, -1.0, 63.0, 64.0, 3.0];
        let mut counts = ValueCounts::default();
        assert!(counts.update(&values));
        let mut one_by_one = ValueCounts::default();
        for value in values {
            assert!(one_by_one.update(&[value]));
        }
        assert_eq!(counts, one_by_one);
        assert_eq!(
            counts.iter().collect::<Vec<_>>(),
            [
                (-1.0, 1),
                (0.0, 2),
                (2.5, 1),
                (3.0, 3),
                (63.0, 1),
                (64.0, 1),
                (70.0, 1)
            ]
        );
        // 60 small integers and 10 others: too many values, found when the table is added.
        let mixed: Vec<f64> = (0..60)
            .map(f64::from)
            .chain((0..10).map(|i| 100.5 + f64::from(i)))
            .collect();
        assert!(!ValueCounts::default().update(&mixed));
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
