//! edgewise-core: the hot paths of edgewise, exposed to Python as `edgewise._core`.

pub mod arrow;
pub mod drift;
pub mod error;
pub mod plan;
pub mod profile;
pub mod runtime;
pub mod schema;
pub mod score;
pub mod telemetry;

use pyo3::prelude::*;

/// mimalloc instead of the system allocator: the engine allocates a few large tensors per
/// block of rows on every worker thread, and glibc returns such memory to the kernel on free,
/// so each block paid for fresh page faults (about 10% of a logistic model's time in `perf`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<arrow::batch::PyBatch>()?;
    m.add_class::<arrow::parquet_read::PyParquetFile>()?;
    m.add_class::<arrow::parquet_write::PyParquetWriter>()?;
    m.add_class::<score::inputs::PyInputLayout>()?;
    m.add_class::<score::verdicts::PyRowVerdicts>()?;
    m.add_class::<plan::PyPlan>()?;
    m.add_class::<profile::python::PyProfile>()?;
    m.add_function(wrap_pyfunction!(drift::python::drift_exact_numeric, m)?)?;
    m.add_function(wrap_pyfunction!(drift::python::drift_exact_categorical, m)?)?;
    m.add_function(wrap_pyfunction!(drift::python::drift_profiles, m)?)?;
    m.add_function(wrap_pyfunction!(drift::schema_python::infer_schema, m)?)?;
    m.add_class::<drift::schema_python::PyValidator>()?;
    m.add_class::<telemetry::python::PyTelemetryBatch>()?;
    m.add_function(wrap_pyfunction!(telemetry::python::merge_profiles, m)?)?;
    m.add_class::<telemetry::subscriber_python::PyTelemetrySubscriber>()?;
    m.add_class::<telemetry::subscriber_python::PyTelemetryDelivery>()?;
    m.add("TELEMETRY_MAX_BYTES", telemetry::frame::MAX_FRAME_BYTES)?;
    Ok(())
}
