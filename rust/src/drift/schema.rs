//! A schema of a dataset, inferred from a reference profile: what each column may hold.
//!
//! Like TensorFlow Data Validation's `infer_schema`, inference keeps what the reference shows
//! exactly, and nothing it only estimates:
//! - every column: its kind, and whether it may hold nulls (it did in the reference);
//! - numeric and temporal columns: the exact range of the finite values, widened by `margin`
//!   times its width on each side (none by default: TFDV keeps exact domains too; integer,
//!   date and timestamp bounds are rounded outward); float columns also say whether NaN, +inf
//!   and -inf may occur (only if the reference had them);
//! - string columns: the domain, every category the reference held, while the profile counted
//!   them exactly (at most 384); beyond that the profile only knows the frequent ones, so no
//!   domain is inferred and the column's comment says so;
//! - sensitive columns: kind and nullability only (their profiles keep no raw values).
//!
//! The schema's JSON form (versioned, edited by hand) is read and written in Python
//! (`edgewise.profiles.schema`); the two sides exchange the plain values of [`ColumnSchema`].

use pyo3::{FromPyObject, IntoPyObject};

use crate::error::{Error, Result};
use crate::profile::{Category, ColumnProfile, Kind, Profile, Shape, Stats};

/// What one column may hold. A rule that is absent (`None`, or `true` for the `allow_` flags)
/// is not checked.
#[derive(Clone, Debug, PartialEq, FromPyObject, IntoPyObject)]
#[pyo3(from_item_all)]
pub struct ColumnSchema {
    pub name: String,
    /// As profiles name kinds (`Kind::name`): float, integer, boolean, string, date,
    /// timestamp[unit] or timestamp[unit, timezone].
    pub kind: String,
    pub nullable: bool,
    /// The largest share of null rows allowed: 0 for a column that is not nullable, None for
    /// no limit.
    pub max_null_fraction: Option<f64>,
    /// Finite values must lie within [min, max] (dates in days, timestamps in their unit,
    /// since the epoch).
    pub range: Option<(f64, f64)>,
    pub allow_nan: bool,
    pub allow_positive_infinity: bool,
    pub allow_negative_infinity: bool,
    /// The categories a string column may hold.
    pub domain: Option<Vec<String>>,
    /// Why a rule is absent, for whoever reads the schema.
    pub comment: Option<String>,
}

impl ColumnSchema {
    /// A column that must exist with this kind, and nothing else.
    pub fn unchecked(name: &str, kind: &str) -> Self {
        Self {
            name: name.to_owned(),
            kind: kind.to_owned(),
            nullable: true,
            max_null_fraction: None,
            range: None,
            allow_nan: true,
            allow_positive_infinity: true,
            allow_negative_infinity: true,
            domain: None,
            comment: None,
        }
    }

    /// Refuses rules that contradict each other (the Python reader names the field first).
    pub fn check(&self) -> Result<()> {
        let invalid = |detail: &str| {
            Err(Error::InvalidArgument(format!(
                "schema column '{}': {detail}",
                self.name
            )))
        };
        if let Some(fraction) = self.max_null_fraction {
            if !(0.0..=1.0).contains(&fraction) {
                return invalid("max_null_fraction must be within [0, 1]");
            }
            if !self.nullable && fraction != 0.0 {
                return invalid("max_null_fraction must be 0 for a column that is not nullable");
            }
        }
        if let Some((min, max)) = self.range {
            if !(min.is_finite() && max.is_finite() && min <= max) {
                return invalid("range must be finite with min <= max");
            }
        }
        Ok(())
    }
}

/// A column for each column of `profile`, in its order; `margin` (finite, at least 0) widens
/// numeric ranges by that share of their width on each side.
pub fn infer(profile: &Profile, margin: f64) -> Result<Vec<ColumnSchema>> {
    if !(margin.is_finite() && margin >= 0.0) {
        return Err(Error::InvalidArgument(format!(
            "margin must be a finite number of at least 0, got {margin}"
        )));
    }
    Ok(profile
        .columns
        .iter()
        .map(|column| infer_column(column, margin))
        .collect())
}

fn infer_column(column: &ColumnProfile, margin: f64) -> ColumnSchema {
    let mut schema = ColumnSchema::unchecked(&column.name, &column.kind.name());
    schema.nullable = column.nulls > 0;
    schema.max_null_fraction = (!schema.nullable).then_some(0.0);
    if column.sensitive {
        schema.comment = Some(
            "sensitive: the profile keeps no raw values, so only kind and nullability are checked"
                .into(),
        );
        return schema;
    }
    match &column.stats {
        Stats::Numeric(stats) => {
            if column.kind == Kind::Float {
                schema.allow_nan = stats.nan > 0;
                schema.allow_positive_infinity = stats.positive_infinity > 0;
                schema.allow_negative_infinity = stats.negative_infinity > 0;
            }
            match &stats.shape {
                Shape::Open {
                    range: Some(range), ..
                } => schema.range = Some(widen(*range, margin, column.kind == Kind::Float)),
                _ => schema.comment = Some("no finite values in the reference: no range".into()),
            }
        }
        Stats::Categorical(stats) => {
            let (categories, exact) = stats.categories();
            if !exact {
                schema.comment = Some(
                    "more categories in the reference than the profile counts exactly \
                     (384): no domain"
                        .into(),
                );
            } else if categories.is_empty() {
                schema.comment = Some("no values in the reference: no domain".into());
            } else {
                let mut domain: Vec<String> = categories
                    .into_iter()
                    .filter_map(|(category, _)| match category {
                        Category::Value(value) => Some(value),
                        Category::Hash(_) => None,
                    })
                    .collect();
                domain.sort_unstable();
                schema.domain = Some(domain);
            }
        }
        Stats::Boolean { .. } => {}
    }
    schema
}

/// `range` widened by `margin` times its width on each side; bounds of integer-valued kinds
/// rounded outward; bounds beyond f64 clamped to its finite extremes.
fn widen((min, max): (f64, f64), margin: f64, float: bool) -> (f64, f64) {
    let pad = if margin > 0.0 {
        (max - min) * margin
    } else {
        0.0
    };
    let (mut low, mut high) = (min - pad, max + pad);
    if !float {
        (low, high) = (low.floor(), high.ceil());
    }
    (low.max(f64::MIN), high.min(f64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_widen_ranges_outward() {
        assert_eq!(widen((0.0, 10.0), 0.0, true), (0.0, 10.0));
        assert_eq!(widen((0.0, 10.0), 0.05, true), (-0.5, 10.5));
        assert_eq!(widen((0.0, 10.0), 0.05, false), (-1.0, 11.0));
        assert_eq!(
            widen((-f64::MAX, f64::MAX), 1.0, true),
            (f64::MIN, f64::MAX)
        );
    }

    #[test]
    fn contradicting_rules_are_refused() {
        let mut column = ColumnSchema::unchecked("x", "float");
        assert!(column.check().is_ok());
        column.nullable = false;
        column.max_null_fraction = Some(0.5);
        assert!(column.check().is_err());
        column.max_null_fraction = Some(0.0);
        column.range = Some((2.0, 1.0));
        assert!(column.check().is_err());
    }
}
