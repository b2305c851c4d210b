//! Validation of data against a schema, in one streaming pass over Arrow batches.
//!
//! Each batch's columns are checked in parallel, without a per-row call into anything slow:
//! numbers are compared as f64 (temporal values as their counts since the epoch, as profiles
//! keep them), and a dictionary-encoded string column is checked once per dictionary value,
//! then per row by key. Every rule broken counts its rows and keeps the first row where it
//! happened and up to [`MAX_EXAMPLES`] distinct offending values, formatted as Arrow displays
//! them. Row indices count from the first row of the first batch.

use std::collections::HashSet;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_cast::display::array_value_to_string;
use arrow_schema::DataType;
use rayon::prelude::*;

use super::schema::ColumnSchema;
use crate::error::{Error, Result};
use crate::profile::Kind;

/// Distinct example values kept per anomaly.
pub const MAX_EXAMPLES: usize = 5;

/// What is wrong. Every type is an error except an unexpected column, which is reported only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnomalyType {
    /// A column of the schema is not in (some batches of) the data.
    MissingColumn,
    /// A column of the data is not in the schema.
    UnexpectedColumn,
    /// The column's kind differs from the schema's.
    WrongType,
    /// Nulls in a column that is not nullable.
    NullValues,
    /// More nulls than `max_null_fraction` allows.
    TooManyNulls,
    NanValues,
    InfiniteValues,
    BelowRange,
    AboveRange,
    /// A category outside the domain.
    UnknownCategory,
}

impl AnomalyType {
    pub fn name(self) -> &'static str {
        match self {
            Self::MissingColumn => "missing_column",
            Self::UnexpectedColumn => "unexpected_column",
            Self::WrongType => "wrong_type",
            Self::NullValues => "null_values",
            Self::TooManyNulls => "too_many_nulls",
            Self::NanValues => "nan_values",
            Self::InfiniteValues => "infinite_values",
            Self::BelowRange => "below_range",
            Self::AboveRange => "above_range",
            Self::UnknownCategory => "unknown_category",
        }
    }

    pub fn is_error(self) -> bool {
        self != Self::UnexpectedColumn
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Anomaly {
    pub column: String,
    pub anomaly: AnomalyType,
    /// Rows affected (for a missing, unexpected or mistyped column: every row it concerns).
    pub count: u64,
    /// `count` over the rows of the data (0 when there are none).
    pub share: f64,
    pub first_row: Option<u64>,
    pub examples: Vec<String>,
    /// For a wrong type: the kind (or Arrow type) found in the data.
    pub found: Option<String>,
}

/// The rows breaking one rule.
#[derive(Clone, Debug, Default)]
struct Tally {
    /// Set once anything was added, even zero rows (a missing column in an empty file).
    flagged: bool,
    count: u64,
    first_row: Option<u64>,
    examples: Vec<String>,
    /// The values of numeric examples, to keep them distinct without formatting each one.
    keys: Vec<u64>,
}

impl Tally {
    fn add(&mut self, rows: u64, first_row: Option<u64>) {
        self.flagged = true;
        self.count += rows;
        if self.first_row.is_none() {
            self.first_row = first_row;
        }
    }

    fn hit(&mut self, row: u64) {
        self.add(1, Some(row));
    }

    /// Keeps `value` (of row `i` of `array`) as an example if it is a new one and there is
    /// room.
    fn number_example(&mut self, value: f64, array: &dyn Array, i: usize) -> Result<()> {
        // One key for every NaN, and for 0.0 and -0.0.
        let key = if value.is_nan() {
            f64::NAN.to_bits()
        } else {
            (value + 0.0).to_bits()
        };
        if self.examples.len() < MAX_EXAMPLES && !self.keys.contains(&key) {
            self.keys.push(key);
            self.examples.push(array_value_to_string(array, i)?);
        }
        Ok(())
    }

    fn text_example(&mut self, value: &str) {
        if self.examples.len() < MAX_EXAMPLES && !self.examples.iter().any(|e| e == value) {
            self.examples.push(value.to_owned());
        }
    }
}

/// One schema column and what its rules have counted so far.
#[derive(Debug)]
struct ColumnCheck {
    rule: ColumnSchema,
    domain: Option<HashSet<String>>,
    /// Rows where the column was present with its kind.
    rows: u64,
    found: Option<String>,
    missing: Tally,
    wrong_type: Tally,
    nulls: Tally,
    nan: Tally,
    infinite: Tally,
    below: Tally,
    above: Tally,
    unknown: Tally,
}

impl ColumnCheck {
    fn new(rule: ColumnSchema) -> Self {
        let domain = rule.domain.as_ref().map(|d| d.iter().cloned().collect());
        Self {
            rule,
            domain,
            rows: 0,
            found: None,
            missing: Tally::default(),
            wrong_type: Tally::default(),
            nulls: Tally::default(),
            nan: Tally::default(),
            infinite: Tally::default(),
            below: Tally::default(),
            above: Tally::default(),
            unknown: Tally::default(),
        }
    }

    /// Checks this column of a batch whose first row is row `offset` of the data.
    fn update(&mut self, array: &ArrayRef, offset: u64) -> Result<()> {
        let rows = array.len() as u64;
        let first = (rows > 0).then_some(offset);
        // A column of nulls only (Arrow's null type) fits any kind.
        if array.data_type() != &DataType::Null {
            match Kind::of(&self.rule.name, array.data_type()) {
                Ok(kind) if kind.name() == self.rule.kind => {}
                found => {
                    let found = found.map_or_else(|_| array.data_type().to_string(), |k| k.name());
                    self.found.get_or_insert(found);
                    self.wrong_type.add(rows, first);
                    return Ok(());
                }
            }
        }
        self.rows += rows;
        let nulls = array.logical_null_count() as u64;
        if nulls > 0 {
            let first_null = array
                .logical_nulls()
                .and_then(|n| n.iter().position(|valid| !valid))
                .map(|i| offset + i as u64);
            self.nulls.add(nulls, first_null);
        }
        match array.data_type() {
            DataType::Null | DataType::Boolean => Ok(()),
            _ if self.rule.kind == "string" => self.check_strings(array, offset),
            _ => self.check_numbers(array, offset),
        }
    }

    fn check_numbers(&mut self, array: &ArrayRef, offset: u64) -> Result<()> {
        let rule = &self.rule;
        let float = rule.kind == "float";
        let (allow_nan, allow_plus, allow_minus) = if float {
            (
                rule.allow_nan,
                rule.allow_positive_infinity,
                rule.allow_negative_infinity,
            )
        } else {
            (true, true, true)
        };
        if rule.range.is_none() && allow_nan && allow_plus && allow_minus {
            return Ok(());
        }
        let (low, high) = rule.range.unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
        let as_f64 = crate::profile::as_f64(array)?;
        let values = as_f64.as_primitive::<Float64Type>();
        let nulls = values.logical_nulls();
        for (i, &value) in values.values().iter().enumerate() {
            if (low..=high).contains(&value) || nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                continue;
            }
            let tally = if value.is_nan() {
                if allow_nan {
                    continue;
                }
                &mut self.nan
            } else if value.is_infinite() {
                if (value > 0.0 && allow_plus) || (value < 0.0 && allow_minus) {
                    continue;
                }
                &mut self.infinite
            } else if value < low {
                &mut self.below
            } else {
                &mut self.above
            };
            tally.hit(offset + i as u64);
            tally.number_example(value, array.as_ref(), i)?;
        }
        Ok(())
    }

    fn check_strings(&mut self, array: &ArrayRef, offset: u64) -> Result<()> {
        let Some(domain) = &self.domain else {
            return Ok(());
        };
        let nulls = array.logical_nulls();
        let is_null = |i: usize| nulls.as_ref().is_some_and(|n| n.is_null(i));
        if let DataType::Dictionary(..) = array.data_type() {
            // Each dictionary value is looked up once; rows only compare their key's verdict.
            let dictionary = array.as_any_dictionary();
            let strings = arrow_cast::cast(dictionary.values(), &DataType::Utf8)?;
            let strings = strings.as_string::<i32>();
            let known: Vec<bool> = (0..strings.len())
                .map(|k| strings.is_null(k) || domain.contains(strings.value(k)))
                .collect();
            if known.iter().all(|&k| k) {
                return Ok(());
            }
            for (i, key) in dictionary.normalized_keys().into_iter().enumerate() {
                if known[key] || is_null(i) {
                    continue;
                }
                self.unknown.hit(offset + i as u64);
                self.unknown.text_example(strings.value(key));
            }
            return Ok(());
        }
        let strings = arrow_cast::cast(array, &DataType::Utf8)?;
        for (i, value) in strings.as_string::<i32>().iter().enumerate() {
            if let Some(value) = value.filter(|v| !domain.contains(*v)) {
                self.unknown.hit(offset + i as u64);
                self.unknown.text_example(value);
            }
        }
        Ok(())
    }

    /// The rules broken, in a fixed order.
    fn anomalies(&self) -> Vec<(AnomalyType, &Tally)> {
        let rule = &self.rule;
        let nulls = if !rule.nullable {
            AnomalyType::NullValues
        } else {
            AnomalyType::TooManyNulls
        };
        let too_many_nulls = match (rule.nullable, rule.max_null_fraction) {
            (false, _) => self.nulls.count > 0,
            (true, Some(fraction)) => self.nulls.count as f64 > fraction * self.rows as f64,
            (true, None) => false,
        };
        [
            (AnomalyType::MissingColumn, &self.missing, true),
            (AnomalyType::WrongType, &self.wrong_type, true),
            (nulls, &self.nulls, too_many_nulls),
            (AnomalyType::NanValues, &self.nan, true),
            (AnomalyType::InfiniteValues, &self.infinite, true),
            (AnomalyType::BelowRange, &self.below, true),
            (AnomalyType::AboveRange, &self.above, true),
            (AnomalyType::UnknownCategory, &self.unknown, true),
        ]
        .into_iter()
        .filter(|(_, tally, broken)| *broken && tally.flagged)
        .map(|(anomaly, tally, _)| (anomaly, tally))
        .collect()
    }
}

/// A validation in progress: feed it batches, then read its anomalies.
#[derive(Debug)]
pub struct Validation {
    columns: Vec<ColumnCheck>,
    /// Columns of the data outside the schema, in the order they were first seen.
    unexpected: Vec<(String, Tally)>,
    rows: u64,
}

impl Validation {
    pub fn new(schema: Vec<ColumnSchema>) -> Result<Self> {
        let mut names = HashSet::new();
        for column in &schema {
            column.check()?;
            if !names.insert(column.name.as_str()) {
                return Err(Error::InvalidArgument(format!(
                    "schema column '{}' is listed twice",
                    column.name
                )));
            }
        }
        Ok(Self {
            columns: schema.into_iter().map(ColumnCheck::new).collect(),
            unexpected: Vec::new(),
            rows: 0,
        })
    }

    /// Checks the rows of `batch` (its columns by name, in any order), columns in parallel.
    pub fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        let (offset, rows) = (self.rows, batch.num_rows() as u64);
        let first = (rows > 0).then_some(offset);
        let known: HashSet<&str> = self.columns.iter().map(|c| c.rule.name.as_str()).collect();
        let schema = batch.schema();
        for field in schema.fields() {
            if known.contains(field.name().as_str()) {
                continue;
            }
            let index = match self.unexpected.iter().position(|(n, _)| n == field.name()) {
                Some(index) => index,
                None => {
                    self.unexpected
                        .push((field.name().clone(), Tally::default()));
                    self.unexpected.len() - 1
                }
            };
            self.unexpected[index].1.add(rows, first);
        }
        let arrays: Vec<Option<&ArrayRef>> = self
            .columns
            .iter()
            .map(|c| batch.column_by_name(&c.rule.name))
            .collect();
        self.columns
            .par_iter_mut()
            .zip(arrays)
            .try_for_each(|(column, array)| match array {
                Some(array) => column.update(array, offset),
                None => {
                    column.missing.add(rows, first);
                    Ok(())
                }
            })?;
        self.rows += rows;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Every rule broken: the schema's columns in order, then the unexpected columns.
    pub fn anomalies(&self) -> Vec<Anomaly> {
        let share = |count: u64| {
            if self.rows == 0 {
                0.0
            } else {
                count as f64 / self.rows as f64
            }
        };
        let mut anomalies = Vec::new();
        for column in &self.columns {
            for (anomaly, tally) in column.anomalies() {
                anomalies.push(Anomaly {
                    column: column.rule.name.clone(),
                    anomaly,
                    count: tally.count,
                    share: share(tally.count),
                    first_row: tally.first_row,
                    examples: tally.examples.clone(),
                    found: (anomaly == AnomalyType::WrongType)
                        .then(|| column.found.clone())
                        .flatten(),
                });
            }
        }
        for (name, tally) in &self.unexpected {
            anomalies.push(Anomaly {
                column: name.clone(),
                anomaly: AnomalyType::UnexpectedColumn,
                count: tally.count,
                share: share(tally.count),
                first_row: tally.first_row,
                examples: Vec::new(),
                found: None,
            });
        }
        anomalies
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{DictionaryArray, Float64Array, Int32Array, StringArray};

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    #[test]
    fn dictionary_and_plain_strings_give_the_same_anomalies() {
        let mut rule = ColumnSchema::unchecked("c", "string");
        rule.domain = Some(vec!["a".into(), "b".into()]);
        let values = ["a", "x", "b", "x", "y", "a"];
        let plain: ArrayRef = Arc::new(StringArray::from(values.to_vec()));
        let dictionary: ArrayRef = Arc::new(DictionaryArray::new(
            Int32Array::from(vec![0, 1, 2, 1, 3, 0]),
            Arc::new(StringArray::from(vec!["a", "x", "b", "y"])),
        ));
        let mut results = Vec::new();
        for array in [plain, dictionary] {
            let mut validation = Validation::new(vec![rule.clone()]).unwrap();
            validation.update(&batch(vec![("c", array)])).unwrap();
            results.push(validation.anomalies());
        }
        assert_eq!(results[0], results[1]);
        let unknown = &results[0][0];
        assert_eq!(unknown.anomaly, AnomalyType::UnknownCategory);
        assert_eq!((unknown.count, unknown.first_row), (3, Some(1)));
        assert_eq!(unknown.examples, ["x", "y"]);
    }

    #[test]
    fn numbers_are_checked_across_batches_with_global_row_indices() {
        let mut rule = ColumnSchema::unchecked("x", "float");
        rule.range = Some((0.0, 1.0));
        rule.allow_nan = false;
        let mut validation = Validation::new(vec![rule]).unwrap();
        let first: ArrayRef = Arc::new(Float64Array::from(vec![0.5, 2.0, f64::NAN]));
        let second: ArrayRef = Arc::new(Float64Array::from(vec![Some(-1.0), None, Some(2.0)]));
        validation.update(&batch(vec![("x", first)])).unwrap();
        validation.update(&batch(vec![("x", second)])).unwrap();
        let found: Vec<_> = validation
            .anomalies()
            .into_iter()
            .map(|a| (a.anomaly, a.count, a.first_row, a.examples))
            .collect();
        assert_eq!(
            found,
            [
                (AnomalyType::NanValues, 1, Some(2), vec!["NaN".to_owned()]),
                (AnomalyType::BelowRange, 1, Some(3), vec!["-1.0".to_owned()]),
                (AnomalyType::AboveRange, 2, Some(1), vec!["2.0".to_owned()]),
            ]
        );
    }
}
