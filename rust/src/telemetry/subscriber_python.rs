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
                        queue=10_000, threads=None))]
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
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let seconds = |name: &str, value: f64| {
            Duration::try_from_secs_f64(value)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| PyValueError::new_err(format!("{name} must be positive, not {value}")))
        };
        if queue == 0 {
            return Err(PyValueError::new_err("queue must be at least 1"));
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
        };
        Ok(Self {
            subscriber: Subscriber::start(settings).map_err(PyOSError::new_err)?,
            pool: thread_pool(threads)?,
        })
    }

    /// Up to `max_messages` messages received, decoded: waits up to `timeout` seconds for the
    /// first, then up to `wait` for more. None if nothing came.
    #[pyo3(signature = (max_messages=1000, wait=0.05, timeout=0.1))]
    fn next_batch(
        &self,
        py: Python<'_>,
        max_messages: usize,
        wait: f64,
        timeout: f64,
    ) -> PyResult<Option<PyTelemetryDelivery>> {
        let taken = py.detach(|| {
            self.subscriber.take(
                max_messages.max(1),
                Duration::from_secs_f64(timeout.max(0.0)),
                Duration::from_secs_f64(wait.max(0.0)),
            )
        });
        if taken.is_empty() {
            return Ok(None);
        }
        let mut devices = Vec::with_capacity(taken.len());
        let mut payloads = Vec::with_capacity(taken.len());
        let mut refused = Vec::new();
        let mut acks = Vec::with_capacity(taken.len());
        for received in taken {
            match received.device {
                Ok(device) => {
                    devices.push(device);
                    payloads.push(received.publish.payload.to_vec());
                }
                Err(reason) => refused.push((received.publish.topic.clone(), reason)),
            }
            acks.push((received.connection, received.publish));
        }
        let frames = Py::new(py, PyTelemetryBatch::decode(py, payloads, self.pool.clone()))?;
        Ok(Some(PyTelemetryDelivery {
            devices,
            frames,
            refused,
            acks: Mutex::new(acks),
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
