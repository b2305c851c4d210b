//! KLL quantile sketch (being written).
