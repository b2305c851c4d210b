//! `edgewise._core.TelemetryBatch` and `merge_profiles`: the collector's batch path as Python
//! sees it. Inputs are copied into owned Rust values, then the work runs without the GIL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use rayon::prelude::*;

use super::rows::{self, Row, Totals};
use super::{decode_with_profiles, merge_group, Decoded};
use crate::profile::Profile;
use crate::runtime::thread_pool;

/// A batch of raw telemetry frames, decoded and checked, their profiles parsed.
#[pyclass(name = "TelemetryBatch", module = "edgewise._core", frozen)]
pub struct PyTelemetryBatch {
    payloads: Vec<Vec<u8>>,
    decoded: Mutex<Vec<Result<Decoded, String>>>,
    pool: Arc<rayon::ThreadPool>,
}

type Merged = (HashMap<String, Vec<u8>>, usize);
type RowsOut = (
    Vec<Row>,
    Vec<(usize, String, String)>,
    usize,
    Vec<(String, String, String, String)>,
);

impl PyTelemetryBatch {
    /// A batch of `payloads` already decoded (`decoded[i]` from `payloads[i]`).
    pub fn from_decoded(
        payloads: Vec<Vec<u8>>,
        decoded: Vec<Result<Decoded, String>>,
        pool: Arc<rayon::ThreadPool>,
    ) -> Self {
        Self {
            payloads,
            decoded: Mutex::new(decoded),
            pool,
        }
    }
}

#[pymethods]
impl PyTelemetryBatch {
    #[new]
    #[pyo3(signature = (payloads, threads=None))]
    fn py_new(
        py: Python<'_>,
        payloads: Vec<Bound<'_, PyBytes>>,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let payloads: Vec<Vec<u8>> = payloads.iter().map(|p| p.as_bytes().to_vec()).collect();
        let pool = thread_pool(threads)?;
        let decoded = py.detach(|| {
            pool.install(|| {
                payloads
                    .par_iter()
                    .map(|p| decode_with_profiles(p))
                    .collect()
            })
        });
        Ok(Self::from_decoded(payloads, decoded, pool))
    }

    fn __len__(&self) -> usize {
        self.payloads.len()
    }

    /// Per payload, its fields as a tuple `(id, ts, window_start, window_end, bundle, metrics,
    /// roles, corrupt)` (bundle `(name, version, sha256 hex, length)` or None; roles the
    /// profiles that parsed; corrupt `(role, reason)` of those that did not), or the reason
    /// the payload was refused, as a string.
    fn windows<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let decoded = self.decoded.lock().expect("telemetry batch lock poisoned");
        decoded
            .iter()
            .map(|item| match item {
                Err(reason) => Ok(reason.into_pyobject(py)?.into_any()),
                Ok(d) => fields(py, d),
            })
            .collect()
    }

    /// The store's rows of the batch, `devices[i]` the sender of frame `i`: `(rows, refused,
    /// unattributed, corrupt)`. Rows are `telemetry_windows`' columns (device, message key,
    /// bundle name, version, start, end, count, errors, latency JSON) then the frame's index,
    /// the first of each message key only; refused `(index, device, reason)`: frames that did
    /// not decode or whose version or counters fall outside [0, `max_integer`]; unattributed:
    /// windows of no bundle; corrupt `(device, message id, role, reason)`: unreadable profiles.
    fn rows(&self, devices: Vec<String>, max_integer: u64) -> PyResult<RowsOut> {
        let decoded = self.decoded.lock().expect("telemetry batch lock poisoned");
        if devices.len() != decoded.len() {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "{} devices for {} frames",
                devices.len(),
                decoded.len()
            )));
        }
        let out = rows::build(&decoded, &devices, max_integer);
        Ok((out.rows, out.refused, out.unattributed, out.corrupt))
    }

    /// Per group of frame indices: requests, rows and errors summed, the latency buckets
    /// summed, and how many of their profiles were unreadable.
    fn totals(&self, groups: Vec<Vec<usize>>) -> Vec<Totals> {
        let decoded = self.decoded.lock().expect("telemetry batch lock poisoned");
        groups.iter().map(|g| rows::totals(&decoded, g)).collect()
    }

    /// Payload `index` as received.
    fn payload<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyBytes>> {
        let payload = self.payloads.get(index).ok_or_else(|| {
            pyo3::exceptions::PyIndexError::new_err(format!("no payload {index} in the batch"))
        })?;
        Ok(PyBytes::new(py, payload))
    }

    /// The raw profile bytes of payload `index`, by role (those of refused payloads: none).
    fn sections<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyDict>> {
        let sections = PyDict::new(py);
        let decoded = self.decoded.lock().expect("telemetry batch lock poisoned");
        let item = decoded.get(index).ok_or_else(|| {
            pyo3::exceptions::PyIndexError::new_err(format!("no payload {index} in the batch"))
        })?;
        if let Ok(d) = item {
            for (role, range) in &d.frame.sections {
                sections.set_item(role, PyBytes::new(py, &self.payloads[index][range.clone()]))?;
            }
        }
        Ok(sections)
    }

    /// Per group of payload indices, their profiles merged per role, and how many profiles
    /// were skipped (columns unlike the first one's). Each payload's profiles are taken by the
    /// first group that names it.
    fn merge<'py>(
        &self,
        py: Python<'py>,
        groups: Vec<Vec<usize>>,
    ) -> PyResult<Vec<(Bound<'py, PyDict>, usize)>> {
        let mut decoded = self.decoded.lock().expect("telemetry batch lock poisoned");
        let mut inputs: Vec<Vec<(String, Profile)>> = Vec::new();
        for members in &groups {
            let mut profiles = Vec::new();
            for &index in members {
                let Some(Ok(item)) = decoded.get_mut(index) else {
                    continue;
                };
                for (role, profile) in &mut item.profiles {
                    if let Some(profile) = profile.take() {
                        profiles.push((role.clone(), profile));
                    }
                }
            }
            inputs.push(profiles);
        }
        drop(decoded);
        let merged: Vec<Merged> = py.detach(|| {
            self.pool
                .install(|| inputs.into_par_iter().map(merge_roles).collect())
        });
        merged
            .into_iter()
            .map(|(roles, skipped)| {
                let out = PyDict::new(py);
                for (role, bytes) in roles {
                    out.set_item(role, PyBytes::new(py, &bytes))?;
                }
                Ok((out, skipped))
            })
            .collect()
    }
}

/// Per group of serialized profiles, one profile of them all (None for an empty group or one
/// whose profiles all failed) and how many were skipped (unreadable, or columns unlike the
/// first readable one's).
#[pyfunction]
#[pyo3(signature = (groups, threads=None))]
pub fn merge_profiles<'py>(
    py: Python<'py>,
    groups: Vec<Vec<Vec<u8>>>,
    threads: Option<usize>,
) -> PyResult<Vec<(Option<Bound<'py, PyBytes>>, usize)>> {
    let pool = thread_pool(threads)?;
    let merged: Vec<(Option<Vec<u8>>, usize)> = py.detach(|| {
        pool.install(|| {
            groups
                .into_par_iter()
                .map(|blobs| {
                    let (profiles, unreadable) = parse_all(blobs.iter().map(Vec::as_slice));
                    let (merged, skipped) = merge_group(profiles);
                    (merged.map(|p| p.to_bytes()), unreadable + skipped)
                })
                .collect()
        })
    });
    Ok(merged
        .into_iter()
        .map(|(bytes, skipped)| (bytes.map(|b| PyBytes::new(py, &b)), skipped))
        .collect())
}

/// The profiles merged per role, in the order they came.
fn merge_roles(profiles: Vec<(String, Profile)>) -> Merged {
    let mut by_role: HashMap<String, Vec<Profile>> = HashMap::new();
    let mut skipped = 0;
    for (role, profile) in profiles {
        by_role.entry(role).or_default().push(profile);
    }
    let mut out = HashMap::new();
    for (role, profiles) in by_role {
        let (merged, dropped) = merge_group(profiles);
        skipped += dropped;
        if let Some(merged) = merged {
            out.insert(role, merged.to_bytes());
        }
    }
    (out, skipped)
}

fn parse_all<'a>(blobs: impl Iterator<Item = &'a [u8]>) -> (Vec<Profile>, usize) {
    let mut unreadable = 0;
    let profiles = blobs
        .filter_map(|b| Profile::from_bytes(b).map_err(|_| unreadable += 1).ok())
        .collect();
    (profiles, unreadable)
}

fn fields<'py>(py: Python<'py>, d: &Decoded) -> PyResult<Bound<'py, PyAny>> {
    let frame = &d.frame;
    let bundle = frame.bundle.as_ref().map(|b| {
        let sha: String = b.sha256.iter().map(|byte| format!("{byte:02x}")).collect();
        (b.name.as_str(), b.version, sha, b.length)
    });
    let metrics = PyDict::new(py);
    for (name, value) in &frame.metrics {
        metrics.set_item(name, value)?;
    }
    let roles: Vec<&str> = d
        .profiles
        .iter()
        .filter(|(_, p)| p.is_some())
        .map(|(r, _)| r.as_str())
        .collect();
    let tuple = PyTuple::new(
        py,
        [
            frame.id.as_str().into_pyobject(py)?.into_any(),
            frame.ts.into_pyobject(py)?.into_any(),
            frame.window_start.into_pyobject(py)?.into_any(),
            frame.window_end.into_pyobject(py)?.into_any(),
            bundle.into_pyobject(py)?.into_any(),
            metrics.into_any(),
            roles.into_pyobject(py)?.into_any(),
            d.corrupt.clone().into_pyobject(py)?.into_any(),
        ],
    )?;
    Ok(tuple.into_any())
}
