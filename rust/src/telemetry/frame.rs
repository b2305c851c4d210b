//! The binary telemetry frame a device publishes on its `telemetry` topic (protocol version 2):
//! one window's counters and the raw bytes of its profiles, with no base64 and no JSON to parse.
//!
//! Layout (little-endian, the profile codec's encoding; docs/protocol.md is the reference):
//!
//! ```text
//! magic b"EWTM" | version u8 (2) | id: name | ts f64 | window_start f64 | window_end f64
//! | bundle: u8 0 (none) or 1, then name: name, version u64, sha256 [32], length u64
//! | metrics: u8 count, each name: name, value f64
//! | profiles: u8 count, each role: name, bytes: u32 length + data
//! ```
//! where `name` is a u8 length and that many ASCII bytes. Every length is checked against the
//! bytes left before it is used, every name against its pattern, every number for range; the
//! reason a frame is refused names the field.

use std::ops::Range;

use crate::error::Error;
use crate::profile::codec::Reader;

pub const MAGIC: &[u8; 4] = b"EWTM";
/// The fleet protocol version whose telemetry this is (transport/messages.py PROTOCOL_VERSION).
pub const VERSION: u8 = 2;
/// The largest frame accepted: under the smallest broker cap targeted (AWS IoT Core, 128 KB).
pub const MAX_FRAME_BYTES: usize = 96 * 1024;
/// Metrics and profile sections one window may carry.
pub const MAX_METRICS: usize = 128;
pub const MAX_PROFILES: usize = 8;
const MAX_INTEGER: u64 = i64::MAX as u64;

#[derive(Clone, Debug, PartialEq)]
pub struct BundleRef {
    pub name: String,
    pub version: u64,
    pub sha256: [u8; 32],
    pub length: u64,
}

/// A decoded frame; profile sections are ranges of the payload, not parsed yet.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub id: String,
    pub ts: f64,
    pub window_start: f64,
    pub window_end: f64,
    pub bundle: Option<BundleRef>,
    pub metrics: Vec<(String, f64)>,
    pub sections: Vec<(String, Range<usize>)>,
}

/// Which characters a name may hold after its first (always a letter or digit, except ids).
#[derive(Clone, Copy)]
enum Pattern {
    /// Message ids: 1 to 64 of `A-Z a-z 0-9 _ -`.
    Id,
    /// Bundle names, metric names and roles: a letter or digit, then `A-Z a-z 0-9 . _ -`.
    Name(usize),
}

impl Pattern {
    fn matches(self, text: &str) -> bool {
        let bytes = text.as_bytes();
        match self {
            Pattern::Id => {
                (1..=64).contains(&bytes.len())
                    && bytes
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
            }
            Pattern::Name(max) => {
                (1..=max).contains(&bytes.len())
                    && bytes[0].is_ascii_alphanumeric()
                    && bytes[1..]
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            }
        }
    }
}

/// The frame `payload` holds, or why it is refused (naming the field).
pub fn decode(payload: &[u8]) -> Result<Frame, String> {
    if payload.len() > MAX_FRAME_BYTES {
        return Err(format!(
            "telemetry frame of {} bytes, over the limit of {MAX_FRAME_BYTES}",
            payload.len()
        ));
    }
    let mut reader = Reader::new(payload);
    let magic = reader.take(4, "magic").map_err(detail)?;
    if magic != MAGIC {
        return Err(if magic.first() == Some(&b'{') {
            "JSON telemetry (protocol version 1, base64 profiles) is no longer accepted: \
             telemetry is a binary frame since protocol version 2; upgrade the device's edgewise"
                .to_owned()
        } else {
            format!("not an edgewise telemetry frame (magic {magic:?})")
        });
    }
    let version = reader.u8("version").map_err(detail)?;
    if version != VERSION {
        return Err(format!(
            "telemetry frame version {version} is not supported (this edgewise reads version {VERSION})"
        ));
    }
    let id = name(&mut reader, "id", Pattern::Id)?;
    let ts = number(&mut reader, "ts")?;
    let window_start = number(&mut reader, "window_start")?;
    let window_end = number(&mut reader, "window_end")?;
    if window_end < window_start {
        return Err(format!(
            "field 'window_end' {window_end} is before window_start {window_start}"
        ));
    }
    let bundle = match reader.u8("bundle").map_err(detail)? {
        0 => None,
        1 => Some(BundleRef {
            name: name(&mut reader, "bundle.name", Pattern::Name(128))?,
            version: integer(&mut reader, "bundle.version")?,
            sha256: reader
                .take(32, "bundle.sha256")
                .map_err(detail)?
                .try_into()
                .expect("took 32 bytes"),
            length: integer(&mut reader, "bundle.length")?,
        }),
        flag => return Err(format!("field 'bundle' has flag {flag}, expected 0 or 1")),
    };
    let count = counted(&mut reader, "metrics", MAX_METRICS)?;
    let mut metrics: Vec<(String, f64)> = Vec::with_capacity(count);
    for _ in 0..count {
        let key = name(&mut reader, "metrics name", Pattern::Name(64))?;
        let value = number(&mut reader, &format!("metrics.{key}"))?;
        if metrics.iter().any(|(k, _)| *k == key) {
            return Err(format!("field 'metrics.{key}' appears twice"));
        }
        metrics.push((key, value));
    }
    let count = counted(&mut reader, "profiles", MAX_PROFILES)?;
    let mut sections: Vec<(String, Range<usize>)> = Vec::with_capacity(count);
    for _ in 0..count {
        let role = name(&mut reader, "profiles role", Pattern::Name(64))?;
        let what = format!("profiles.{role}");
        let data = reader.bytes(&what).map_err(detail)?;
        if sections.iter().any(|(r, _)| *r == role) {
            return Err(format!("field '{what}' appears twice"));
        }
        let start = payload.len() - reader.remaining() - data.len();
        sections.push((role, start..start + data.len()));
    }
    reader.finish("telemetry frame").map_err(detail)?;
    Ok(Frame {
        id,
        ts,
        window_start,
        window_end,
        bundle,
        metrics,
        sections,
    })
}

/// What a codec error says, without the "not a valid profile" its display adds.
fn detail(err: Error) -> String {
    match err {
        Error::Corrupt(detail) => detail,
        other => other.to_string(),
    }
}

fn name(reader: &mut Reader<'_>, what: &str, pattern: Pattern) -> Result<String, String> {
    let len = reader.u8(what).map_err(detail)? as usize;
    let bytes = reader.take(len, what).map_err(detail)?;
    match std::str::from_utf8(bytes) {
        Ok(text) if pattern.matches(text) => Ok(text.to_owned()),
        _ => Err(format!(
            "field '{what}' has an invalid value {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(80)])
        )),
    }
}

fn number(reader: &mut Reader<'_>, what: &str) -> Result<f64, String> {
    let value = reader.f64(what).map_err(detail)?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!("field '{what}' must be finite, not {value}"))
    }
}

fn integer(reader: &mut Reader<'_>, what: &str) -> Result<u64, String> {
    let value = reader.u64(what).map_err(detail)?;
    if value <= MAX_INTEGER {
        Ok(value)
    } else {
        Err(format!(
            "field '{what}' is {value}, outside [0, {MAX_INTEGER}]"
        ))
    }
}

fn counted(reader: &mut Reader<'_>, what: &str, max: usize) -> Result<usize, String> {
    let count = reader.u8(what).map_err(detail)? as usize;
    if count > max {
        return Err(format!(
            "field '{what}' has {count} items, at most {max} allowed"
        ));
    }
    Ok(count)
}
