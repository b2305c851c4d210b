//! The statistics of a numeric (or temporal) column's non-null values.

use std::borrow::Cow;

use super::codec::{self, Reader, Write};
use super::distinct::Distinct;
use super::histogram::Histogram;
use super::kll::Kll;
use super::moments::{lanes, Moments};
use super::values::ValueCounts;
use crate::error::Result;

#[derive(Clone, Debug)]
pub struct NumericStats {
    pub nan: u64,
    pub positive_infinity: u64,
    pub negative_infinity: u64,
    /// Over the finite values.
    pub moments: Moments,
    /// Distinct finite values, except those the shape counts exactly: while a column has few
    /// values, hashing every row into the sketch would be a large part of profiling it, and
    /// the exact count says more. `distinct()` gives the sketch of all of them.
    distinct: Distinct,
    pub shape: Shape,
}

/// How the distribution of the finite values is kept.
#[derive(Clone, Debug)]
pub enum Shape {
    /// The exact range, a quantile sketch, and exact counts while the column has few values.
    Open {
        range: Option<(f64, f64)>,
        quantiles: Kll,
        values: Option<ValueCounts>,
    },
    /// A sensitive column: a histogram whose bins do not depend on the data, and nothing else
    /// that holds a raw value.
    Private(Histogram),
}

impl NumericStats {
    pub fn new(k: u16, sensitive: bool) -> Result<Self> {
        let shape = if sensitive {
            Shape::Private(Histogram::default())
        } else {
            Shape::Open {
                range: None,
                quantiles: Kll::new(k)?,
                values: Some(ValueCounts::default()),
            }
        };
        Ok(Self {
            nan: 0,
            positive_infinity: 0,
            negative_infinity: 0,
            moments: Moments::default(),
            distinct: Distinct::default(),
            shape,
        })
    }

    /// Adds non-null values (NaN and infinities are counted apart from the finite ones).
    pub fn update(&mut self, values: &[f64]) {
        let finite = self.split_off_non_finite(values);
        let finite = finite.as_ref();
        self.moments.merge(&Moments::of(finite));
        match &mut self.shape {
            Shape::Open {
                range,
                quantiles,
                values,
            } => {
                if let Some((low, high)) = min_max(finite) {
                    let (min, max) = range.get_or_insert((low, high));
                    *min = min.min(low);
                    *max = max.max(high);
                }
                quantiles.update_many(finite);
                if !values.as_mut().is_some_and(|counts| counts.update(finite)) {
                    if let Some(counts) = values.take() {
                        add_counted(&mut self.distinct, &counts);
                    }
                    self.distinct.update_numbers(finite);
                }
            }
            Shape::Private(histogram) => {
                histogram.update(finite);
                self.distinct.update_numbers(finite);
            }
        }
    }

    /// The distinct-count sketch of all the finite values.
    pub fn distinct(&self) -> Cow<'_, Distinct> {
        match &self.shape {
            Shape::Open {
                values: Some(counts),
                ..
            } => {
                let mut distinct = self.distinct.clone();
                add_counted(&mut distinct, counts);
                Cow::Owned(distinct)
            }
            _ => Cow::Borrowed(&self.distinct),
        }
    }

    /// The sketch of the values the shape does not count exactly (see the field), for merging.
    pub(super) fn distinct_sketch_mut(&mut self) -> &mut Distinct {
        &mut self.distinct
    }

    /// The number of distinct finite values: exact while the column has few, else estimated.
    pub fn distinct_count(&self) -> f64 {
        match &self.shape {
            Shape::Open {
                values: Some(counts),
                ..
            } => counts.number_of_values() as f64,
            _ => self.distinct.estimate(),
        }
    }

    /// The finite values, borrowed when there is nothing else (the usual case).
    fn split_off_non_finite<'a>(&mut self, values: &'a [f64]) -> Cow<'a, [f64]> {
        // A mask of exponent bits over all values, not a search that stops at the first
        // non-finite one, so that it vectorizes: finite values never have all exponent bits set.
        const EXPONENT: u64 = 0x7ff0_0000_0000_0000;
        let all_finite = lanes(values, 0, |seen: &mut u64, x| {
            *seen |= u64::from(x.to_bits() & EXPONENT == EXPONENT)
        })
        .iter()
        .all(|&seen| seen == 0);
        if all_finite {
            return Cow::Borrowed(values);
        }
        let mut finite = Vec::with_capacity(values.len());
        for &value in values {
            if value.is_finite() {
                finite.push(value);
            } else if value.is_nan() {
                self.nan += 1;
            } else if value > 0.0 {
                self.positive_infinity += 1;
            } else {
                self.negative_infinity += 1;
            }
        }
        Cow::Owned(finite)
    }

    pub fn merge(&mut self, other: &Self) -> Result<()> {
        self.nan += other.nan;
        self.positive_infinity += other.positive_infinity;
        self.negative_infinity += other.negative_infinity;
        self.moments.merge(&other.moments);
        self.distinct.merge(&other.distinct);
        match (&mut self.shape, &other.shape) {
            (
                Shape::Open {
                    range,
                    quantiles,
                    values,
                },
                Shape::Open {
                    range: other_range,
                    quantiles: other_quantiles,
                    values: other_values,
                },
            ) => {
                *range = match (*range, *other_range) {
                    (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
                    (a, b) => a.or(b),
                };
                quantiles.merge(other_quantiles);
                let mut mine = values.take();
                let counted = match (&mut mine, other_values) {
                    (Some(mine), Some(theirs)) => mine.merge(theirs),
                    _ => false,
                };
                if counted {
                    *values = mine;
                } else {
                    // Values leaving the exact counts must now be in the distinct-count sketch.
                    for counts in mine.iter().chain(other_values) {
                        add_counted(&mut self.distinct, counts);
                    }
                }
            }
            (Shape::Private(histogram), Shape::Private(other)) => histogram.merge(other),
            _ => {
                return Err(crate::error::Error::InvalidArgument(
                    "a sensitive column cannot be merged with a column that is not".into(),
                ))
            }
        }
        Ok(())
    }

    pub fn finite(&self) -> u64 {
        self.moments.count
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u64(self.nan);
        out.put_u64(self.positive_infinity);
        out.put_u64(self.negative_infinity);
        self.moments.write(out);
        self.distinct().write(out);
        match &self.shape {
            Shape::Open {
                range,
                quantiles,
                values,
            } => {
                out.put_u8(0);
                let (min, max) = range.unwrap_or((f64::NAN, f64::NAN));
                out.put_f64(min);
                out.put_f64(max);
                quantiles.write(out);
                match values {
                    Some(values) => {
                        out.put_u8(1);
                        values.write(out);
                    }
                    None => out.put_u8(0),
                }
            }
            Shape::Private(histogram) => {
                out.put_u8(1);
                histogram.write(out);
            }
        }
    }

    pub fn read(reader: &mut Reader<'_>) -> Result<Self> {
        let nan = reader.u64("NaN count")?;
        let positive_infinity = reader.u64("infinity count")?;
        let negative_infinity = reader.u64("infinity count")?;
        let moments = Moments::read(reader)?;
        let distinct = Distinct::read(reader)?;
        let shape = match reader.u8("numeric shape")? {
            0 => {
                let (min, max) = (reader.f64("minimum")?, reader.f64("maximum")?);
                let range = match (
                    moments.count,
                    min <= max && min.is_finite() && max.is_finite(),
                ) {
                    (0, _) if min.is_nan() && max.is_nan() => None,
                    (1.., true) => Some((min, max)),
                    _ => return Err(codec::corrupt(format!("impossible range {min}..{max}"))),
                };
                let quantiles = Kll::read(reader)?;
                if quantiles.n() != moments.count {
                    return Err(codec::corrupt(
                        "the quantile sketch and the moments count different values",
                    ));
                }
                let values = match reader.u8("value counts flag")? {
                    0 => None,
                    1 => Some(ValueCounts::read(reader)?),
                    other => return Err(codec::corrupt(format!("value counts flag {other}"))),
                };
                Shape::Open {
                    range,
                    quantiles,
                    values,
                }
            }
            1 => Shape::Private(Histogram::read(reader)?),
            other => return Err(codec::corrupt(format!("unknown numeric shape {other}"))),
        };
        Ok(Self {
            nan,
            positive_infinity,
            negative_infinity,
            moments,
            distinct,
            shape,
        })
    }
}

/// The values of exact counts into the sketch, when the counts are given up or merged away.
fn add_counted(distinct: &mut Distinct, counts: &ValueCounts) {
    let values: Vec<f64> = counts.iter().map(|(value, _)| value).collect();
    distinct.update_numbers(&values);
}

fn min_max(values: &[f64]) -> Option<(f64, f64)> {
    let first = *values.first()?;
    let extremes = lanes(values, (first, first), |(low, high): &mut (f64, f64), x| {
        // Plain comparisons (minsd, maxsd): the values are finite.
        if x < *low {
            *low = x;
        }
        if x > *high {
            *high = x;
        }
    });
    Some(extremes.iter().fold((first, first), |(low, high), lane| {
        (low.min(lane.0), high.max(lane.1))
    }))
}
