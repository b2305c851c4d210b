//! One column's profile: what kind of column it is, its null count, and the statistics of its
//! values for that kind.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};

use super::categorical::CategoricalStats;
use super::codec::{self, Reader, Write};
use super::distinct::Distinct;
use super::numeric::NumericStats;
use crate::error::{Error, Result};

/// The kind of a column, as profiles and schemas name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Float,
    Integer,
    Boolean,
    String,
    /// Values are the days since 1970-01-01.
    Date,
    /// Values are counts of `unit` since 1970-01-01 00:00 UTC; `timezone` as Arrow has it.
    Timestamp {
        unit: TimeUnit,
        timezone: Option<String>,
    },
}

impl Kind {
    /// The kind of an Arrow type, or an error naming the column for types without one.
    pub fn of(column: &str, data_type: &DataType) -> Result<Self> {
        Ok(match data_type {
            DataType::Float16 | DataType::Float32 | DataType::Float64 => Self::Float,
            t if t.is_integer() => Self::Integer,
            DataType::Boolean => Self::Boolean,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Self::String,
            DataType::Dictionary(_, values) if Self::of(column, values)? == Self::String => {
                Self::String
            }
            DataType::Date32 => Self::Date,
            DataType::Date64 => Self::Timestamp {
                unit: TimeUnit::Millisecond,
                timezone: None,
            },
            DataType::Timestamp(unit, timezone) => Self::Timestamp {
                unit: *unit,
                timezone: timezone.as_ref().map(|tz| tz.to_string()),
            },
            other => {
                return Err(Error::schema(
                    "profile",
                    column,
                    format!("cannot profile values of type {other}"),
                ))
            }
        })
    }

    /// The name used in reports and schemas.
    pub fn name(&self) -> String {
        match self {
            Self::Float => "float".into(),
            Self::Integer => "integer".into(),
            Self::Boolean => "boolean".into(),
            Self::String => "string".into(),
            Self::Date => "date".into(),
            Self::Timestamp { unit, timezone } => {
                let unit = unit_name(*unit);
                match timezone {
                    Some(tz) => format!("timestamp[{unit}, {tz}]"),
                    None => format!("timestamp[{unit}]"),
                }
            }
        }
    }

    fn is_numeric(&self) -> bool {
        !matches!(self, Self::Boolean | Self::String)
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Float => out.put_u8(0),
            Self::Integer => out.put_u8(1),
            Self::Boolean => out.put_u8(2),
            Self::String => out.put_u8(3),
            Self::Date => out.put_u8(4),
            Self::Timestamp { unit, timezone } => {
                out.put_u8(5);
                out.put_u8(*unit as u8);
                out.put_bytes(timezone.as_deref().unwrap_or("").as_bytes());
            }
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self> {
        Ok(match reader.u8("column kind")? {
            0 => Self::Float,
            1 => Self::Integer,
            2 => Self::Boolean,
            3 => Self::String,
            4 => Self::Date,
            5 => {
                let unit = match reader.u8("time unit")? {
                    0 => TimeUnit::Second,
                    1 => TimeUnit::Millisecond,
                    2 => TimeUnit::Microsecond,
                    3 => TimeUnit::Nanosecond,
                    other => return Err(codec::corrupt(format!("unknown time unit {other}"))),
                };
                let timezone = std::str::from_utf8(reader.bytes("timezone")?)
                    .map_err(|_| codec::corrupt("timezone is not UTF-8"))?;
                Self::Timestamp {
                    unit,
                    timezone: (!timezone.is_empty()).then(|| timezone.to_owned()),
                }
            }
            other => return Err(codec::corrupt(format!("unknown column kind {other}"))),
        })
    }
}

fn unit_name(unit: TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "us",
        TimeUnit::Nanosecond => "ns",
    }
}

#[derive(Clone, Debug)]
pub enum Stats {
    Numeric(NumericStats),
    Boolean { true_count: u64, false_count: u64 },
    Categorical(CategoricalStats),
}

#[derive(Clone, Debug)]
pub struct ColumnProfile {
    pub name: String,
    pub kind: Kind,
    pub sensitive: bool,
    pub nulls: u64,
    pub stats: Stats,
}

impl ColumnProfile {
    /// The column's distinct-count sketch, for the kinds that keep one.
    pub(super) fn distinct_mut(&mut self) -> Option<&mut Distinct> {
        match &mut self.stats {
            Stats::Numeric(stats) => Some(stats.distinct_sketch_mut()),
            Stats::Categorical(stats) => Some(&mut stats.distinct),
            Stats::Boolean { .. } => None,
        }
    }

    pub fn new(name: &str, data_type: &DataType, k: u16, sensitive: bool) -> Result<Self> {
        Self::of_kind(name, Kind::of(name, data_type)?, k, sensitive)
    }

    /// An empty profile of a column of `kind`.
    pub fn of_kind(name: &str, kind: Kind, k: u16, sensitive: bool) -> Result<Self> {
        let stats = match kind {
            Kind::Boolean => Stats::Boolean {
                true_count: 0,
                false_count: 0,
            },
            Kind::String => Stats::Categorical(CategoricalStats::new(sensitive)),
            _ => Stats::Numeric(NumericStats::new(k, sensitive)?),
        };
        Ok(Self {
            name: name.to_owned(),
            kind,
            sensitive,
            nulls: 0,
            stats,
        })
    }

    /// Adds a column of a batch (of the type this profile was made for).
    pub fn update(&mut self, array: &ArrayRef) -> Result<()> {
        self.nulls += array.logical_null_count() as u64;
        match &mut self.stats {
            Stats::Numeric(stats) => update_numeric(stats, array)?,
            Stats::Boolean {
                true_count,
                false_count,
            } => {
                let values = array.as_boolean();
                let trues = values.true_count() as u64;
                *true_count += trues;
                *false_count += (values.len() - values.null_count()) as u64 - trues;
            }
            Stats::Categorical(stats) => update_categories(stats, array)?,
        }
        Ok(())
    }

    pub fn merge(&mut self, other: &Self) -> Result<()> {
        if self.kind != other.kind || self.sensitive != other.sensitive {
            return Err(Error::InvalidArgument(format!(
                "column '{}': cannot merge a {}{} profile with a {}{} one",
                self.name,
                if self.sensitive { "sensitive " } else { "" },
                self.kind.name(),
                if other.sensitive { "sensitive " } else { "" },
                other.kind.name()
            )));
        }
        self.nulls += other.nulls;
        match (&mut self.stats, &other.stats) {
            (Stats::Numeric(mine), Stats::Numeric(theirs)) => mine.merge(theirs)?,
            (
                Stats::Boolean {
                    true_count,
                    false_count,
                },
                Stats::Boolean {
                    true_count: t,
                    false_count: f,
                },
            ) => {
                *true_count += t;
                *false_count += f;
            }
            (Stats::Categorical(mine), Stats::Categorical(theirs)) => mine.merge(theirs)?,
            _ => unreachable!("the kinds are equal, so are the statistics"),
        }
        Ok(())
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_bytes(self.name.as_bytes());
        self.kind.write(out);
        out.put_u8(u8::from(self.sensitive));
        out.put_u64(self.nulls);
        match &self.stats {
            Stats::Numeric(stats) => stats.write(out),
            Stats::Boolean {
                true_count,
                false_count,
            } => {
                out.put_u64(*true_count);
                out.put_u64(*false_count);
            }
            Stats::Categorical(stats) => stats.write(out),
        }
    }

    pub fn read(reader: &mut Reader<'_>) -> Result<Self> {
        let name = std::str::from_utf8(reader.bytes("column name")?)
            .map_err(|_| codec::corrupt("a column name is not UTF-8"))?
            .to_owned();
        let kind = Kind::read(reader)?;
        let sensitive = match reader.u8("sensitive flag")? {
            0 => false,
            1 => true,
            other => return Err(codec::corrupt(format!("sensitive flag {other}"))),
        };
        let nulls = reader.u64("null count")?;
        let stats = match kind {
            Kind::Boolean => Stats::Boolean {
                true_count: reader.u64("true count")?,
                false_count: reader.u64("false count")?,
            },
            Kind::String => Stats::Categorical(CategoricalStats::read(reader)?),
            _ => Stats::Numeric(NumericStats::read(reader)?),
        };
        let column = Self {
            name,
            kind,
            sensitive,
            nulls,
            stats,
        };
        debug_assert!(column.kind.is_numeric() == matches!(column.stats, Stats::Numeric(_)));
        Ok(column)
    }

    /// Rows this column has seen (nulls included).
    pub fn rows(&self) -> u64 {
        self.nulls + self.values()
    }

    /// Non-null values.
    pub fn values(&self) -> u64 {
        match &self.stats {
            Stats::Numeric(stats) => {
                stats.finite() + stats.nan + stats.positive_infinity + stats.negative_infinity
            }
            Stats::Boolean {
                true_count,
                false_count,
            } => true_count + false_count,
            Stats::Categorical(stats) => match &stats.items {
                super::categorical::Items::Plain(sketch) => sketch.total_weight(),
                super::categorical::Items::Hashed(sketch) => sketch.total_weight(),
            },
        }
    }
}

/// A numeric or temporal column as f64: temporal columns as their integer counts since the
/// epoch (exact up to 2^53: any date or microsecond timestamp).
pub fn as_f64(array: &ArrayRef) -> Result<ArrayRef> {
    Ok(match array.data_type() {
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => {
            let physical = arrow_cast::cast(array, &DataType::Int64)?;
            arrow_cast::cast(&physical, &DataType::Float64)?
        }
        // A float64 column is not copied: the cast hands back the same buffer.
        _ => arrow_cast::cast(array, &DataType::Float64)?,
    })
}

/// Adds the non-null values of a numeric or temporal column.
fn update_numeric(stats: &mut NumericStats, array: &ArrayRef) -> Result<()> {
    let as_f64 = as_f64(array)?;
    let values = as_f64.as_primitive::<Float64Type>();
    if values.null_count() == 0 {
        stats.update(values.values());
    } else {
        stats.update(&values.iter().flatten().collect::<Vec<_>>());
    }
    Ok(())
}

fn update_categories(stats: &mut CategoricalStats, array: &ArrayRef) -> Result<()> {
    if let DataType::Dictionary(..) = array.data_type() {
        // One update per distinct key instead of one per row: Parquet's string columns arrive
        // dictionary-encoded.
        let keys = arrow_cast::cast(array.as_any_dictionary().keys(), &DataType::Int64)?;
        let strings = arrow_cast::cast(array.as_any_dictionary().values(), &DataType::Utf8)?;
        let strings = strings.as_string::<i32>();
        let mut counts = vec![0u64; strings.len()];
        for key in keys.as_primitive::<Int64Type>().iter().flatten() {
            counts[key as usize] += 1;
        }
        for (i, &count) in counts.iter().enumerate() {
            if count > 0 && strings.is_valid(i) {
                stats.update(strings.value(i), count);
            }
        }
        return Ok(());
    }
    let strings = arrow_cast::cast(array, &DataType::Utf8)?;
    for value in strings.as_string::<i32>().iter().flatten() {
        stats.update(value, 1);
    }
    Ok(())
}
