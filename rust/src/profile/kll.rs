//! KLL quantile sketch (Karnin, Lang, Liberty 2016), as Apache DataSketches builds it.
//!
//! A stack of compactors: level h holds items that each stand for 2^h items of the stream.
//! Level capacities decay by 2/3 from the top level (k) down, with a floor of 8. Updates land
//! unsorted in level 0; only when the whole sketch is full is the lowest level at capacity
//! compacted: sorted, halved by keeping every other item from a random start, and merged into
//! the level above. Compacting the top level adds a level. Merging stacks the two sketches'
//! levels and runs the same compaction upwards in one pass, so merged sketches keep the error
//! of the smaller k. Items are f64 and must not be NaN.
//!
//! The random start comes from a splitmix64 coin seeded from k, so the same input always
//! gives the same sketch. The coin is not serialized: a sketch read back starts it afresh.

use super::codec::{self, Write as _};
use crate::error::{Error, Result};

/// DataSketches' bounds on k.
const MIN_K: u16 = 8;
/// DataSketches' minimum level width (M): keeps the lowest levels from degenerating.
const MIN_WIDTH: usize = 8;
const FORMAT_VERSION: u8 = 1;

/// A mergeable quantile sketch of f64 values.
#[derive(Clone, Debug)]
pub struct Kll {
    k: u16,
    /// The smallest k among the estimating sketches merged in: it governs the error.
    min_k: u16,
    n: u64,
    /// Exact extremes; meaningless while `n == 0`.
    min: f64,
    max: f64,
    /// Level h holds items of weight 2^h. Level 0 is unsorted, the others are sorted; the top
    /// level is never empty.
    levels: Vec<Vec<f64>>,
    retained: usize,
    /// `total_capacity(k, levels.len())`: once `retained` reaches it, the sketch compacts.
    capacity: usize,
    /// Reused as the target of merges into a level, so steady-state updates never allocate.
    scratch: Vec<f64>,
    coin: Coin,
}

/// The sketch as a weighted sample, for drift metrics and quantile queries.
#[derive(Clone, Debug, PartialEq)]
pub struct SortedView {
    /// Distinct retained values, ascending.
    pub values: Vec<f64>,
    /// For each value, the total weight of items <= it; the last entry is n.
    pub cumulative: Vec<u64>,
}

impl Kll {
    pub const DEFAULT_K: u16 = 200;

    /// An empty sketch; `k` (8..=65535) trades size for accuracy, see `normalized_rank_error`.
    pub fn new(k: u16) -> Result<Self> {
        if k < MIN_K {
            return Err(Error::InvalidArgument(format!(
                "KLL k must be between {MIN_K} and {}, got {k}",
                u16::MAX
            )));
        }
        Ok(Self::from_levels(
            k,
            k,
            0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            vec![Vec::new()],
        ))
    }

    fn from_levels(k: u16, min_k: u16, n: u64, min: f64, max: f64, levels: Vec<Vec<f64>>) -> Self {
        Self {
            k,
            min_k,
            n,
            min,
            max,
            retained: levels.iter().map(Vec::len).sum(),
            capacity: total_capacity(k, levels.len()),
            levels,
            scratch: Vec::new(),
            coin: Coin(u64::from(k)),
        }
    }

    pub fn k(&self) -> u16 {
        self.k
    }

    /// Items seen, including those of merged sketches.
    pub fn n(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn min(&self) -> Option<f64> {
        (!self.is_empty()).then_some(self.min)
    }

    pub fn max(&self) -> Option<f64> {
        (!self.is_empty()).then_some(self.max)
    }

    /// Items held, at most about 3k plus 8 per level.
    pub fn retained(&self) -> usize {
        self.retained
    }

    /// Adds one value, which must not be NaN.
    #[inline]
    pub fn update(&mut self, value: f64) {
        debug_assert!(!value.is_nan(), "KLL items must not be NaN");
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.push(value);
    }

    #[inline]
    fn push(&mut self, value: f64) {
        if self.retained >= self.capacity {
            self.compress_while_updating();
        }
        self.levels[0].push(value);
        self.retained += 1;
        self.n += 1;
    }

    /// Lazy compaction: only the lowest level at capacity is compacted, and only when the
    /// sketch as a whole is full. Some level is at capacity then, since the levels' capacities
    /// sum to the sketch's.
    #[cold]
    fn compress_while_updating(&mut self) {
        let num_levels = self.levels.len();
        if let Some(height) = (0..num_levels)
            .find(|&height| self.levels[height].len() >= level_capacity(self.k, num_levels, height))
        {
            self.compact(height);
        }
    }

    /// Halves level `height` into the one above (adding it when `height` is the top): sorts
    /// it if it is level 0, keeps every other item from a random start, and merges those into
    /// the sorted level above. With an odd count, the first item stays behind.
    fn compact(&mut self, height: usize) {
        if height + 1 == self.levels.len() {
            self.levels.push(Vec::new());
        }
        let (below, above) = self.levels.split_at_mut(height + 1);
        let level = &mut below[height];
        let odd = level.len() % 2;
        if height == 0 {
            level[odd..].sort_unstable_by(f64::total_cmp);
        }
        let half = (level.len() - odd) / 2;
        let start = odd + self.coin.bit();
        for kept in 0..half {
            level[odd + kept] = level[start + 2 * kept];
        }
        merge_sorted(&level[odd..odd + half], &above[0], &mut self.scratch);
        std::mem::swap(&mut above[0], &mut self.scratch);
        level.truncate(odd);
        self.retained -= half;
        self.capacity = total_capacity(self.k, self.levels.len());
    }

    /// Folds `other` in, as DataSketches does: its level 0 goes through the update path, then
    /// the higher levels are merged pairwise and compacted in one pass. The result's error is
    /// that of the smaller k among estimating sketches; its level capacities stay this one's.
    pub fn merge(&mut self, other: &Kll) {
        if other.is_empty() {
            return;
        }
        let n = self.n + other.n;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        for &value in &other.levels[0] {
            self.push(value);
        }
        if other.levels.len() > 1 {
            self.merge_higher_levels(other);
            self.min_k = self.min_k.min(other.min_k);
        }
        self.n = n;
    }

    fn merge_higher_levels(&mut self, other: &Kll) {
        if self.levels.len() < other.levels.len() {
            self.levels.resize_with(other.levels.len(), Vec::new);
        }
        for (mine, theirs) in self.levels.iter_mut().zip(&other.levels).skip(1) {
            merge_sorted(mine, theirs, &mut self.scratch);
            std::mem::swap(mine, &mut self.scratch);
        }
        self.retained = self.levels.iter().map(Vec::len).sum();
        self.capacity = total_capacity(self.k, self.levels.len());
        self.general_compress();
    }

    /// One pass up the levels (including any it adds), compacting each level at capacity
    /// while the sketch as a whole is over capacity. DataSketches proves this ends within
    /// capacity however much was merged in.
    fn general_compress(&mut self) {
        let mut height = 0;
        while height < self.levels.len() {
            let at_capacity =
                self.levels[height].len() >= level_capacity(self.k, self.levels.len(), height);
            if self.retained >= self.capacity && at_capacity {
                self.compact(height);
            }
            height += 1;
        }
        debug_assert!(self.retained <= self.capacity);
    }

    /// The fraction of items <= `value`; 0 for an empty sketch.
    pub fn rank(&self, value: f64) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let weight_at_most: u64 = self
            .levels
            .iter()
            .enumerate()
            .map(|(height, level)| {
                let count = if height == 0 {
                    level.iter().filter(|&&item| item <= value).count()
                } else {
                    level.partition_point(|&item| item <= value)
                };
                (count as u64) << height
            })
            .sum();
        weight_at_most as f64 / self.n as f64
    }

    /// The smallest retained value whose inclusive rank reaches `fraction` (DataSketches'
    /// inclusive quantile), except that 0 or below gives the exact min and 1 or above the exact
    /// max. None when the sketch is empty or `fraction` is NaN.
    pub fn quantile(&self, fraction: f64) -> Option<f64> {
        if self.is_empty() || fraction.is_nan() {
            None
        } else if fraction <= 0.0 {
            Some(self.min)
        } else if fraction >= 1.0 {
            Some(self.max)
        } else {
            self.sorted_view().quantile(fraction)
        }
    }

    /// The retained items merged into distinct ascending values with cumulative weights.
    pub fn sorted_view(&self) -> SortedView {
        let mut weighted: Vec<(f64, u64)> = Vec::with_capacity(self.retained);
        for (height, level) in self.levels.iter().enumerate() {
            weighted.extend(level.iter().map(|&value| (value, 1u64 << height)));
        }
        weighted.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut view = SortedView {
            values: Vec::with_capacity(weighted.len()),
            cumulative: Vec::with_capacity(weighted.len()),
        };
        let mut total = 0;
        for (value, weight) in weighted {
            total += weight;
            match (view.values.last(), view.cumulative.last_mut()) {
                (Some(&last), Some(cumulative)) if last == value => *cumulative = total,
                _ => {
                    view.values.push(value);
                    view.cumulative.push(total);
                }
            }
        }
        view
    }

    /// DataSketches' a-priori bound on the error of a single rank or quantile query, at 99%
    /// confidence (an empirical fit): about 1.33% at k = 200.
    pub fn normalized_rank_error(&self) -> f64 {
        2.296 / f64::from(self.min_k).powf(0.9723)
    }

    /// The same bound for every bucket of a PMF at once (double-sided): about 1.65% at k = 200.
    pub fn normalized_pmf_error(&self) -> f64 {
        2.446 / f64::from(self.min_k).powf(0.9433)
    }

    /// Version, k, min k and n; then, unless empty, min, max, the level sizes and the items
    /// level by level. About 5 KB at k = 200, whatever n is.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(FORMAT_VERSION);
        out.put_u16(self.k);
        out.put_u16(self.min_k);
        out.put_u64(self.n);
        if self.is_empty() {
            return;
        }
        out.put_f64(self.min);
        out.put_f64(self.max);
        out.put_u8(u8::try_from(self.levels.len()).expect("n < 2^64 bounds the levels to 64"));
        for level in &self.levels {
            out.put_u32(u32::try_from(level.len()).expect("a level holds at most 3k items"));
        }
        for &item in self.levels.iter().flatten() {
            out.put_f64(item);
        }
    }

    /// Reads what `write` wrote, checking every invariant the sketch relies on.
    pub fn read(reader: &mut codec::Reader<'_>) -> Result<Self> {
        let version = reader.u8("KLL format version")?;
        if version != FORMAT_VERSION {
            return Err(codec::corrupt(format!(
                "unknown KLL format version {version}"
            )));
        }
        let k = reader.u16("KLL k")?;
        let min_k = reader.u16("KLL min k")?;
        let n = reader.u64("KLL n")?;
        if k < MIN_K {
            return Err(codec::corrupt(format!("KLL k {k} is below {MIN_K}")));
        }
        if n == 0 {
            if min_k != k {
                return Err(codec::corrupt(format!(
                    "empty KLL sketch has min k {min_k} != k {k}"
                )));
            }
            return Self::new(k);
        }
        let min = reader.f64("KLL min")?;
        let max = reader.f64("KLL max")?;
        let sizes = read_level_sizes(reader, k, n)?;
        let mut levels = Vec::with_capacity(sizes.len());
        for (height, &size) in sizes.iter().enumerate() {
            let what = format!("KLL level {height} items");
            let bytes = reader.take(size.saturating_mul(8), &what)?;
            levels.push(
                bytes
                    .chunks_exact(8)
                    .map(|item| f64::from_le_bytes(to_array(item)))
                    .collect(),
            );
        }
        let sketch = Self::from_levels(k, min_k, n, min, max, levels);
        sketch.validate()?;
        Ok(sketch)
    }

    /// The invariants `read` cannot check before allocating.
    fn validate(&self) -> Result<()> {
        if !(MIN_K..=self.k).contains(&self.min_k) {
            return Err(codec::corrupt(format!(
                "KLL min k {} is outside {MIN_K}..={}",
                self.min_k, self.k
            )));
        }
        if self.min.is_nan() || self.max.is_nan() || self.min > self.max {
            return Err(codec::corrupt(format!(
                "KLL min {} and max {} are inconsistent",
                self.min, self.max
            )));
        }
        let mut weight = 0u64;
        for (height, level) in self.levels.iter().enumerate() {
            self.validate_level(height, level)?;
            weight = (level.len() as u64)
                .checked_mul(1 << height)
                .and_then(|level_weight| weight.checked_add(level_weight))
                .ok_or_else(|| codec::corrupt("KLL level weights overflow"))?;
        }
        if weight != self.n {
            return Err(codec::corrupt(format!(
                "KLL levels weigh {weight} items but n is {}",
                self.n
            )));
        }
        if self.levels.len() == 1 {
            let exact_min = self.levels[0].iter().copied().fold(f64::INFINITY, f64::min);
            let exact_max = self.levels[0]
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max);
            if exact_min != self.min || exact_max != self.max {
                return Err(codec::corrupt("exact KLL sketch has a wrong min or max"));
            }
        }
        Ok(())
    }

    fn validate_level(&self, height: usize, level: &[f64]) -> Result<()> {
        if let Some(item) = level
            .iter()
            .find(|&&item| !(self.min..=self.max).contains(&item))
        {
            return Err(codec::corrupt(format!(
                "KLL level {height} holds {item}, outside min {} and max {}",
                self.min, self.max
            )));
        }
        if height > 0 && level.windows(2).any(|pair| pair[1] < pair[0]) {
            return Err(codec::corrupt(format!("KLL level {height} is not sorted")));
        }
        Ok(())
    }
}

/// The level sizes, refused when they cannot belong to a sketch of this k and n.
fn read_level_sizes(reader: &mut codec::Reader<'_>, k: u16, n: u64) -> Result<Vec<usize>> {
    let num_levels = usize::from(reader.u8("KLL level count")?);
    // The top level is never empty and weighs 2^(levels - 1) per item.
    let max_levels = (u64::BITS - n.leading_zeros()) as usize;
    if !(1..=max_levels).contains(&num_levels) {
        return Err(codec::corrupt(format!(
            "KLL level count {num_levels} is outside 1..={max_levels} for n = {n}"
        )));
    }
    let mut sizes = Vec::with_capacity(num_levels);
    for height in 0..num_levels {
        sizes.push(reader.u32(&format!("KLL level {height} size"))? as usize);
    }
    let retained: usize = sizes.iter().sum();
    let capacity = total_capacity(k, num_levels);
    if retained > capacity {
        return Err(codec::corrupt(format!(
            "KLL sketch retains {retained} items, over its capacity of {capacity}"
        )));
    }
    if sizes.last() == Some(&0) {
        return Err(codec::corrupt("KLL top level is empty"));
    }
    Ok(sizes)
}

fn to_array(bytes: &[u8]) -> [u8; 8] {
    let mut array = [0; 8];
    array.copy_from_slice(bytes);
    array
}

impl PartialEq for Kll {
    /// Same parameters and the same items in the same levels; the coin and buffers aside.
    fn eq(&self, other: &Self) -> bool {
        self.k == other.k
            && self.min_k == other.min_k
            && self.n == other.n
            && self.min() == other.min()
            && self.max() == other.max()
            && self.levels == other.levels
    }
}

impl SortedView {
    /// The smallest value whose cumulative weight reaches `fraction` of the total (inclusive
    /// rank), `fraction` clamped to [0, 1]; None when the view is empty.
    pub fn quantile(&self, fraction: f64) -> Option<f64> {
        let total = *self.cumulative.last()?;
        let wanted = (fraction.clamp(0.0, 1.0) * total as f64).ceil() as u64;
        let index = self.cumulative.partition_point(|&weight| weight < wanted);
        self.values.get(index).or(self.values.last()).copied()
    }
}

/// DataSketches' capacity of level `height` in a sketch of `num_levels` levels: k·(2/3)^depth
/// rounded, with depth counted down from the top, and never below `MIN_WIDTH`.
fn level_capacity(k: u16, num_levels: usize, height: usize) -> usize {
    decayed_width(k, num_levels - height - 1).max(MIN_WIDTH)
}

fn total_capacity(k: u16, num_levels: usize) -> usize {
    (0..num_levels)
        .map(|height| level_capacity(k, num_levels, height))
        .sum()
}

/// round(k·(2/3)^depth) in integers, in steps of at most 30 levels so that 2k·2^depth and
/// 3^depth stay within u64 (by then the width is 0 for any u16 k).
fn decayed_width(k: u16, mut depth: usize) -> usize {
    let mut width = u64::from(k);
    loop {
        let step = depth.min(30);
        // Doubling before the division and halving after it rounds to nearest.
        width = (((width << 1) << step) / 3u64.pow(step as u32) + 1) >> 1;
        depth -= step;
        if depth == 0 {
            return width as usize;
        }
    }
}

/// Merges two ascending slices into `out`, replacing its contents.
fn merge_sorted(a: &[f64], b: &[f64], out: &mut Vec<f64>) {
    out.clear();
    out.reserve(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
}

/// splitmix64: a reproducible coin that needs no global state.
#[derive(Clone, Debug)]
struct Coin(u64);

impl Coin {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn bit(&mut self) -> usize {
        (self.next_u64() >> 63) as usize
    }
}
