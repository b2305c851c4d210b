//! Mergeable per-column profiles of Arrow data, built in one streaming pass: counts, nulls,
//! NaN and infinities, moments, KLL quantiles, HLL distinct counts and frequent items.
//!
//! A batch job profiles what it scored, each edge device what it saw, and the control plane
//! merges the parts: merging is exact for counts and moments and within the sketches' bounds
//! for the rest. Profiles serialize to a compact versioned binary format (docs/formats.md).

mod categorical;
pub mod codec;
mod column;
mod distinct;
mod histogram;
pub mod kll;
mod moments;
mod numeric;
pub mod python;
mod values;

use std::collections::{HashMap, HashSet};

use arrow_array::RecordBatch;
use rayon::prelude::*;

pub use categorical::{pseudonym, CategoricalStats, Category};
pub use column::{as_f64, ColumnProfile, Kind, Stats};
pub use histogram::Histogram;
pub use moments::Moments;
pub use numeric::{NumericStats, Shape};
pub use values::ValueCounts;

use crate::error::{Error, Result};
use codec::{Reader, Write};
use distinct::Distinct;

const MAGIC: &[u8; 4] = b"EWPF";
const FORMAT_VERSION: u16 = 1;
/// A profile of more columns than this is not a profile this product wrote.
const MAX_COLUMNS: usize = 100_000;

#[derive(Clone, Debug)]
pub struct Profile {
    /// The KLL accuracy parameter of the quantile sketches.
    pub k: u16,
    pub rows: u64,
    pub columns: Vec<ColumnProfile>,
}

impl Profile {
    /// An empty profile of the columns of `schema`; columns named in `sensitive` keep no raw
    /// values.
    pub fn new(schema: &arrow_schema::Schema, k: u16, sensitive: &[String]) -> Result<Self> {
        let names: HashSet<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        if let Some(unknown) = sensitive.iter().find(|s| !names.contains(s.as_str())) {
            return Err(Error::InvalidArgument(format!(
                "sensitive column '{unknown}' is not in the data"
            )));
        }
        let columns = schema
            .fields()
            .iter()
            .map(|field| {
                let is_sensitive = sensitive.iter().any(|s| s == field.name());
                ColumnProfile::new(field.name(), field.data_type(), k, is_sensitive)
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            k,
            rows: 0,
            columns,
        })
    }

    /// An empty profile of the same columns, kinds and sensitivity.
    pub fn empty_like(&self) -> Result<Self> {
        let columns = self
            .columns
            .iter()
            .map(|c| ColumnProfile::of_kind(&c.name, c.kind.clone(), self.k, c.sensitive))
            .collect::<Result<_>>()?;
        Ok(Self {
            k: self.k,
            rows: 0,
            columns,
        })
    }

    /// Adds a batch with this profile's columns (by name, in any order; others are ignored),
    /// its columns profiled in parallel.
    pub fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        let arrays = self
            .columns
            .iter()
            .map(|column| {
                batch
                    .column_by_name(&column.name)
                    .ok_or_else(|| Error::schema("profile", &column.name, "missing from the data"))
            })
            .collect::<Result<Vec<_>>>()?;
        self.columns
            .par_iter_mut()
            .zip(arrays)
            .try_for_each(|(column, array)| column.update(array))?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// One profile of the rows of all `profiles` (the same columns in each); None if there
    /// are none. The same as merging them one by one, except that each column's distinct-count
    /// sketches are combined in one union at the end: a pairwise merge builds and compacts a
    /// union every time, which dominates merging many small profiles (the collector's case).
    pub fn merge_all(profiles: Vec<Profile>) -> Result<Option<Profile>> {
        let mut profiles = profiles.into_iter();
        let Some(mut merged) = profiles.next() else {
            return Ok(None);
        };
        let mut sketches: HashMap<String, Vec<Distinct>> = HashMap::new();
        for mut profile in profiles {
            for column in &mut profile.columns {
                if let Some(distinct) = column.distinct_mut() {
                    let taken = std::mem::take(distinct);
                    sketches.entry(column.name.clone()).or_default().push(taken);
                }
            }
            merged.merge(&profile)?;
        }
        for column in &mut merged.columns {
            let name = column.name.clone();
            if let (Some(distinct), Some(others)) = (column.distinct_mut(), sketches.get(&name)) {
                *distinct = Distinct::union(std::iter::once(&*distinct).chain(others));
            }
        }
        Ok(Some(merged))
    }

    /// Adds `other`, a profile of the same columns (by name, in any order).
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        let same_columns = self.columns.len() == other.columns.len()
            && self.columns.iter().all(|c| other.column(&c.name).is_some());
        if !same_columns {
            return Err(Error::InvalidArgument(format!(
                "cannot merge profiles of different columns: [{}] and [{}]",
                self.names().join(", "),
                other.names().join(", ")
            )));
        }
        for column in &mut self.columns {
            let theirs = other.column(&column.name).expect("checked above");
            column.merge(theirs)?;
        }
        self.k = self.k.min(other.k);
        self.rows += other.rows;
        Ok(())
    }

    pub fn column(&self, name: &str) -> Option<&ColumnProfile> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.put_u16(FORMAT_VERSION);
        out.put_u16(self.k);
        out.put_u64(self.rows);
        out.put_u32(self.columns.len() as u32);
        for column in &self.columns {
            column.write(&mut out);
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut reader = Reader::new(bytes);
        if reader.take(4, "magic")? != MAGIC {
            return Err(codec::corrupt(
                "not an edgewise profile (wrong magic bytes)",
            ));
        }
        let version = reader.u16("format version")?;
        if version != FORMAT_VERSION {
            return Err(codec::corrupt(format!(
                "format version {version}; this edgewise reads version {FORMAT_VERSION}"
            )));
        }
        let k = reader.u16("k")?;
        let rows = reader.u64("row count")?;
        let count = reader.count(1, "columns")?;
        if count > MAX_COLUMNS {
            return Err(codec::corrupt(format!("{count} columns")));
        }
        let mut columns: Vec<ColumnProfile> = Vec::with_capacity(count);
        for _ in 0..count {
            let column = ColumnProfile::read(&mut reader)?;
            if columns.iter().any(|c| c.name == column.name) {
                return Err(codec::corrupt(format!("column '{}' twice", column.name)));
            }
            if column.rows() != rows {
                return Err(codec::corrupt(format!(
                    "column '{}' counts {} rows, the profile {rows}",
                    column.name,
                    column.rows()
                )));
            }
            columns.push(column);
        }
        reader.finish("profile")?;
        Ok(Self { k, rows, columns })
    }
}
#[cfg(test)]
mod tests;
