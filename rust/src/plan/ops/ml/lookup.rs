//! Exact-match lookups shared by the category operators (OneHotEncoder, LabelEncoder).
//!
//! Numeric keys are sorted once at build time and found by binary search: no hashing per
//! element, and a few comparisons for the category counts models have. String elements are
//! codes into a table; each table entry that occurs is looked up once and each element then
//! costs one array read.

use std::collections::HashMap;

use super::NodeName;
use crate::error::Result;
use crate::plan::tensor::Strings;

/// Numeric keys mapped to indices.
#[derive(Debug)]
pub(super) struct SortedKeys<K> {
    keys: Vec<K>,
    indices: Vec<u32>,
}

impl<K: Ord + Copy> SortedKeys<K> {
    /// `pairs` are (key, index); of repeated keys the first pair counts, so callers that want
    /// the last occurrence pass the pairs reversed.
    pub fn new(pairs: impl Iterator<Item = (K, u32)>) -> Self {
        let mut pairs: Vec<(K, u32)> = pairs.collect();
        // Stable: of equal keys the earliest pair comes first, and `dedup` keeps it.
        pairs.sort_by_key(|&(key, _)| key);
        pairs.dedup_by_key(|&mut (key, _)| key);
        let (keys, indices) = pairs.into_iter().unzip();
        Self { keys, indices }
    }

    pub fn get(&self, key: K) -> Option<u32> {
        self.keys
            .binary_search(&key)
            .ok()
            .map(|position| self.indices[position])
    }
}

/// A float32 key as bits, with -0.0 equal to 0.0 and every NaN equal to every other (as
/// onnxruntime's LabelEncoder hashes them).
pub(super) fn f32_key(x: f32) -> u32 {
    if x == 0.0 {
        0
    } else if x.is_nan() {
        f32::NAN.to_bits()
    } else {
        x.to_bits()
    }
}

/// [`f32_key`] for float64.
pub(super) fn f64_key(x: f64) -> u64 {
    if x == 0.0 {
        0
    } else if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        x.to_bits()
    }
}

/// The position of every value in a list, for a model's string categories or keys.
///
/// `first_wins` picks which occurrence of a repeated string counts (onnxruntime's LabelEncoder
/// keeps the first, its OneHotEncoder and LabelEncoder-1 the last).
pub(crate) fn string_positions(values: &[String], first_wins: bool) -> HashMap<String, u32> {
    let mut map = HashMap::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let i = i as u32;
        if first_wins {
            map.entry(value.clone()).or_insert(i);
        } else {
            map.insert(value.clone(), i);
        }
    }
    map
}

/// Check that a list of `count` keys or categories can be indexed by u32 with room for one
/// extra index (the default or "unknown").
pub(super) fn check_count(node: &NodeName, count: usize, what: &str) -> Result<()> {
    if count >= u32::MAX as usize {
        return Err(node.unsupported(format_args!("{count} {what}")));
    }
    Ok(())
}

/// Above this many table entries per element, one memo slot per table entry would cost more
/// than it saves, and distinct codes are memoised in a map instead.
const DENSE_ENTRIES_PER_ELEMENT: usize = 4;

/// `lookup` of every element's string, calling `lookup` once per distinct table entry that
/// occurs. `lookup` must return less than `u32::MAX`.
pub(crate) fn map_strings(
    node: &NodeName,
    strings: &Strings,
    mut lookup: impl FnMut(&str) -> u32,
) -> Result<Vec<u32>> {
    const UNSEEN: u32 = u32::MAX;
    let table = &strings.table;
    let bad_code = |code: u32| {
        node.error(format_args!(
            "string code {code} is outside its table of {} values",
            table.len()
        ))
    };
    let mut out = Vec::with_capacity(strings.codes.len());
    if table.len() <= DENSE_ENTRIES_PER_ELEMENT * strings.codes.len() + 64 {
        let mut memo = vec![UNSEEN; table.len()];
        for &code in &strings.codes {
            let slot = memo.get_mut(code as usize).ok_or_else(|| bad_code(code))?;
            if *slot == UNSEEN {
                *slot = lookup(&table[code as usize]);
            }
            out.push(*slot);
        }
    } else {
        let mut memo: HashMap<u32, u32> = HashMap::new();
        for &code in &strings.codes {
            let found = match memo.get(&code) {
                Some(&found) => found,
                None => {
                    let value = table.get(code as usize).ok_or_else(|| bad_code(code))?;
                    let found = lookup(value);
                    memo.insert(code, found);
                    found
                }
            };
            out.push(found);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn node() -> NodeName {
        NodeName("ai.onnx.ml:Test node 'n'".into())
    }

    #[test]
    fn sorted_keys_keep_the_first_of_repeated_keys() {
        let keys = SortedKeys::new([5i64, -1, 5, 9].into_iter().zip(0..));
        assert_eq!(keys.get(5), Some(0));
        assert_eq!(keys.get(-1), Some(1));
        assert_eq!(keys.get(9), Some(3));
        assert_eq!(keys.get(4), None);
        let last = SortedKeys::new([5i64, -1, 5].into_iter().zip(0..3).rev());
        assert_eq!(last.get(5), Some(2));
    }

    #[test]
    fn float_keys_equate_zeros_and_nans() {
        assert_eq!(f32_key(-0.0), f32_key(0.0));
        assert_eq!(f32_key(f32::NAN), f32_key(-f32::NAN));
        assert_ne!(f32_key(1.0), f32_key(-1.0));
        assert_eq!(f64_key(-0.0), f64_key(0.0));
        assert_eq!(
            f64_key(f64::NAN),
            f64_key(f64::from_bits(0x7ff0_0000_0000_0001))
        );
    }

    #[test]
    fn each_table_entry_is_looked_up_once() {
        for table_len in [3, 10_000] {
            let mut table: Vec<String> = (0..table_len).map(|i| format!("s{i}")).collect();
            table[2] = "b".into();
            let strings = Strings {
                table: Arc::new(table),
                codes: vec![2, 0, 2, 2, 0],
            };
            let mut calls = Vec::new();
            let out = map_strings(&node(), &strings, |s| {
                calls.push(s.to_owned());
                s.len() as u32
            })
            .unwrap();
            assert_eq!(out, [1, 2, 1, 1, 2]);
            assert_eq!(calls, ["b", "s0"]);
        }
    }

    #[test]
    fn a_code_outside_the_table_is_an_error() {
        for table_len in [1, 10_000] {
            let strings = Strings {
                table: Arc::new(vec!["a".into(); table_len]),
                codes: vec![0, 20_000],
            };
            let err = map_strings(&node(), &strings, |_| 0).unwrap_err();
            assert!(err.to_string().contains("string code 20000"), "{err}");
        }
    }
}
