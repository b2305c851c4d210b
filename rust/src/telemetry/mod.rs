//! The collector's batch path: a whole batch of raw telemetry frames decoded, checked, their
//! profiles parsed and merged per group, in calls that release the GIL (python.rs). A bad
//! frame or profile is reported per message and never fails the batch.

pub mod frame;
pub mod python;
pub mod rows;
pub mod subscriber;
pub mod subscriber_python;

use crate::profile::Profile;
pub use frame::{decode, Frame};

/// One payload of a batch: its frame and parsed profiles, or why it was refused.
pub struct Decoded {
    pub frame: Frame,
    /// Parsed profiles by role; a role whose bytes did not parse is in `corrupt` instead.
    pub profiles: Vec<(String, Option<Profile>)>,
    pub corrupt: Vec<(String, String)>,
}

/// Decodes one payload and parses its profiles.
pub fn decode_with_profiles(payload: &[u8]) -> Result<Decoded, String> {
    let frame = decode(payload)?;
    let mut profiles = Vec::with_capacity(frame.sections.len());
    let mut corrupt = Vec::new();
    for (role, range) in &frame.sections {
        match Profile::from_bytes(&payload[range.clone()]) {
            Ok(profile) => profiles.push((role.clone(), Some(profile))),
            Err(err) => corrupt.push((role.clone(), err.to_string())),
        }
    }
    Ok(Decoded {
        frame,
        profiles,
        corrupt,
    })
}

/// One profile of `profiles`, and how many were skipped: those whose columns (names, kinds,
/// sensitivity, in order) differ from the first one's, which are exactly the ones that cannot
/// be merged with it. Should merging still fail, the whole group counts as skipped: groups
/// hold one device's windows, so a crafted profile can only spoil its own device's data.
pub fn merge_group(profiles: Vec<Profile>) -> (Option<Profile>, usize) {
    let total = profiles.len();
    let mut profiles = profiles.into_iter();
    let Some(first) = profiles.next() else {
        return (None, 0);
    };
    let mut alike = Vec::with_capacity(total);
    for profile in profiles {
        if same_columns(&first, &profile) {
            alike.push(profile);
        }
    }
    let skipped = total - 1 - alike.len();
    alike.insert(0, first);
    match Profile::merge_all(alike) {
        Ok(merged) => (merged, skipped),
        Err(_) => (None, total),
    }
}

fn same_columns(a: &Profile, b: &Profile) -> bool {
    a.columns.len() == b.columns.len()
        && a.columns
            .iter()
            .zip(&b.columns)
            .all(|(x, y)| x.name == y.name && x.kind == y.kind && x.sensitive == y.sensitive)
}
