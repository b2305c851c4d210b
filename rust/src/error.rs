//! The crate's one error type and its mapping to the Python exception hierarchy.
//!
//! The exception classes live in `edgewise.exceptions` (so that each can subclass both
//! `EdgewiseError` and the matching builtin); Rust imports them lazily by name.

use std::path::PathBuf;

use pyo3::PyErr;

pyo3::import_exception!(edgewise.exceptions, DataFileError);
pyo3::import_exception!(edgewise.exceptions, SchemaError);
pyo3::import_exception!(edgewise.exceptions, ModelError);
pyo3::import_exception!(edgewise.exceptions, UnsupportedModelError);
pyo3::import_exception!(edgewise.exceptions, ProfileFormatError);

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened, read, written or renamed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A Parquet file is truncated, corrupt or not Parquet at all.
    #[error("{path}: not a readable Parquet file ({detail})")]
    Parquet { path: PathBuf, detail: String },
    /// The data does not have the shape the model needs (a column is missing or of the wrong type).
    #[error("{source_name}: column '{column}': {detail}")]
    Schema {
        source_name: String,
        column: String,
        detail: String,
    },
    /// An argument is not one of the allowed values.
    #[error("{0}")]
    InvalidArgument(String),
    /// A model is malformed, or fails while running on data that passed its checks.
    #[error("{0}")]
    Model(String),
    /// A model uses operators or types outside what the native engine runs.
    #[error("{0}")]
    Unsupported(String),
    /// Serialized profile bytes are truncated, corrupt or of an unknown version.
    #[error("not a valid profile: {0}")]
    Corrupt(String),
    /// Arrow failed on data that passed our checks: a bug or an exotic type.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub fn parquet(path: impl Into<PathBuf>, detail: impl ToString) -> Self {
        Self::Parquet {
            path: path.into(),
            detail: detail.to_string(),
        }
    }

    pub fn schema(source_name: &str, column: &str, detail: impl Into<String>) -> Self {
        Self::Schema {
            source_name: source_name.to_owned(),
            column: column.to_owned(),
            detail: detail.into(),
        }
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        let message = err.to_string();
        match err {
            Error::Io { .. } | Error::Parquet { .. } => DataFileError::new_err(message),
            Error::Schema { .. } => SchemaError::new_err(message),
            Error::Model(_) => ModelError::new_err(message),
            Error::Unsupported(_) => UnsupportedModelError::new_err(message),
            Error::Corrupt(_) => ProfileFormatError::new_err(message),
            Error::InvalidArgument(_) | Error::Arrow(_) => {
                pyo3::exceptions::PyValueError::new_err(message)
            }
        }
    }
}
