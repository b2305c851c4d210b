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
//! As in DataSketches, all levels share one buffer of exactly the sketch's capacity, level 0
//! growing downwards into the free space at its start, and compaction works in place: the
//! sketch stays near 8 bytes per retained item in memory as on disk.
//!
//! The random start comes from a splitmix64 coin seeded from k, so the same input always
//! gives the same sketch. The coin is not serialized: a sketch read back starts it afresh.

use std::cmp::Ordering;

use super::codec::{self, Write as _};
use crate::error::{Error, Result};

/// DataSketches' bounds on k.
const MIN_K: u16 = 8;
/// DataSketches' minimum level width (M): keeps the lowest levels from degenerating.
const MIN_WIDTH: usize = 8;
const FORMAT_VERSION: u8 = 1;
/// Values `update_many` sorts at a time: large enough that sorting dominates the cost of
/// stacking the run onto the sketch, small enough to stay in the L1 cache. The extra error is
/// one compaction per level per run, negligible beside the top levels' once n is a few runs.
const RUN: usize = 2048;

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
    /// Level h is `items[levels[h]..levels[h + 1]]`, items of weight 2^h. Level 0 is unsorted,
    /// the others are sorted, the top one is never empty. `items[..levels[0]]` is free.
    items: Vec<f64>,
    levels: Vec<usize>,
    /// Each level's capacity, which depends on the number of levels: cached because the lowest
    /// levels are compacted every dozen or so updates.
    capacities: Vec<usize>,
    /// Their sum: the length `items` grows to, so that the sketch is full when `levels[0]` is 0.
    capacity: usize,
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
    /// DataSketches' default: ranks within about 1.33%, in about 5 KB.
    pub const DEFAULT_K: u16 = 200;

    /// An empty sketch; `k` (8..=65535) trades size for accuracy, see `normalized_rank_error`.
    pub fn new(k: u16) -> Result<Self> {
        if k < MIN_K {
            return Err(Error::InvalidArgument(format!(
                "KLL k must be between {MIN_K} and {}, got {k}",
                u16::MAX
            )));
        }
        Ok(Self::from_parts(
            k,
            k,
            0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            Vec::new(),
            vec![0, 0],
        ))
    }

    /// A sketch whose buffer holds just its items: it grows to capacity on the next update.
    fn from_parts(
        k: u16,
        min_k: u16,
        n: u64,
        min: f64,
        max: f64,
        items: Vec<f64>,
        levels: Vec<usize>,
    ) -> Self {
        let mut sketch = Self {
            k,
            min_k,
            n,
            min,
            max,
            items,
            levels,
            capacities: Vec::new(),
            capacity: 0,
            coin: Coin(u64::from(k)),
        };
        sketch.set_capacities();
        sketch
    }

    /// Recomputes the capacities after the number of levels changed.
    fn set_capacities(&mut self) {
        self.capacities = capacities(self.k, self.num_levels());
        self.capacity = self.capacities.iter().sum();
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
        self.items.len() - self.levels[0]
    }

    fn num_levels(&self) -> usize {
        self.levels.len() - 1
    }

    /// Level `height`, empty above the top.
    fn level(&self, height: usize) -> &[f64] {
        match self.levels.get(height..height + 2) {
            Some(&[start, end]) => &self.items[start..end],
            _ => &[],
        }
    }

    fn all_levels(&self) -> impl Iterator<Item = &[f64]> {
        self.levels
            .windows(2)
            .map(|bounds| &self.items[bounds[0]..bounds[1]])
    }

    /// Adds one value, which must not be NaN (checked in debug builds). At large n this costs,
    /// amortized, a compaction of level 0 (sorting a dozen or so items) every six updates.
    #[inline]
    pub fn update(&mut self, value: f64) {
        debug_assert!(!value.is_nan(), "KLL items must not be NaN");
        // Plain comparisons (minsd, maxsd): f64::min would also handle NaN, which never comes.
        if value < self.min {
            self.min = value;
        }
        if value > self.max {
            self.max = value;
        }
        self.push(value);
    }

    /// Adds many values (none NaN): the sketch `update` gives item by item, within the same
    /// error bound, at a fraction of the cost. Each full run of `RUN` values is sorted once and
    /// stacked onto level 0, and the levels are then compacted upwards as a merge does, so the
    /// lowest levels halve a whole run at a time instead of a dozen items every few updates.
    pub fn update_many(&mut self, values: &[f64]) {
        let mut runs = values.chunks_exact(RUN);
        let mut buffers = RunBuffers::default();
        for chunk in &mut runs {
            sort_run(
                chunk,
                &mut buffers.run,
                &mut buffers.keys,
                &mut buffers.scratch,
            );
            self.insert_sorted_run(&mut buffers);
        }
        runs.remainder()
            .iter()
            .for_each(|&value| self.update(value));
    }

    /// Stacks `buffers.run`, ascending, onto level 0 and compacts upwards in one pass as
    /// `restack` does (the same items and coin flips), but carrying each level's kept half up
    /// in reused buffers instead of rebuilding the sketch: no allocation unless it gains a level.
    fn insert_sorted_run(&mut self, buffers: &mut RunBuffers) {
        let RunBuffers {
            run,
            carry,
            merged,
            stacked,
            bounds,
            ..
        } = buffers;
        let (Some(&low), Some(&high)) = (run.first(), run.last()) else {
            return;
        };
        self.min = self.min.min(low);
        self.max = self.max.max(high);
        self.n += run.len() as u64;
        let zero = self.levels[0]..self.levels[1];
        sort_ascending(&mut self.items[zero.clone()]);
        carry.clear();
        merge_sorted(&self.items[zero], run, carry);
        let mut retained = self.retained() - self.level(0).len() + carry.len();
        stacked.clear();
        bounds.clear();
        bounds.push(0);
        let mut height = 0;
        while height < self.num_levels() {
            // `carry` becomes level `height` as general_compress would find it.
            if height > 0 {
                merged.clear();
                merge_sorted(carry, self.level(height), merged);
                std::mem::swap(carry, merged);
            }
            if retained >= self.capacity && carry.len() >= self.capacities[height] {
                if height + 1 == self.num_levels() {
                    self.levels.push(self.items.len());
                    self.set_capacities();
                }
                retained -= halve(carry, &mut self.coin, stacked);
            } else {
                stacked.extend_from_slice(carry);
                carry.clear();
            }
            bounds.push(stacked.len());
            height += 1;
        }
        self.install(stacked, bounds);
    }

    /// Takes `stacked` in `bounds` (levels from 0, possibly exactly at capacity) as the
    /// sketch's items, at the end of the buffer.
    fn install(&mut self, stacked: &[f64], bounds: &[usize]) {
        let size = self.capacity.max(stacked.len());
        if self.items.len() != size {
            self.items = vec![0.0; size];
        }
        let start = size - stacked.len();
        self.items[start..].copy_from_slice(stacked);
        self.levels.clear();
        self.levels.extend(bounds.iter().map(|bound| bound + start));
        if self.levels[0] == 0 {
            self.make_room();
        }
    }

    #[inline]
    fn push(&mut self, value: f64) {
        if self.levels[0] == 0 {
            self.make_room();
        }
        self.levels[0] -= 1;
        self.items[self.levels[0]] = value;
        self.n += 1;
    }

    /// Frees at least one slot at the start of the buffer. A sketch at capacity compacts its
    /// lowest level at capacity (DataSketches' lazy compaction), which exists because the
    /// level capacities sum to the sketch's; then the buffer is resized to the capacity, which
    /// a sketch that was just made, read or merged does not have yet.
    #[cold]
    fn make_room(&mut self) {
        while self.retained() >= self.capacity {
            let height = (0..self.num_levels())
                .find(|&height| self.level(height).len() >= self.capacities[height])
                .expect("a sketch at capacity has a level at capacity");
            self.compact(height);
        }
        if self.items.len() != self.capacity {
            self.resize_to_capacity();
        }
    }

    /// Moves the items to the end of a buffer of `capacity` slots, which must hold them.
    fn resize_to_capacity(&mut self) {
        let start = self.capacity - self.retained();
        let mut items = vec![0.0; self.capacity];
        items[start..].copy_from_slice(&self.items[self.levels[0]..]);
        let shift = self.levels[0];
        self.levels
            .iter_mut()
            .for_each(|bound| *bound = *bound - shift + start);
        self.items = items;
    }

    /// Halves level `height` into the one above (adding it when `height` is the top), in place:
    /// sorts it if it is level 0, keeps every other item from a random start, and merges those
    /// into the sorted level above (DataSketches' halve down and merge up; its halving upwards
    /// into an empty level gives the same). With an odd count, the first item stays behind.
    /// The levels below move up into the freed slots, so the free space stays at the start.
    fn compact(&mut self, height: usize) {
        if height + 1 == self.num_levels() {
            self.levels.push(self.items.len());
            self.set_capacities();
        }
        let [start, end, above_end] = [0, 1, 2].map(|offset| self.levels[height + offset]);
        let odd = (end - start) % 2;
        let half = (end - start - odd) / 2;
        let halved = &mut self.items[start + odd..above_end];
        if height == 0 {
            sort_level_zero(&mut halved[..2 * half]);
        }
        let from = self.coin.bit();
        for kept in 0..half {
            halved[kept] = halved[from + 2 * kept];
        }
        merge_in_place(halved, half);
        self.levels[height + 1] -= half;
        if odd == 1 {
            self.items[start + half] = self.items[start];
        }
        self.items
            .copy_within(self.levels[0]..start, self.levels[0] + half);
        self.levels[..=height]
            .iter_mut()
            .for_each(|bound| *bound += half);
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
        for &value in other.level(0) {
            self.push(value);
        }
        if other.num_levels() > 1 {
            self.merge_higher_levels(other);
            self.min_k = self.min_k.min(other.min_k);
        }
        self.n = n;
    }

    fn merge_higher_levels(&mut self, other: &Kll) {
        let num_levels = self.num_levels().max(other.num_levels());
        let mut items = Vec::with_capacity(self.retained() + other.retained());
        items.extend_from_slice(self.level(0));
        let mut levels = vec![0, items.len()];
        for height in 1..num_levels {
            merge_sorted(self.level(height), other.level(height), &mut items);
            levels.push(items.len());
        }
        self.restack(items, levels);
    }

    /// Takes `items` in `levels` (possibly over capacity) as the sketch's and compacts them
    /// back within capacity.
    fn restack(&mut self, items: Vec<f64>, levels: Vec<usize>) {
        self.items = items;
        self.levels = levels;
        self.set_capacities();
        self.general_compress();
        // The buffer is sized for the items stacked in, not the capacity. A sketch left
        // exactly full compacts now, where DataSketches would at its next update.
        self.make_room();
    }

    /// One pass up the levels (including any it adds), compacting each level at capacity
    /// while the sketch as a whole is over capacity. DataSketches proves this ends within
    /// capacity however much was merged in.
    fn general_compress(&mut self) {
        let mut height = 0;
        while height < self.num_levels() {
            if self.retained() >= self.capacity
                && self.level(height).len() >= self.capacities[height]
            {
                self.compact(height);
            }
            height += 1;
        }
    }

    /// The fraction of items <= `value` (DataSketches' inclusive normalized rank); 0 for an
    /// empty sketch.
    pub fn rank(&self, value: f64) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let weight_at_most: u64 = self
            .all_levels()
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
        let mut weighted: Vec<(f64, u64)> = Vec::with_capacity(self.retained());
        for (height, level) in self.all_levels().enumerate() {
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
        out.put_u8(u8::try_from(self.num_levels()).expect("n < 2^64 bounds the levels to 64"));
        for level in self.all_levels() {
            out.put_u32(u32::try_from(level.len()).expect("a level holds at most 3k items"));
        }
        for &item in &self.items[self.levels[0]..] {
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
        let levels = read_level_bounds(reader, k, n)?;
        let retained = levels[levels.len() - 1];
        let bytes = reader.take(retained * 8, "KLL items")?;
        let items = bytes
            .chunks_exact(8)
            .map(|item| f64::from_le_bytes(std::array::from_fn(|byte| item[byte])))
            .collect();
        let sketch = Self::from_parts(k, min_k, n, min, max, items, levels);
        sketch.validate()?;
        Ok(sketch)
    }

    /// The invariants `read` cannot check before it has the items.
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
        for (height, level) in self.all_levels().enumerate() {
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
        if self.num_levels() == 1 {
            let level = self.level(0);
            let exact_min = level.iter().copied().fold(f64::INFINITY, f64::min);
            let exact_max = level.iter().copied().fold(f64::NEG_INFINITY, f64::max);
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

/// The level sizes as boundaries from 0, refused when they cannot belong to a sketch of this
/// k and n. The last boundary is the number of items.
fn read_level_bounds(reader: &mut codec::Reader<'_>, k: u16, n: u64) -> Result<Vec<usize>> {
    let num_levels = usize::from(reader.u8("KLL level count")?);
    // The top level is never empty and weighs 2^(levels - 1) per item.
    let max_levels = (u64::BITS - n.leading_zeros()) as usize;
    if !(1..=max_levels).contains(&num_levels) {
        return Err(codec::corrupt(format!(
            "KLL level count {num_levels} is outside 1..={max_levels} for n = {n}"
        )));
    }
    let mut levels = vec![0];
    let mut top = 0;
    for height in 0..num_levels {
        top = reader.u32(&format!("KLL level {height} size"))? as usize;
        levels.push(levels[height] + top);
    }
    if top == 0 {
        return Err(codec::corrupt("KLL top level is empty"));
    }
    let retained = levels[num_levels];
    let capacity: usize = capacities(k, num_levels).iter().sum();
    if retained > capacity {
        return Err(codec::corrupt(format!(
            "KLL sketch retains {retained} items, over its capacity of {capacity}"
        )));
    }
    Ok(levels)
}

impl PartialEq for Kll {
    /// Same parameters and the same items in the same levels; the coin and free space aside.
    fn eq(&self, other: &Self) -> bool {
        self.k == other.k
            && self.min_k == other.min_k
            && self.n == other.n
            && self.min() == other.min()
            && self.max() == other.max()
            && self.all_levels().eq(other.all_levels())
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

/// DataSketches' level capacities, bottom first: k·(2/3)^depth rounded, with depth counted
/// down from the top level, and never below `MIN_WIDTH`.
fn capacities(k: u16, num_levels: usize) -> Vec<usize> {
    (0..num_levels)
        .rev()
        .map(|depth| decayed_width(k, depth).max(MIN_WIDTH))
        .collect()
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

/// Level 0 fills downwards, so ascending input (timestamps, ids) arrives reversed: the worst
/// case of the insertion sort that short slices get, and cheap to spot.
fn sort_level_zero(items: &mut [f64]) {
    if items.is_sorted() {
        return;
    }
    if items.is_sorted_by(|a, b| a >= b) {
        items.reverse();
    } else {
        sort_ascending(items);
    }
}

fn sort_ascending(items: &mut [f64]) {
    // Items are never NaN, so partial_cmp is total here, and 2.5x faster than total_cmp.
    items.sort_unstable_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
}

/// Sorts a run for `update_many`, several times faster than `sort_ascending` on random data:
/// a radix sort on the 22 bits of the values' order-preserving keys that follow the prefix all
/// keys share, in two counting passes that stay in the L1 cache, then an insertion pass that
/// orders values agreeing on those bits. Past a budget of moves (many values agree: a run of
/// few distinct values, or sorted input with a wide range) the insertion pass hands over to
/// the comparison sort, which is fast on such input.
fn sort_run(values: &[f64], run: &mut Vec<f64>, keys: &mut Vec<u64>, scratch: &mut Vec<u64>) {
    const DIGIT: u32 = 11;
    run.clear();
    if values.is_sorted() {
        run.extend_from_slice(values);
        return;
    }
    keys.clear();
    keys.extend(values.iter().map(|&value| order_key(value)));
    let (low, high) = keys.iter().fold((u64::MAX, 0), |(low, high), &key| {
        (low.min(key), high.max(key))
    });
    let varying = 64 - (low ^ high).leading_zeros();
    if varying > 0 {
        let shift = varying.saturating_sub(2 * DIGIT);
        scratch.clear();
        scratch.resize(keys.len(), 0);
        let mut counts = [[0u32; 1 << DIGIT]; 2];
        let digits = |key: u64| {
            let bits = (key - low) >> shift;
            [
                bits as usize & ((1 << DIGIT) - 1),
                (bits >> DIGIT) as usize & ((1 << DIGIT) - 1),
            ]
        };
        for &key in keys.iter() {
            let [first, second] = digits(key);
            counts[0][first] += 1;
            counts[1][second] += 1;
        }
        for (pass, count) in counts.iter_mut().enumerate() {
            let mut next = 0;
            for slot in count.iter_mut() {
                (*slot, next) = (next, next + *slot);
            }
            for &key in keys.iter() {
                let slot = &mut count[digits(key)[pass]];
                scratch[*slot as usize] = key;
                *slot += 1;
            }
            std::mem::swap(keys, scratch);
        }
    }
    let mut budget = 4 * keys.len();
    for i in 1..keys.len() {
        let (key, mut j) = (keys[i], i);
        while j > 0 && keys[j - 1] > key && budget > 0 {
            keys[j] = keys[j - 1];
            j -= 1;
            budget -= 1;
        }
        keys[j] = key;
        if budget == 0 {
            keys.sort_unstable();
            break;
        }
    }
    run.extend(keys.iter().map(|&key| from_order_key(key)));
}

/// A u64 that orders as the f64 does (for non-NaN values; -0.0 just below 0.0).
fn order_key(value: f64) -> u64 {
    let bits = value.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

fn from_order_key(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    })
}

/// Buffers `update_many` reuses from run to run.
#[derive(Default)]
struct RunBuffers {
    /// The run, sorted.
    run: Vec<f64>,
    keys: Vec<u64>,
    scratch: Vec<u64>,
    /// What a level passes up to the next, then that level with it merged in.
    carry: Vec<f64>,
    merged: Vec<f64>,
    /// The new levels, bottom first, and their bounds.
    stacked: Vec<f64>,
    bounds: Vec<usize>,
}

/// Compacts the ascending `level` as `Kll::compact` does: with an odd count the first item
/// stays behind (appended to `stays`), then every other item from a random start is kept in
/// `level`. Returns how many were kept (the count the sketch loses).
fn halve(level: &mut Vec<f64>, coin: &mut Coin, stays: &mut Vec<f64>) -> usize {
    let odd = level.len() % 2;
    stays.extend_from_slice(&level[..odd]);
    let half = (level.len() - odd) / 2;
    let from = odd + coin.bit();
    for kept in 0..half {
        level[kept] = level[from + 2 * kept];
    }
    level.truncate(half);
    half
}

/// Appends the merge of two ascending slices to `out`.
fn merge_sorted(a: &[f64], b: &[f64], out: &mut Vec<f64>) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let take_a = a[i] <= b[j];
        out.push(if take_a { a[i] } else { b[j] });
        i += usize::from(take_a);
        j += usize::from(!take_a);
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
}

/// Merges `buf[..half]` with the ascending run `buf[2 * half..]` into `buf[half..]`. Writing
/// forwards never overtakes the run being read. Branch-free: on random data, which side comes
/// next is a coin flip.
fn merge_in_place(buf: &mut [f64], half: usize) {
    let (mut a, mut b, mut out) = (0, 2 * half, half);
    while a < half && b < buf.len() {
        let take_a = buf[a] <= buf[b];
        buf[out] = if take_a { buf[a] } else { buf[b] };
        a += usize::from(take_a);
        b += usize::from(!take_a);
        out += 1;
    }
    buf.copy_within(a..half, out);
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

#[cfg(test)]
mod tests {
    use super::*;

    const N: usize = 200_000;

    fn uniform(coin: &mut Coin) -> f64 {
        (coin.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// exp of a normal with sigma 2 (Box-Muller): heavy right tail, dense near 0.
    fn lognormal(coin: &mut Coin) -> f64 {
        let radius = (-2.0 * (1.0 - uniform(coin)).ln()).sqrt();
        (2.0 * radius * (std::f64::consts::TAU * uniform(coin)).cos()).exp()
    }

    fn data(shape: &str, n: usize, seed: u64) -> Vec<f64> {
        let mut coin = Coin(seed);
        (0..n)
            .map(|i| match shape {
                "uniform" => uniform(&mut coin),
                "lognormal" => lognormal(&mut coin),
                "duplicates" => (uniform(&mut coin) * 20.0).floor(),
                "ascending" => i as f64,
                "descending" => (n - i) as f64,
                _ => unreachable!("unknown shape {shape}"),
            })
            .collect()
    }

    fn sketch(k: u16, values: &[f64]) -> Kll {
        let mut sketch = Kll::new(k).unwrap();
        values.iter().for_each(|&value| sketch.update(value));
        sketch
    }

    fn sketch_many(k: u16, values: &[f64]) -> Kll {
        let mut sketch = Kll::new(k).unwrap();
        sketch.update_many(values);
        sketch
    }

    /// The largest |sketch rank - exact rank| over 100 values spread by exact rank.
    fn max_rank_error(sketch: &Kll, values: &[f64]) -> f64 {
        let mut sorted = values.to_vec();
        sorted.sort_unstable_by(f64::total_cmp);
        let n = sorted.len();
        (0..100)
            .map(|i| {
                let value = sorted[i * (n - 1) / 99];
                let exact = sorted.partition_point(|&item| item <= value) as f64 / n as f64;
                (sketch.rank(value) - exact).abs()
            })
            .fold(0.0, f64::max)
    }

    fn round_trip(sketch: &Kll) -> Vec<u8> {
        let mut bytes = Vec::new();
        sketch.write(&mut bytes);
        let mut reader = codec::Reader::new(&bytes);
        assert_eq!(&Kll::read(&mut reader).unwrap(), sketch);
        reader.finish("KLL sketch").unwrap();
        bytes
    }

    const SHAPES: [&str; 5] = [
        "uniform",
        "lognormal",
        "duplicates",
        "ascending",
        "descending",
    ];

    #[test]
    fn rank_error_is_within_the_published_bound() {
        for (seed, shape) in SHAPES.into_iter().enumerate() {
            let values = data(shape, N, seed as u64);
            let sketch = sketch(Kll::DEFAULT_K, &values);
            let error = max_rank_error(&sketch, &values);
            println!(
                "{shape}: max rank error {error:.5}, retained {}",
                sketch.retained()
            );
            assert!(error <= sketch.normalized_rank_error(), "{shape}: {error}");
            assert_eq!(sketch.n(), N as u64);
            sketch.validate().unwrap();
        }
    }

    #[test]
    fn update_many_stays_within_the_published_bound() {
        for (seed, shape) in SHAPES.into_iter().enumerate() {
            for n in [RUN - 1, RUN, 3 * RUN + 5, 20_000, N] {
                let values = data(shape, n, seed as u64);
                let sketch = sketch_many(Kll::DEFAULT_K, &values);
                let error = max_rank_error(&sketch, &values);
                assert!(
                    error <= sketch.normalized_rank_error(),
                    "{shape} {n}: {error}"
                );
                assert_eq!(sketch.n(), n as u64);
                assert_eq!(sketch.min(), values.iter().copied().reduce(f64::min));
                assert_eq!(sketch.max(), values.iter().copied().reduce(f64::max));
                assert!(sketch.retained() <= sketch.capacity);
                sketch.validate().unwrap();
            }
        }
    }

    #[test]
    fn update_many_keeps_small_inputs_exact() {
        let values = data("lognormal", Kll::DEFAULT_K as usize, 3);
        let sketch = sketch_many(Kll::DEFAULT_K, &values);
        assert_eq!(sketch, self::sketch(Kll::DEFAULT_K, &values));
        assert_eq!(max_rank_error(&sketch, &values), 0.0);
    }

    #[test]
    fn sort_run_sorts_every_kind_of_run() {
        let mut coin = Coin(5);
        let mut runs = vec![
            vec![],
            vec![1.5],
            vec![-0.0, 0.0, -0.0, 0.0],
            vec![
                f64::INFINITY,
                -1.0,
                f64::NEG_INFINITY,
                f64::MAX,
                f64::MIN_POSITIVE,
                -0.0,
            ],
            // Values agreeing on their high bits: the insertion pass's budget runs out.
            (0..RUN).map(|_| 1e9 + uniform(&mut coin) * 1e-3).collect(),
            data("descending", RUN, 0),
            data("duplicates", RUN, 1),
        ];
        for shape in ["uniform", "lognormal"] {
            runs.push(
                data(shape, RUN, 2)
                    .into_iter()
                    .map(|value| value - 0.5)
                    .collect(),
            );
        }
        let (mut sorted, mut keys, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
        for run in runs {
            sort_run(&run, &mut sorted, &mut keys, &mut scratch);
            let mut expected = run;
            expected.sort_by(f64::total_cmp);
            // f64 equality: -0.0 and 0.0 may come in either order, as for the sketch.
            assert_eq!(sorted, expected);
        }
    }

    #[test]
    fn bound_matches_datasketches() {
        let sketch = Kll::new(200).unwrap();
        assert!((sketch.normalized_rank_error() - 0.0133).abs() < 0.0001);
        assert!((sketch.normalized_pmf_error() - 0.0165).abs() < 0.0001);
    }

    #[test]
    fn quantiles_track_exact_ranks_and_extremes() {
        for shape in ["uniform", "lognormal"] {
            let values = data(shape, N, 7);
            let sketch = sketch(Kll::DEFAULT_K, &values);
            let mut sorted = values.clone();
            sorted.sort_unstable_by(f64::total_cmp);
            assert_eq!(sketch.min(), sorted.first().copied());
            assert_eq!(sketch.max(), sorted.last().copied());
            assert_eq!(sketch.quantile(0.0), sketch.min());
            assert_eq!(sketch.quantile(1.0), sketch.max());
            assert_eq!(sketch.quantile(-3.0), sketch.min());
            assert_eq!(sketch.quantile(3.0), sketch.max());
            assert_eq!(sketch.quantile(f64::NAN), None);
            for percent in 1..100 {
                let fraction = f64::from(percent) / 100.0;
                let value = sketch.quantile(fraction).unwrap();
                let exact = sorted.partition_point(|&item| item <= value) as f64 / N as f64;
                assert!(
                    (exact - fraction).abs() <= sketch.normalized_rank_error(),
                    "{shape}"
                );
            }
        }
    }

    #[test]
    fn sorted_view_is_distinct_ascending_and_ends_at_n() {
        let sketch = sketch(Kll::DEFAULT_K, &data("duplicates", N, 3));
        let view = sketch.sorted_view();
        assert!(view.values.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(view.cumulative.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(view.values.len(), 20);
        assert_eq!(view.cumulative.last(), Some(&sketch.n()));
    }

    #[test]
    fn merged_sketch_matches_sketch_of_concatenation() {
        let a = data("uniform", N / 2, 11);
        let b = data("lognormal", N / 2, 12);
        let mut merged = sketch(Kll::DEFAULT_K, &a);
        merged.merge(&sketch(Kll::DEFAULT_K, &b));
        let both = [a, b].concat();
        let direct = sketch(Kll::DEFAULT_K, &both);
        assert_eq!(merged.n(), direct.n());
        assert_eq!((merged.min(), merged.max()), (direct.min(), direct.max()));
        let error = max_rank_error(&merged, &both);
        println!("merged: max rank error {error:.5}");
        assert!(error <= merged.normalized_rank_error(), "{error}");
        merged.validate().unwrap();
    }

    #[test]
    fn many_small_sketches_merge_within_the_bound() {
        let values = data("lognormal", 50_000, 21);
        let mut merged = Kll::new(Kll::DEFAULT_K).unwrap();
        for part in values.chunks(1000) {
            merged.merge(&sketch(Kll::DEFAULT_K, part));
        }
        assert_eq!(merged.n(), 50_000);
        let error = max_rank_error(&merged, &values);
        println!("50 merged: max rank error {error:.5}");
        assert!(error <= merged.normalized_rank_error(), "{error}");
        merged.validate().unwrap();
        round_trip(&merged);
    }

    #[test]
    fn updates_after_merges_stay_within_capacity() {
        let mut merged = sketch(Kll::DEFAULT_K, &data("uniform", 30_000, 23));
        merged.merge(&sketch(Kll::DEFAULT_K, &data("uniform", 30_000, 24)));
        round_trip(&merged);
        for value in data("uniform", 30_000, 25) {
            merged.update(value);
            assert!(merged.retained() <= merged.capacity);
        }
        round_trip(&merged);
    }

    #[test]
    fn update_many_after_merges_stays_within_capacity_and_bound() {
        let mut merged = sketch(Kll::DEFAULT_K, &data("uniform", 30_000, 26));
        merged.merge(&sketch(50, &data("lognormal", 30_000, 27)));
        let more = data("uniform", 10 * RUN + 3, 28);
        merged.update_many(&more);
        assert!(merged.retained() <= merged.capacity);
        assert_eq!(merged.items.len(), merged.capacity);
        assert_eq!(merged.n(), 60_000 + more.len() as u64);
        merged.validate().unwrap();
        round_trip(&merged);
    }

    #[test]
    fn merging_empty_sketches_changes_nothing() {
        let full = sketch(Kll::DEFAULT_K, &data("uniform", 10_000, 5));
        let mut merged = full.clone();
        merged.merge(&Kll::new(Kll::DEFAULT_K).unwrap());
        assert_eq!(merged, full);
        let mut from_empty = Kll::new(Kll::DEFAULT_K).unwrap();
        from_empty.merge(&full);
        assert_eq!(from_empty.n(), full.n());
        assert_eq!(
            (from_empty.min(), from_empty.max()),
            (full.min(), full.max())
        );
        from_empty.validate().unwrap();
        let mut empty = Kll::new(Kll::DEFAULT_K).unwrap();
        empty.merge(&Kll::new(Kll::DEFAULT_K).unwrap());
        assert!(empty.is_empty());
    }

    #[test]
    fn merging_different_k_keeps_the_smaller_ks_error() {
        let a = data("uniform", N / 2, 31);
        let b = data("lognormal", N / 2, 32);
        let both = [a.clone(), b.clone()].concat();
        let small = sketch(50, &b);
        let mut large = sketch(200, &a);
        large.merge(&small);
        assert_eq!(large.k(), 200);
        assert_eq!(large.normalized_rank_error(), small.normalized_rank_error());
        assert!(max_rank_error(&large, &both) <= large.normalized_rank_error());
        let mut small_first = small.clone();
        small_first.merge(&sketch(200, &a));
        assert_eq!(small_first.k(), 50);
        assert!(max_rank_error(&small_first, &both) <= small_first.normalized_rank_error());
        round_trip(&large);
        round_trip(&small_first);
    }

    #[test]
    fn doubling_by_self_merge_reaches_huge_n() {
        let values = data("uniform", 10_000, 41);
        let mut sketch = sketch(Kll::DEFAULT_K, &values);
        for _ in 0..45 {
            let copy = sketch.clone();
            sketch.merge(&copy);
        }
        assert_eq!(sketch.n(), 10_000 << 45);
        assert!(max_rank_error(&sketch, &values) <= sketch.normalized_rank_error());
        let bytes = round_trip(&sketch);
        println!(
            "n = {}: {} retained, {} bytes",
            sketch.n(),
            sketch.retained(),
            bytes.len()
        );
        assert!(bytes.len() <= 8192);
    }

    #[test]
    fn serialized_size_stays_small() {
        let sketch = sketch(Kll::DEFAULT_K, &data("uniform", 1_000_000, 51));
        let bytes = round_trip(&sketch);
        println!(
            "k = 200, n = 1M: {} retained, {} bytes",
            sketch.retained(),
            bytes.len()
        );
        assert!(bytes.len() <= 8192);
    }

    #[test]
    fn round_trips_small_sketches() {
        round_trip(&Kll::new(Kll::DEFAULT_K).unwrap());
        round_trip(&sketch(8, &[1.5]));
        round_trip(&sketch(Kll::DEFAULT_K, &data("duplicates", 150, 61)));
        round_trip(&sketch(8, &data("lognormal", 10_000, 62)));
    }

    #[test]
    fn every_truncation_is_refused() {
        let mut bytes = Vec::new();
        sketch(Kll::DEFAULT_K, &data("lognormal", 10_000, 71)).write(&mut bytes);
        for len in 0..bytes.len() {
            assert!(
                Kll::read(&mut codec::Reader::new(&bytes[..len])).is_err(),
                "{len}"
            );
        }
    }

    #[test]
    fn byte_flips_are_refused_or_yield_a_usable_sketch() {
        let mut bytes = Vec::new();
        sketch(64, &data("duplicates", 5_000, 81)).write(&mut bytes);
        let mut coin = Coin(82);
        let mut accepted = 0;
        for _ in 0..3000 {
            let mut flipped = bytes.clone();
            let position = (coin.next_u64() % bytes.len() as u64) as usize;
            flipped[position] ^= 1 << (coin.next_u64() % 8);
            if let Ok(mut sketch) = Kll::read(&mut codec::Reader::new(&flipped)) {
                accepted += 1;
                sketch.quantile(0.5);
                sketch.sorted_view();
                sketch.merge(&sketch.clone());
                (0..1000).for_each(|i| sketch.update(f64::from(i)));
            }
        }
        println!("{accepted} of 3000 flipped sketches passed validation");
    }

    #[test]
    fn corruption_is_named() {
        let mut bytes = Vec::new();
        sketch(Kll::DEFAULT_K, &data("uniform", 1000, 91)).write(&mut bytes);
        let error = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut bytes = bytes.clone();
            edit(&mut bytes);
            Kll::read(&mut codec::Reader::new(&bytes))
                .unwrap_err()
                .to_string()
        };
        assert!(error(&|b| b[1] = 7).contains("KLL k 7 is below 8"));
        assert!(error(&|b| b[3] = 255).contains("min k"));
        assert!(error(&|b| b[5] ^= 1).contains("but n is"));
        assert!(error(&|b| b[29] = 60).contains("level count 60"));
        assert!(error(&|b| b[0] = 9).contains("unknown KLL format version 9"));
        let last = bytes.len() - 8;
        assert!(error(&|b| b[last..].copy_from_slice(&f64::NAN.to_le_bytes())).contains("outside"));
    }

    #[test]
    fn empty_sketch_answers_sensibly() {
        let sketch = Kll::new(Kll::DEFAULT_K).unwrap();
        assert!(sketch.is_empty());
        assert_eq!((sketch.n(), sketch.retained()), (0, 0));
        assert_eq!((sketch.min(), sketch.max()), (None, None));
        assert_eq!(sketch.quantile(0.5), None);
        assert_eq!(sketch.rank(1.0), 0.0);
        assert!(sketch.sorted_view().values.is_empty());
        assert_eq!(sketch.sorted_view().quantile(0.5), None);
    }

    #[test]
    fn one_item_and_all_equal_items() {
        let one = sketch(Kll::DEFAULT_K, &[2.5]);
        for fraction in [0.0, 0.3, 1.0] {
            assert_eq!(one.quantile(fraction), Some(2.5));
        }
        assert_eq!((one.rank(2.5), one.rank(2.4)), (1.0, 0.0));
        assert_eq!(
            one.sorted_view(),
            SortedView {
                values: vec![2.5],
                cumulative: vec![1]
            }
        );
        let equal = sketch(Kll::DEFAULT_K, &vec![7.0; N]);
        assert_eq!(equal.quantile(0.3), Some(7.0));
        assert_eq!((equal.rank(7.0), equal.rank(6.9)), (1.0, 0.0));
        assert_eq!(equal.sorted_view().cumulative, vec![N as u64]);
    }

    #[test]
    fn k_is_bounded_and_k8_works() {
        assert!(matches!(Kll::new(7), Err(Error::InvalidArgument(_))));
        assert!(matches!(Kll::new(0), Err(Error::InvalidArgument(_))));
        let values = data("uniform", N, 101);
        let sketch = sketch(8, &values);
        assert!(max_rank_error(&sketch, &values) <= sketch.normalized_rank_error());
        assert!(Kll::new(u16::MAX).is_ok());
    }

    #[test]
    fn same_input_gives_the_same_sketch() {
        let values = data("lognormal", 50_000, 111);
        assert_eq!(
            sketch(Kll::DEFAULT_K, &values),
            sketch(Kll::DEFAULT_K, &values)
        );
    }

    #[test]
    fn capacities_follow_datasketches() {
        assert_eq!(capacities(200, 1), [200]);
        assert_eq!(capacities(200, 4), [59, 89, 133, 200]);
        assert_eq!(capacities(200, 64)[..52], [MIN_WIDTH; 52]);
        assert_eq!(capacities(u16::MAX, 64)[..30], [MIN_WIDTH; 30]);
    }

    #[test]
    fn memory_is_the_capacity() {
        let sketch = sketch(Kll::DEFAULT_K, &data("uniform", 1_000_000, 131));
        assert_eq!(sketch.items.capacity(), sketch.capacity);
        assert!(
            sketch.capacity <= 3 * 200 + 8 * sketch.num_levels(),
            "{}",
            sketch.capacity
        );
        assert!(sketch.retained() <= sketch.capacity);
    }

    /// `cargo test --release --lib profile::kll -- --ignored --nocapture`
    #[test]
    #[ignore = "timing, run by hand"]
    fn update_throughput() {
        for shape in ["uniform", "ascending"] {
            let values = data(shape, 20_000_000, 121);
            for many in [false, true] {
                let start = std::time::Instant::now();
                let sketch = if many {
                    sketch_many(Kll::DEFAULT_K, &values)
                } else {
                    sketch(Kll::DEFAULT_K, &values)
                };
                let seconds = start.elapsed().as_secs_f64() / values.len() as f64;
                println!(
                    "{shape} many={many}: {:.1} ns/item, {:.1} M items/s, error {:.4}",
                    seconds * 1e9,
                    1e-6 / seconds,
                    max_rank_error(&sketch, &values)
                );
                assert_eq!(sketch.n(), values.len() as u64);
            }
        }
    }
}
