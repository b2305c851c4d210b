//! The little-endian binary encoding of profiles and their sketches.
//!
//! Writing appends to a `Vec<u8>`. Reading goes through `Reader`, which checks every length
//! against the bytes that are left before it allocates or loops, so truncated or corrupt input
//! ends in `Error::Corrupt` naming what was being read, never in a panic, a huge allocation or a
//! long loop.

use crate::error::{Error, Result};

/// Appends values in the profile encoding.
pub trait Write {
    fn put_u8(&mut self, value: u8);
    fn put_u16(&mut self, value: u16);
    fn put_u32(&mut self, value: u32);
    fn put_u64(&mut self, value: u64);
    fn put_f64(&mut self, value: f64);
    /// A length as u32 followed by the bytes.
    fn put_bytes(&mut self, bytes: &[u8]);
}

impl Write for Vec<u8> {
    fn put_u8(&mut self, value: u8) {
        self.push(value);
    }
    fn put_u16(&mut self, value: u16) {
        self.extend_from_slice(&value.to_le_bytes());
    }
    fn put_u32(&mut self, value: u32) {
        self.extend_from_slice(&value.to_le_bytes());
    }
    fn put_u64(&mut self, value: u64) {
        self.extend_from_slice(&value.to_le_bytes());
    }
    fn put_f64(&mut self, value: f64) {
        self.extend_from_slice(&value.to_le_bytes());
    }
    fn put_bytes(&mut self, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).expect("a profile part is under 4 GiB");
        self.put_u32(len);
        self.extend_from_slice(bytes);
    }
}

/// Reads values back, bounds-checked.
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    /// The next `len` bytes; `what` names them in the error when fewer are left.
    pub fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8]> {
        if len > self.remaining() {
            return Err(corrupt(format!(
                "truncated at byte {}: {what} needs {len} bytes, {} left",
                self.position,
                self.remaining()
            )));
        }
        let bytes = &self.bytes[self.position..self.position + len];
        self.position += len;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N, what)?);
        Ok(array)
    }

    pub fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    pub fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    pub fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    pub fn f64(&mut self, what: &str) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }

    /// A count of items of `item_bytes` bytes each that must still fit in what is left: checked
    /// before anything is allocated for them.
    pub fn count(&mut self, item_bytes: usize, what: &str) -> Result<usize> {
        let count = self.u32(what)? as usize;
        if count.saturating_mul(item_bytes.max(1)) > self.remaining() {
            return Err(corrupt(format!(
                "{what}: {count} items cannot fit in the {} bytes left",
                self.remaining()
            )));
        }
        Ok(count)
    }

    /// Bytes written by `put_bytes`.
    pub fn bytes(&mut self, what: &str) -> Result<&'a [u8]> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }

    /// Fails unless every byte was read.
    pub fn finish(&self, what: &str) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(corrupt(format!(
                "{extra} unexpected bytes after the {what}"
            ))),
        }
    }
}

/// The error for bytes that do not decode.
pub fn corrupt(detail: impl Into<String>) -> Error {
    Error::Corrupt(detail.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut out = Vec::new();
        out.put_u8(7);
        out.put_u16(300);
        out.put_u64(u64::MAX);
        out.put_f64(-0.5);
        out.put_bytes(b"abc");
        let mut reader = Reader::new(&out);
        assert_eq!(reader.u8("a").unwrap(), 7);
        assert_eq!(reader.u16("b").unwrap(), 300);
        assert_eq!(reader.u64("c").unwrap(), u64::MAX);
        assert_eq!(reader.f64("d").unwrap(), -0.5);
        assert_eq!(reader.bytes("e").unwrap(), b"abc");
        reader.finish("test").unwrap();
        let mut short = Reader::new(&out[..5]);
        short.u8("a").unwrap();
        let err = short.u64("the count").unwrap_err().to_string();
        assert!(
            err.contains("truncated at byte 1: the count needs 8 bytes"),
            "{err}"
        );
    }

    #[test]
    fn counts_that_cannot_fit_are_refused_before_allocating() {
        let mut out = Vec::new();
        out.put_u32(u32::MAX);
        let err = Reader::new(&out).count(8, "items").unwrap_err().to_string();
        assert!(err.contains("items: 4294967295 items cannot fit"), "{err}");
    }
}
