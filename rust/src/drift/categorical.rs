//! Categorical columns (and numeric ones with few distinct values) as counts per category, and
//! the metrics that compare two of them: L-infinity, chi-square with Cramér's V, and, through
//! `aligned`, PSI and the Jensen-Shannon distance.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};

use super::binned::Binned;
use super::gamma::chi_square_sf;
use crate::error::{Error, Result};

/// A category: a string, or a number (a count, a flag, a code) kept as a number so that `3` the
/// number and `"3"` the string stay apart.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Text(String),
    Number(NumberKey),
}

/// A number used as a category, compared and hashed by value; -0.0 is 0.0, and NaN is not a
/// category (a missing value, counted apart by the caller).
#[derive(Clone, Copy, Debug)]
pub struct NumberKey(f64);

impl NumberKey {
    pub fn new(value: f64) -> Result<Self> {
        if value.is_nan() {
            return Err(Error::InvalidArgument("NaN is not a category".into()));
        }
        Ok(Self(if value == 0.0 { 0.0 } else { value }))
    }

    pub fn value(self) -> f64 {
        self.0
    }
}

// With NaN excluded and -0.0 folded, total_cmp and bit equality agree with numeric equality.
impl PartialEq for NumberKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for NumberKey {}

impl PartialOrd for NumberKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NumberKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Hash for NumberKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

/// Counts (or weights) per category, ordered by category so that every sum over them runs in
/// one order and gives the same bits each time. Categories with zero count are dropped.
#[derive(Clone, Debug, PartialEq)]
pub struct CategoryCounts {
    counts: BTreeMap<Category, f64>,
    total: f64,
}

impl CategoryCounts {
    /// One count per value.
    pub fn from_values(values: impl IntoIterator<Item = Category>) -> Result<Self> {
        Self::from_counts(values.into_iter().map(|category| (category, 1.0)))
    }

    /// Counts given per category; repeated categories add up.
    pub fn from_counts(counts: impl IntoIterator<Item = (Category, f64)>) -> Result<Self> {
        // Counted in a hash map (fast for many rows), then ordered once.
        let mut summed: HashMap<Category, f64> = HashMap::new();
        for (category, count) in counts {
            if !(count.is_finite() && count >= 0.0) {
                return Err(Error::InvalidArgument(format!(
                    "category counts must be finite and non-negative, got {count}"
                )));
            }
            *summed.entry(category).or_insert(0.0) += count;
        }
        let counts: BTreeMap<_, _> = summed.into_iter().filter(|(_, n)| *n > 0.0).collect();
        let total = counts.values().sum();
        if counts.is_empty() {
            return Err(Error::InvalidArgument(
                "a categorical distribution needs at least one counted value".into(),
            ));
        }
        Ok(Self { counts, total })
    }

    pub fn total(&self) -> f64 {
        self.total
    }

    pub fn counts(&self) -> &BTreeMap<Category, f64> {
        &self.counts
    }
}

/// The counts of both over the union of their categories, in category order, zero where a
/// side never saw the category.
pub fn aligned_counts(reference: &CategoryCounts, current: &CategoryCounts) -> Binned {
    let categories: BTreeSet<&Category> = reference
        .counts
        .keys()
        .chain(current.counts.keys())
        .collect();
    let count = |side: &CategoryCounts, category: &Category| {
        side.counts.get(category).copied().unwrap_or(0.0)
    };
    Binned {
        reference: categories.iter().map(|c| count(reference, c)).collect(),
        current: categories.iter().map(|c| count(current, c)).collect(),
    }
}

/// The probabilities of both over the union of their categories (count / total), ready for
/// `psi` (whose empty-bin rule is then Evidently's for categorical columns) and `js_distance`.
pub fn aligned(reference: &CategoryCounts, current: &CategoryCounts) -> Binned {
    let counts = aligned_counts(reference, current);
    let share = |counts: Vec<f64>, total: f64| counts.into_iter().map(|n| n / total).collect();
    Binned {
        reference: share(counts.reference, reference.total),
        current: share(counts.current, current.total),
    }
}

/// The union of both sides' categories, in the order of `aligned` and `aligned_counts`.
pub fn aligned_categories(reference: &CategoryCounts, current: &CategoryCounts) -> Vec<Category> {
    let categories: BTreeSet<&Category> = reference
        .counts
        .keys()
        .chain(current.counts.keys())
        .collect();
    categories.into_iter().cloned().collect()
}

/// max over the union of categories of |p_ref - p_cur|, as NannyML's `l_infinity` method
/// (nannyml/drift/univariate/methods.py, `LInfinityDistance`).
pub fn linf(reference: &CategoryCounts, current: &CategoryCounts) -> f64 {
    let probabilities = aligned(reference, current);
    probabilities
        .reference
        .iter()
        .zip(&probabilities.current)
        .map(|(r, c)| (r - c).abs())
        .fold(0.0, f64::max)
}

/// Pearson's chi-square test of homogeneity on the 2 x C table (reference and current counts
/// over the union of categories), with the effect size the product judges drift by.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChiSquare {
    pub statistic: f64,
    pub dof: usize,
    pub p_value: f64,
    /// Cramér's V, sqrt(chi2 / (n · min(rows - 1, columns - 1))) with the uncorrected
    /// statistic, in [0, 1]. At a million rows any difference has a tiny p-value; V says how
    /// large the difference is.
    pub cramers_v: f64,
}

/// The chi-square test exactly as `scipy.stats.chi2_contingency(table)` computes it with its
/// defaults, the call NannyML's `chi2` method makes: expected counts row total · column total / n,
/// statistic Σ (observed - expected)^2 / expected, dof = C - 1, and with 2 categories (dof 1)
/// Yates' continuity correction (each observed count moved up to 0.5 towards its expected one).
/// One category has dof 0, statistic 0 and p-value 1, as in scipy.
///
/// Cramér's V uses the uncorrected statistic, as `scipy.stats.contingency.association(table,
/// method="cramer")` does, so that it reads the same for 2 categories as for more (0 for a single
/// category, which cannot differ).
pub fn chi_square(reference: &CategoryCounts, current: &CategoryCounts) -> ChiSquare {
    let table = aligned_counts(reference, current);
    let dof = table.reference.len() - 1;
    if dof == 0 {
        return ChiSquare {
            statistic: 0.0,
            dof,
            p_value: 1.0,
            cramers_v: 0.0,
        };
    }
    let uncorrected = pearson(&table, reference.total, current.total, false);
    let statistic = if dof == 1 {
        pearson(&table, reference.total, current.total, true)
    } else {
        uncorrected
    };
    ChiSquare {
        statistic,
        dof,
        p_value: chi_square_sf(statistic, dof as f64),
        cramers_v: (uncorrected / (reference.total + current.total)).sqrt(),
    }
}

/// Σ (observed - expected)^2 / expected over both rows of the table, optionally with Yates'
/// correction.
fn pearson(table: &Binned, reference_total: f64, current_total: f64, yates: bool) -> f64 {
    let n = reference_total + current_total;
    let term = |observed: f64, row_total: f64, column_total: f64| {
        let expected = row_total * column_total / n;
        let observed = if yates {
            let difference = expected - observed;
            observed + difference.signum() * difference.abs().min(0.5)
        } else {
            observed
        };
        (observed - expected).powi(2) / expected
    };
    table
        .reference
        .iter()
        .zip(&table.current)
        .map(|(&r, &c)| term(r, reference_total, r + c) + term(c, current_total, r + c))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, f64)]) -> CategoryCounts {
        CategoryCounts::from_counts(
            pairs
                .iter()
                .map(|(name, n)| (Category::Text(name.to_string()), *n)),
        )
        .unwrap()
    }

    #[test]
    fn counting_values_sums_repeats_and_orders_categories() {
        let names = ["b", "a", "b", "c", "b"];
        let counted =
            CategoryCounts::from_values(names.iter().map(|s| Category::Text(s.to_string())))
                .unwrap();
        assert_eq!(counted, counts(&[("a", 1.0), ("b", 3.0), ("c", 1.0)]));
        assert_eq!(counted.total(), 5.0);
        assert_eq!(counts(&[("a", 2.0), ("z", 0.0)]).counts().len(), 1);
        assert!(CategoryCounts::from_counts([]).is_err());
        assert!(CategoryCounts::from_counts([(Category::Text("a".into()), -1.0)]).is_err());
    }

    #[test]
    fn number_keys_compare_by_value() {
        let key = |v: f64| Category::Number(NumberKey::new(v).unwrap());
        assert_eq!(key(-0.0), key(0.0));
        assert_ne!(key(3.0), Category::Text("3".into()));
        assert!(NumberKey::new(f64::NAN).is_err());
        let flags = CategoryCounts::from_values([key(1.0), key(0.0), key(-0.0)]).unwrap();
        assert_eq!(flags.counts().get(&key(0.0)), Some(&2.0));
        assert_eq!(NumberKey::new(-0.0).unwrap().value().to_bits(), 0);
    }

    #[test]
    fn aligned_covers_the_union_of_categories() {
        let (a, b) = (
            counts(&[("x", 1.0), ("y", 3.0)]),
            counts(&[("y", 1.0), ("z", 1.0)]),
        );
        let probabilities = aligned(&a, &b);
        assert_eq!(probabilities.reference, [0.25, 0.75, 0.0]);
        assert_eq!(probabilities.current, [0.0, 0.5, 0.5]);
        assert_eq!(linf(&a, &b), 0.5);
        assert_eq!(linf(&a, &a), 0.0);
    }

    #[test]
    fn chi_square_by_hand() {
        // 2 x 3 table [[10, 20, 30], [20, 20, 20]]: n = 120, row totals 60, column totals
        // 30, 40, 50, so every expected count is half a column total.
        let a = counts(&[("p", 10.0), ("q", 20.0), ("r", 30.0)]);
        let b = counts(&[("p", 20.0), ("q", 20.0), ("r", 20.0)]);
        let result = chi_square(&a, &b);
        let statistic = 2.0 * (25.0 / 15.0 + 0.0 + 25.0 / 25.0);
        assert!((result.statistic - statistic).abs() < 1e-14);
        assert_eq!(result.dof, 2);
        // Two degrees of freedom: the p-value is exp(-chi2 / 2).
        assert!((result.p_value - (-statistic / 2.0).exp()).abs() < 1e-15);
        assert!((result.cramers_v - (statistic / 120.0).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn chi_square_corrects_two_categories_as_scipy() {
        // [[10, 30], [20, 20]]: expected [[15, 25], [15, 25]], every |difference| 5, corrected
        // to 4.5: chi2 = 4.5^2 (2/15 + 2/25).
        let result = chi_square(
            &counts(&[("no", 10.0), ("yes", 30.0)]),
            &counts(&[("no", 20.0), ("yes", 20.0)]),
        );
        assert!((result.statistic - 20.25 * (2.0 / 15.0 + 2.0 / 25.0)).abs() < 1e-13);
        assert_eq!(result.dof, 1);
        let uncorrected = 25.0 * (2.0 / 15.0 + 2.0 / 25.0);
        assert!((result.cramers_v - (uncorrected / 80.0_f64).sqrt()).abs() < 1e-15);
        // The correction never overshoots: a difference under 0.5 is corrected to 0.
        let tiny = chi_square(
            &counts(&[("no", 5.0), ("yes", 5.0)]),
            &counts(&[("no", 5.0), ("yes", 6.0)]),
        );
        assert!(tiny.statistic < 1e-20, "{tiny:?}");
        assert!(tiny.p_value > 1.0 - 1e-12, "{tiny:?}");
    }

    #[test]
    fn one_category_cannot_drift() {
        let result = chi_square(&counts(&[("a", 5.0)]), &counts(&[("a", 50.0)]));
        assert_eq!(
            result,
            ChiSquare {
                statistic: 0.0,
                dof: 0,
                p_value: 1.0,
                cramers_v: 0.0
            }
        );
    }
}
