//! Drift between two profiles, column by column, with a verdict.
//!
//! Each column is compared with the metrics `exact` computes from raw data, here read off the
//! profiles: a numeric column's CDF comes from its quantile sketch (with the sketch's rank error)
//! or, when it has few values, from their exact counts; a categorical column's shares from its
//! frequent items.
//!
//! Verdicts judge effect sizes, which do not grow with the sample, against fixed thresholds:
//! - numeric columns (continuous or few-valued): the Wasserstein distance in units of the
//!   reference's standard deviation, drift above 0.1 (Evidently's default for large samples);
//!   it catches a shift of the mean, of the spread, and of a rare count's rate alike;
//! - categorical and boolean columns: the Jensen-Shannon distance between the category shares
//!   (natural log), drift above 0.05.
//!
//! A test statistic only guards small samples: a column is called drifted when its effect size
//! is over the threshold *and* the difference is beyond chance at the 0.1% level (KS for numbers,
//! beyond the sketches' error band; chi-square for categories). At a million rows the guard
//! always passes and the effect size decides; at a hundred rows it keeps noise from being called
//! drift.

use super::binned;
use super::bins::{bin_probabilities, equal_width_edges};
use super::categorical::{self, Category, CategoryCounts, NumberKey};
use super::cdf::{Moments, NumericSummary, StepCdf};
use super::divergence::{js_distance, psi};
use super::numeric::{ks, wasserstein_normed};
use crate::error::{Error, Result};
use crate::profile::{self, ColumnProfile, Profile, Shape, Stats};

/// Thresholds of the verdicts (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    pub numeric: f64,
    pub categorical: f64,
    /// Significance level of the small-sample guard.
    pub significance: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            numeric: 0.1,
            categorical: 0.05,
            significance: 0.001,
        }
    }
}

/// Bins of the reference-quantile PSI / Jensen-Shannon figures, and of the plotted histograms.
const QUANTILE_BINS: usize = 10;
const PLOT_BINS: usize = 30;

/// How two distributions are drawn side by side in a report.
#[derive(Clone, Debug)]
pub enum Distribution {
    Histogram {
        edges: Vec<f64>,
        reference: Vec<f64>,
        current: Vec<f64>,
    },
    Categories {
        categories: Vec<String>,
        reference: Vec<f64>,
        current: Vec<f64>,
    },
    /// The column is missing on one side.
    None,
}

#[derive(Clone, Debug)]
pub struct ColumnDrift {
    pub name: String,
    /// numeric, discrete, categorical, boolean or missing.
    pub kind: &'static str,
    pub method: &'static str,
    pub score: f64,
    pub threshold: f64,
    pub drifted: bool,
    pub metrics: Vec<(&'static str, f64)>,
    pub distribution: Distribution,
}

/// Every column of either profile, compared.
pub fn compare(
    reference: &Profile,
    current: &Profile,
    thresholds: Thresholds,
) -> Result<Vec<ColumnDrift>> {
    let mut columns = Vec::new();
    for column in &reference.columns {
        columns.push(match current.column(&column.name) {
            Some(other) => compare_column(column, other, thresholds)?,
            None => missing(&column.name, "current"),
        });
    }
    for column in &current.columns {
        if reference.column(&column.name).is_none() {
            columns.push(missing(&column.name, "reference"));
        }
    }
    Ok(columns)
}

fn missing(name: &str, side: &'static str) -> ColumnDrift {
    ColumnDrift {
        name: name.to_owned(),
        kind: "missing",
        method: if side == "current" {
            "missing in current"
        } else {
            "missing in reference"
        },
        score: f64::NAN,
        threshold: f64::NAN,
        drifted: true,
        metrics: Vec::new(),
        distribution: Distribution::None,
    }
}

fn compare_column(
    reference: &ColumnProfile,
    current: &ColumnProfile,
    thresholds: Thresholds,
) -> Result<ColumnDrift> {
    if reference.kind != current.kind {
        return Err(Error::InvalidArgument(format!(
            "column '{}' is {} in the reference and {} in the current data",
            reference.name,
            reference.kind.name(),
            current.kind.name()
        )));
    }
    // A column sensitive on either side is compared the way a sensitive profile keeps it.
    let private = reference.sensitive || current.sensitive;
    match (&reference.stats, &current.stats) {
        (Stats::Numeric(a), Stats::Numeric(b)) => {
            numeric(&reference.name, a, b, private, thresholds)
        }
        (Stats::Boolean { .. }, Stats::Boolean { .. })
        | (Stats::Categorical(_), Stats::Categorical(_)) => {
            let kind = if matches!(reference.stats, Stats::Boolean { .. }) {
                "boolean"
            } else {
                "categorical"
            };
            let (a, b) = (counts(reference, private)?, counts(current, private)?);
            categorical_drift(&reference.name, kind, &a, &b, thresholds)
        }
        _ => unreachable!("equal kinds have equal statistics"),
    }
}

fn numeric(
    name: &str,
    reference: &profile::NumericStats,
    current: &profile::NumericStats,
    private: bool,
    thresholds: Thresholds,
) -> Result<ColumnDrift> {
    let (Some(a), Some(b)) = (summary(reference, private)?, summary(current, private)?) else {
        return Ok(ColumnDrift {
            name: name.to_owned(),
            kind: "numeric",
            method: "no finite values",
            score: f64::NAN,
            threshold: thresholds.numeric,
            drifted: reference.finite() != current.finite(),
            metrics: Vec::new(),
            distribution: Distribution::None,
        });
    };
    let discrete = (!private)
        .then(|| few_values(reference).zip(few_values(current)))
        .flatten();
    let score = wasserstein_normed(&a.cdf, &b.cdf, a.moments.std);
    let ks = ks(&a.cdf, &b.cdf);
    let (n, m) = (a.moments.count, b.moments.count);
    // The two-sample KS critical value c(α)·sqrt((n + m) / nm), c(α) = sqrt(-ln(α / 2) / 2).
    let critical =
        (-(thresholds.significance / 2.0).ln() / 2.0).sqrt() * ((n + m) / (n * m)).sqrt();
    let beyond_chance = ks.statistic - ks.band > critical;
    let mut metrics = vec![
        ("wasserstein_normed", score),
        ("ks", ks.statistic),
        ("ks_band", ks.band),
    ];
    let quantiles = binned::quantiles(&a.cdf, &b.cdf, QUANTILE_BINS)?;
    metrics.push(("psi", psi(&quantiles.reference, &quantiles.current)?));
    metrics.push(("js", js_distance(&quantiles.reference, &quantiles.current)?));
    let (kind, distribution) = match discrete {
        Some((values_a, values_b)) => {
            let probabilities = categorical::aligned(&values_a, &values_b);
            metrics.push((
                "js_values",
                js_distance(&probabilities.reference, &probabilities.current)?,
            ));
            ("discrete", categories_of(&values_a, &values_b))
        }
        None => ("numeric", histogram(&a, &b)?),
    };
    Ok(ColumnDrift {
        name: name.to_owned(),
        kind,
        method: "wasserstein_normed",
        score,
        threshold: thresholds.numeric,
        drifted: score > thresholds.numeric && beyond_chance,
        metrics,
        distribution,
    })
}

/// The CDF and moments drift reads from a numeric column, at the resolution of a sensitive
/// column's histogram when `private`; None when it has no finite values.
fn summary(stats: &profile::NumericStats, private: bool) -> Result<Option<NumericSummary>> {
    let count = stats.finite();
    if count == 0 {
        return Ok(None);
    }
    let moments = &stats.moments;
    let binned;
    let shape = match &stats.shape {
        Shape::Open { quantiles, .. } if private => {
            binned = Shape::Private(histogram_of(&quantiles.sorted_view()));
            &binned
        }
        shape => shape,
    };
    let (values, cumulative, rank_error, (min, max)) = match shape {
        Shape::Open {
            values: Some(counts),
            range,
            ..
        } => {
            let (values, weights): (Vec<f64>, Vec<f64>) =
                counts.iter().map(|(v, c)| (v, c as f64)).unzip();
            (
                values,
                running(&weights),
                0.0,
                range.expect("values were counted"),
            )
        }
        Shape::Open {
            quantiles, range, ..
        } => {
            let view = quantiles.sorted_view();
            let cumulative = view.cumulative.iter().map(|&c| c as f64).collect();
            (
                view.values,
                cumulative,
                quantiles.normalized_rank_error(),
                range.expect("values were sketched"),
            )
        }
        Shape::Private(histogram) => {
            // A sensitive column's values are known only to their bin: each bin's count sits at
            // its upper edge (magnitude), which is as fine as the bins (about 19% wide).
            let (values, weights): (Vec<f64>, Vec<f64>) = histogram
                .iter()
                .map(|(bin, count)| (profile::Histogram::edges(bin).1, count as f64))
                .unzip();
            let range = (values[0], values[values.len() - 1]);
            (values, running(&weights), 0.0, range)
        }
    };
    let n = count as f64;
    let std = (moments.m2 / n).sqrt();
    let skewness = if moments.m2 > 0.0 {
        n.sqrt() * moments.m3 / moments.m2.powf(1.5)
    } else {
        0.0
    };
    Ok(Some(NumericSummary {
        cdf: StepCdf::from_weighted(values, cumulative, rank_error)?,
        moments: Moments {
            count: n,
            min,
            max,
            mean: moments.mean,
            std,
            skewness,
        },
    }))
}

/// A sketch's weighted sample put into a sensitive column's fixed bins.
fn histogram_of(view: &profile::kll::SortedView) -> profile::Histogram {
    let mut histogram = profile::Histogram::default();
    let mut below = 0;
    for (&value, &cumulative) in view.values.iter().zip(&view.cumulative) {
        histogram.add(value, cumulative - below);
        below = cumulative;
    }
    histogram
}

fn running(weights: &[f64]) -> Vec<f64> {
    weights
        .iter()
        .scan(0.0, |total, w| {
            *total += w;
            Some(*total)
        })
        .collect()
}

/// A few-valued column's exact counts as categories.
fn few_values(stats: &profile::NumericStats) -> Option<CategoryCounts> {
    let Shape::Open {
        values: Some(counts),
        ..
    } = &stats.shape
    else {
        return None;
    };
    let counts = counts
        .iter()
        .map(|(value, count)| Ok((Category::Number(NumberKey::new(value)?), count as f64)));
    CategoryCounts::from_counts(counts.collect::<Result<Vec<_>>>().ok()?).ok()
}

/// The shares of a categorical or boolean column; with `private`, string categories by their
/// pseudonyms, as a sensitive column keeps them.
fn counts(column: &ColumnProfile, private: bool) -> Result<CategoryCounts> {
    let pairs: Vec<(Category, f64)> = match &column.stats {
        Stats::Boolean {
            true_count,
            false_count,
        } => vec![
            (Category::Text("false".into()), *false_count as f64),
            (Category::Text("true".into()), *true_count as f64),
        ],
        Stats::Categorical(stats) => stats
            .categories()
            .0
            .iter()
            .map(|(category, count)| {
                let category = match category {
                    profile::Category::Value(value) if private => {
                        profile::Category::Hash(profile::pseudonym(value))
                    }
                    other => other.clone(),
                };
                let label = profile::python::category_label(&category);
                (Category::Text(label), *count as f64)
            })
            .collect(),
        Stats::Numeric(_) => unreachable!("numeric columns are compared as numbers"),
    };
    CategoryCounts::from_counts(pairs)
}

fn categorical_drift(
    name: &str,
    kind: &'static str,
    reference: &CategoryCounts,
    current: &CategoryCounts,
    thresholds: Thresholds,
) -> Result<ColumnDrift> {
    let shares = categorical::aligned(reference, current);
    let score = js_distance(&shares.reference, &shares.current)?;
    let chi = categorical::chi_square(reference, current);
    Ok(ColumnDrift {
        name: name.to_owned(),
        kind,
        method: "js_distance",
        score,
        threshold: thresholds.categorical,
        drifted: score > thresholds.categorical && chi.p_value < thresholds.significance,
        metrics: vec![
            ("js", score),
            ("linf", categorical::linf(reference, current)),
            ("psi", psi(&shares.reference, &shares.current)?),
            ("chi2", chi.statistic),
            ("chi2_p_value", chi.p_value),
            ("cramers_v", chi.cramers_v),
        ],
        distribution: categories_of(reference, current),
    })
}

/// Categories of either side for a plot: the most frequent first.
fn categories_of(reference: &CategoryCounts, current: &CategoryCounts) -> Distribution {
    let shares = categorical::aligned(reference, current);
    let names = categorical::aligned_categories(reference, current);
    let mut rows: Vec<(String, f64, f64)> = names
        .iter()
        .zip(shares.reference.iter().zip(&shares.current))
        .map(|(category, (&a, &b))| (label(category), a, b))
        .collect();
    rows.sort_by(|x, y| (y.1 + y.2).total_cmp(&(x.1 + x.2)));
    Distribution::Categories {
        categories: rows.iter().map(|r| r.0.clone()).collect(),
        reference: rows.iter().map(|r| r.1).collect(),
        current: rows.iter().map(|r| r.2).collect(),
    }
}

fn label(category: &Category) -> String {
    match category {
        Category::Text(text) => text.clone(),
        Category::Number(number) => number.value().to_string(),
    }
}

/// Both sides over the same equal-width bins spanning both ranges.
fn histogram(reference: &NumericSummary, current: &NumericSummary) -> Result<Distribution> {
    let low = reference.moments.min.min(current.moments.min);
    let high = reference.moments.max.max(current.moments.max);
    let edges = equal_width_edges(low, high, PLOT_BINS)?;
    Ok(Distribution::Histogram {
        reference: bin_probabilities(&reference.cdf, &edges)?,
        current: bin_probabilities(&current.cdf, &edges)?,
        edges,
    })
}
