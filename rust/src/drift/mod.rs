//! Drift between a reference and a current sample of one column.
//!
//! Every numeric metric reads one representation, [`StepCdf`], whether it was built from raw
//! data (`exact` mode, no error) or from a profile's KLL sketch (with the sketch's rank error),
//! so each metric has one implementation. Categorical columns, and numeric ones with few
//! distinct values, are compared as [`CategoryCounts`].
//!
//! Where a peer defines a metric (scipy, Evidently, NannyML) the function documents which
//! definition it follows, and `tests/test_drift_exact.py` checks it against that definition.

pub mod binned;
pub mod bins;
pub mod categorical;
pub mod cdf;
pub mod divergence;
pub mod exact;
mod gamma;
pub mod numeric;
pub mod profiles;
pub mod python;
pub mod schema;
pub mod schema_python;
pub mod validate;

pub use binned::Binned;
pub use categorical::{chi_square, linf, Category, CategoryCounts, ChiSquare, NumberKey};
pub use cdf::{Moments, NumericSummary, StepCdf};
pub use divergence::{js_distance, js_distance_bits, psi};
pub use numeric::{ks, wasserstein, wasserstein_normed, Ks};
