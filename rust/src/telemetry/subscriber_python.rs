//! `edgewise._core.TelemetrySubscriber` and `TelemetryDelivery`: the telemetry subscriber as
//! Python sees it. One call hands over a whole batch, decoded on the rayon pool without the
//! GIL; another acknowledges it once committed.

use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use rumqttc::Publish;

use super::python::PyTelemetryBatch;
use super::subscriber::{Settings, Subscriber};
use crate::runtime::thread_pool;

/// An MQTT session of its own that receives every device's telemetry at QoS 1.
#[pyclass(name = "TelemetrySubscriber", module = "edgewise._core", frozen)]
pub struct PyTelemetrySubscriber {
    subscriber: Subscriber,
    pool: std::sync::Arc<rayon::ThreadPool>,
}

/// One batch received: the devices (from the topics), the decoded frames, the messages whose
/// topic named no device, and what acknowledging it takes.
#[pyclass(name = "TelemetryDelivery", module = "edgewise._core", frozen)]
pub struct PyTelemetryDelivery {
    #[pyo3(get)]
    devices: Vec<String>,
    #[pyo3(get)]
    frames: Py<PyTelemetryBatch>,
    #[pyo3(get)]
    refused: Vec<(String, String)>,
    acks: Mutex<Vec<(u64, Publish)>>,
}

#[pymethods]
impl PyTelemetryDelivery {
    fn __len__(&self) -> usize {
        self.devices.len() + self.refused.len()
    }
}

#[pymethods]
impl PyTelemetrySubscriber {
    #[new]
    #[pyo3(signature = (host, port, client_id, *, username=None, password=None, tls=false,
                        ca_file=None, keepalive=30.0, backoff_initial=1.0, backoff_max=60.0,
                        queue=10_000, batch_size=1000, batch_wait=0.05, threads=None))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        host: String,
        port: u16,
        client_id: String,
        username: Option<String>,
        password: Option<String>,
        tls: bool,
        ca_file: Option<std::path::PathBuf>,
        keepalive: f64,
        backoff_initial: f64,
        backoff_max: f64,
        queue: usize,
        batch_size: usize,
        batch_wait: f64,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let seconds = |name: &str, value: f64| {
            Duration::try_from_secs_f64(value)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    PyValueError::new_err(format!("{name} must be positive, not {value}"))
                })
        };
        if queue == 0 || batch_size == 0 {
            return Err(PyValueError::new_err(
                "queue and batch_size must be at least 1",
            ));
        }
        let ca = match ca_file {
            Some(path) => Some(std::fs::read(&path).map_err(|e| {
                PyOSError::new_err(format!("{}: cannot read the CA file: {e}", path.display()))
            })?),
            None => None,
        };
        let settings = Settings {
            host,
            port,
            client_id,
            username,
            password,
            tls: (tls || ca.is_some()).then_some(ca),
            keepalive: seconds("keepalive", keepalive)?,
            backoff: (
                seconds("backoff_initial", backoff_initial)?,
                seconds("backoff_max", backoff_max)?,
            ),
            queue,
            batch_size,
            batch_wait: Duration::try_from_secs_f64(batch_wait).map_err(|_| {
                PyValueError::new_err(format!("batch_wait must be >= 0, not {batch_wait}"))
            })?,
        };
        let pool = thread_pool(threads)?;
        Ok(Self {
            subscriber: Subscriber::start(settings, pool.clone()).map_err(PyOSError::new_err)?,
            pool,
        })
    }

    /// The next batch received (up to `batch_size` messages, closed `batch_wait` seconds after
    /// its first), already decoded; waits up to `timeout` seconds, None if none came.
    #[pyo3(signature = (timeout=0.1))]
    fn next_batch(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<PyTelemetryDelivery>> {
        let wait = Duration::from_secs_f64(timeout.max(0.0));
        let Some(batch) = py.detach(|| self.subscriber.next_batch(wait)) else {
            return Ok(None);
        };
        let frames =
            PyTelemetryBatch::from_decoded(batch.payloads, batch.decoded, self.pool.clone());
        Ok(Some(PyTelemetryDelivery {
            devices: batch.devices,
            frames: Py::new(py, frames)?,
            refused: batch.refused,
            acks: Mutex::new(batch.acks),
        }))
    }

    /// Acknowledges a delivery to the broker once it is committed (each message once; those
    /// that came on an earlier connection are redelivered by the broker instead). The number
    /// of messages acknowledged.
    fn commit(&self, py: Python<'_>, delivery: &PyTelemetryDelivery) -> usize {
        let acks = std::mem::take(&mut *delivery.acks.lock().expect("delivery lock poisoned"));
        py.detach(|| self.subscriber.ack(&acks))
    }

    /// Disconnects and ends the session's thread; messages not committed stay with the broker.
    fn stop(&self, py: Python<'_>) {
        py.detach(|| self.subscriber.stop());
    }

    /// Whether the session is connected now.
    #[getter]
    fn connected(&self) -> bool {
        self.subscriber.status.connected.load(Ordering::SeqCst)
    }

    /// Messages received and not yet taken by `next_batch` (at most `queue`).
    #[getter]
    fn pending(&self) -> usize {
        self.subscriber.pending()
    }

    /// How many times the session has connected (reconnects are this minus one).
    #[getter]
    fn connections(&self) -> u64 {
        self.subscriber.status.connections.load(Ordering::SeqCst)
    }

    /// The last connection error, if any.
    #[getter]
    fn last_error(&self) -> Option<String> {
        self.subscriber
            .status
            .last_error
            .lock()
            .expect("status lock poisoned")
            .clone()
    }
}
