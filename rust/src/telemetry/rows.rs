//! The store's rows of a decoded batch, built without Python objects per field: each window's
//! `telemetry_windows` row (numbers checked for the store), the frames refused with why, and
//! per group of frames the counters and latency histogram summed (bucket_rows.py).

use std::collections::{HashMap, HashSet};

use super::Decoded;

/// Metrics that are counters: summed over windows and devices (bucket_rows.py COUNTERS).
pub const COUNTERS: [&str; 3] = ["requests", "rows", "errors"];
/// Latency histogram buckets, summed like counters.
pub const LATENCY_PREFIXES: [&str; 2] = ["latency_le_", "latency_over_"];

/// A window's row as `telemetry_windows` stores it, then the frame's index in the batch.
pub type Row = (
    String,
    String,
    String,
    u64,
    f64,
    f64,
    i64,
    i64,
    String,
    usize,
);

/// What a batch makes: rows (the first of each message key only), refused frames
/// `(index, device, reason)`, windows of no bundle, unreadable profiles
/// `(device, message id, role, reason)`.
#[derive(Default)]
pub struct Rows {
    pub rows: Vec<Row>,
    pub refused: Vec<(usize, String, String)>,
    pub unattributed: usize,
    pub corrupt: Vec<(String, String, String, String)>,
}

/// Summed counters of a group of windows: requests, rows, errors, latency buckets, unreadable
/// profiles.
pub type Totals = (f64, f64, f64, HashMap<String, f64>, usize);

fn counted(name: &str) -> bool {
    COUNTERS.contains(&name) || LATENCY_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Why the window's numbers do not fit the store (never negative, never past `max_integer`).
fn check_numbers(version: u64, metrics: &[(String, f64)], max_integer: u64) -> Result<(), String> {
    if version > max_integer {
        return Err(format!("bundle version {version} is too large"));
    }
    for (name, value) in metrics {
        if counted(name) && !(0.0..=max_integer as f64).contains(value) {
            return Err(format!(
                "metric {name} is {value}, outside [0, {max_integer}]"
            ));
        }
    }
    Ok(())
}

fn metric(metrics: &[(String, f64)], name: &str) -> f64 {
    metrics
        .iter()
        .find(|(k, _)| k == name)
        .map_or(0.0, |(_, v)| *v)
}

/// The `latency_*` metrics as the JSON object Python's `json.dumps` would write (names are
/// plain ASCII by the frame's checks; numbers finite).
fn latency_json(metrics: &[(String, f64)]) -> String {
    let items: Vec<String> = metrics
        .iter()
        .filter(|(k, _)| k.starts_with("latency_"))
        .map(|(k, v)| format!("\"{k}\": {}", python_float(*v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

fn python_float(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e16 {
        format!("{value:.1}")
    } else {
        format!("{value:?}")
    }
}

/// The rows of `decoded`, `devices[i]` the sender of frame `i`.
pub fn build(decoded: &[Result<Decoded, String>], devices: &[String], max_integer: u64) -> Rows {
    let mut out = Rows::default();
    let mut keys = HashSet::new();
    for (index, (item, device)) in decoded.iter().zip(devices).enumerate() {
        let d = match item {
            Err(reason) => {
                out.refused.push((index, device.clone(), reason.clone()));
                continue;
            }
            Ok(d) => d,
        };
        let frame = &d.frame;
        for (role, reason) in &d.corrupt {
            out.corrupt.push((
                device.clone(),
                frame.id.clone(),
                role.clone(),
                reason.clone(),
            ));
        }
        let Some(bundle) = &frame.bundle else {
            out.unattributed += 1;
            continue;
        };
        if let Err(reason) = check_numbers(bundle.version, &frame.metrics, max_integer) {
            let reason = format!("message {}: {reason}", frame.id);
            out.refused.push((index, device.clone(), reason));
            continue;
        }
        // registry.message_key: ids are unique per sender only.
        let key = format!("{device}/{}", frame.id);
        if !keys.insert(key.clone()) {
            continue; // redelivered within the batch: the first one counts
        }
        out.rows.push((
            device.clone(),
            key,
            bundle.name.clone(),
            bundle.version,
            frame.window_start,
            frame.window_end,
            metric(&frame.metrics, "requests") as i64,
            metric(&frame.metrics, "errors") as i64,
            latency_json(&frame.metrics),
            index,
        ));
    }
    out
}

/// The counters and latency buckets of the frames `indices` summed (refused ones skipped).
pub fn totals(decoded: &[Result<Decoded, String>], indices: &[usize]) -> Totals {
    let (mut requests, mut rows, mut errors, mut corrupt) = (0.0, 0.0, 0.0, 0);
    let mut latency: HashMap<String, f64> = HashMap::new();
    for &index in indices {
        let Some(Ok(d)) = decoded.get(index) else {
            continue;
        };
        corrupt += d.corrupt.len();
        for (name, value) in &d.frame.metrics {
            match name.as_str() {
                "requests" => requests += value,
                "rows" => rows += value,
                "errors" => errors += value,
                _ if LATENCY_PREFIXES.iter().any(|p| name.starts_with(p)) => {
                    *latency.entry(name.clone()).or_default() += value;
                }
                _ => {}
            }
        }
    }
    (requests, rows, errors, latency, corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_out_of_range_are_refused() {
        let ok = vec![
            ("requests".to_string(), 3.0),
            ("latency_le_5ms".to_string(), 2.0),
        ];
        assert!(check_numbers(1, &ok, 100).is_ok());
        let negative = vec![("latency_over_5ms".to_string(), -1.0)];
        assert!(check_numbers(1, &negative, 100).is_err());
        let big = vec![("rows".to_string(), 101.0)];
        assert!(check_numbers(1, &big, 100).is_err());
        assert!(check_numbers(101, &ok, 100).is_err());
        // A metric that is no counter may hold any finite number.
        assert!(check_numbers(1, &[("temperature".to_string(), -40.0)], 100).is_ok());
    }

    #[test]
    fn latency_json_reads_as_python_writes_it() {
        let metrics = vec![
            ("requests".to_string(), 3.0),
            ("latency_le_5ms".to_string(), 2.0),
            ("latency_mean_ms".to_string(), 0.25),
        ];
        assert_eq!(
            latency_json(&metrics),
            "{\"latency_le_5ms\": 2.0, \"latency_mean_ms\": 0.25}"
        );
        assert_eq!(latency_json(&[]), "{}");
    }
}
