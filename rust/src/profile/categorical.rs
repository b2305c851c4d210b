//! The statistics of a string (categorical) or boolean column's non-null values.

use datasketches::frequencies::{ErrorType, FrequentItemsSketch};

use super::codec::{self, Reader, Write};
use super::distinct::Distinct;
use crate::error::{Error, Result};

/// Frequent-items map size: counts stay exact up to 384 distinct categories (DataSketches'
/// map purges at 3/4 of its size), and beyond that the heavy hitters keep counts within
/// `maximum_error`.
const MAP_SIZE: usize = 512;

#[derive(Clone, Debug)]
pub struct CategoricalStats {
    pub distinct: Distinct,
    pub items: Items,
}

/// The categories with their counts: as strings, or for a sensitive column as hashes only.
#[derive(Clone, Debug)]
pub enum Items {
    Plain(FrequentItemsSketch<String>),
    Hashed(FrequentItemsSketch<u64>),
}

/// A category as the profile keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Value(String),
    Hash(u64),
}

impl CategoricalStats {
    pub fn new(sensitive: bool) -> Self {
        let items = if sensitive {
            Items::Hashed(new_sketch())
        } else {
            Items::Plain(new_sketch())
        };
        Self {
            distinct: Distinct::default(),
            items,
        }
    }

    /// Adds `count` occurrences of `value`.
    pub fn update(&mut self, value: &str, count: u64) {
        self.distinct.update(value);
        match &mut self.items {
            Items::Plain(sketch) => sketch.update_with_count_ref(value, count),
            Items::Hashed(sketch) => sketch.update_with_count(pseudonym(value), count),
        }
    }

    pub fn merge(&mut self, other: &Self) -> Result<()> {
        self.distinct.merge(&other.distinct);
        match (&mut self.items, &other.items) {
            (Items::Plain(mine), Items::Plain(theirs)) => mine.merge(theirs),
            (Items::Hashed(mine), Items::Hashed(theirs)) => mine.merge(theirs),
            _ => {
                return Err(Error::InvalidArgument(
                    "a sensitive column cannot be merged with a column that is not".into(),
                ))
            }
        }
        Ok(())
    }

    /// Every category the sketch holds with its estimated count, most frequent first, and
    /// whether the counts are exact (no category was ever purged).
    pub fn categories(&self) -> (Vec<(Category, u64)>, bool) {
        let mut rows: Vec<(Category, u64)> = match &self.items {
            Items::Plain(sketch) => rows(sketch, |item| Category::Value(item.clone())),
            Items::Hashed(sketch) => rows(sketch, |&item| Category::Hash(item)),
        };
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let exact = match &self.items {
            Items::Plain(sketch) => sketch.maximum_error() == 0,
            Items::Hashed(sketch) => sketch.maximum_error() == 0,
        };
        (rows, exact)
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        self.distinct.write(out);
        match &self.items {
            Items::Plain(sketch) => {
                out.put_u8(0);
                out.put_bytes(&sketch.serialize());
            }
            Items::Hashed(sketch) => {
                out.put_u8(1);
                out.put_bytes(&sketch.serialize());
            }
        }
    }

    pub fn read(reader: &mut Reader<'_>) -> Result<Self> {
        let distinct = Distinct::read(reader)?;
        let flag = reader.u8("category kind")?;
        let bytes = reader.bytes("frequent items")?;
        let corrupt =
            |e: datasketches::error::Error| codec::corrupt(format!("frequent items: {e}"));
        let items = match flag {
            0 => Items::Plain(FrequentItemsSketch::deserialize(bytes).map_err(corrupt)?),
            1 => Items::Hashed(FrequentItemsSketch::deserialize(bytes).map_err(corrupt)?),
            other => return Err(codec::corrupt(format!("unknown category kind {other}"))),
        };
        Ok(Self { distinct, items })
    }
}

fn new_sketch<T: Eq + std::hash::Hash>() -> FrequentItemsSketch<T> {
    FrequentItemsSketch::new(MAP_SIZE).expect("MAP_SIZE is a power of two within the limits")
}

fn rows<T: Clone + Eq + std::hash::Hash>(
    sketch: &FrequentItemsSketch<T>,
    category: impl Fn(&T) -> Category,
) -> Vec<(Category, u64)> {
    sketch
        .frequent_items_with_threshold(ErrorType::NoFalseNegatives, 0)
        .iter()
        .map(|row| (category(row.item()), row.estimate()))
        .collect()
}

/// A sensitive category's stand-in: 64-bit FNV-1a of its UTF-8 bytes. Stable across versions
/// and machines, so profiles from anywhere compare; it hides values from whoever reads a
/// profile, but anyone who can guess candidate values can hash them too (see docs/formats.md).
pub fn pseudonym(value: &str) -> u64 {
    value.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_exact_while_categories_fit() {
        let mut stats = CategoricalStats::new(false);
        stats.update("b", 2);
        stats.update("a", 2);
        stats.update("c", 5);
        let (rows, exact) = stats.categories();
        let names: Vec<_> = rows.iter().map(|(c, n)| (c.clone(), *n)).collect();
        assert!(exact);
        assert_eq!(
            names,
            [
                (Category::Value("c".into()), 5),
                (Category::Value("a".into()), 2),
                (Category::Value("b".into()), 2)
            ]
        );
        assert!((stats.distinct.estimate() - 3.0).abs() < 0.5);
    }

    #[test]
    fn sensitive_columns_keep_no_strings() {
        let mut stats = CategoricalStats::new(true);
        stats.update("alice@example.com", 1);
        let mut out = Vec::new();
        stats.write(&mut out);
        assert!(!out.windows(5).any(|w| w == b"alice"));
        let (rows, _) = stats.categories();
        assert_eq!(rows, [(Category::Hash(pseudonym("alice@example.com")), 1)]);
        assert!(stats.merge(&CategoricalStats::new(false)).is_err());
    }
}
