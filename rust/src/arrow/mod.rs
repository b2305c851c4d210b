//! Arrow data in and out: record batches shared with Python, Parquet read and write.

pub mod batch;
pub mod numpy_columns;
pub mod parquet_columns;
pub mod parquet_read;
pub mod parquet_write;
