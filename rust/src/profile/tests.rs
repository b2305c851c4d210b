//! Profiles of whole batches: merging parts, and reading back bytes that are cut or damaged.

use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BooleanArray, DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};

use super::{Profile, Shape, Stats};

/// A deterministic batch of every kind of column, `rows` rows starting at row `from`.
fn batch(from: usize, rows: usize) -> RecordBatch {
    let range = from..from + rows;
    let x = |i: usize| ((i * 7919) % 10007) as f64 / 100.0;
    let float: Float64Array = range
        .clone()
        .map(|i| match i % 50 {
            0 => None,
            1 => Some(f64::NAN),
            2 => Some(f64::INFINITY),
            _ => Some(x(i)),
        })
        .collect();
    let count: Int64Array = range.clone().map(|i| Some((i % 5) as i64)).collect();
    let flag: BooleanArray = range
        .clone()
        .map(|i| (i % 7 != 0).then_some(i % 3 == 0))
        .collect();
    let city: StringArray = range
        .clone()
        .map(|i| Some(["oslo", "lima", "pune", "kobe"][i % 4]))
        .collect();
    let channel: DictionaryArray<Int32Type> = range
        .clone()
        .map(|i| {
            if i % 11 == 0 {
                None
            } else {
                Some(["web", "app"][i % 2])
            }
        })
        .collect();
    let seen = TimestampMicrosecondArray::from_iter_values(
        range
            .clone()
            .map(|i| 1_700_000_000_000_000 + i as i64 * 1_000_000),
    );
    let email: StringArray = range
        .map(|i| Some(format!("user{}@example.com", i % 97)))
        .collect();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("float", Arc::new(float)),
        ("count", Arc::new(count)),
        ("flag", Arc::new(flag)),
        ("city", Arc::new(city)),
        ("channel", Arc::new(channel)),
        ("seen", Arc::new(seen)),
        ("email", Arc::new(email)),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

fn profile_of(parts: &[(usize, usize)]) -> Profile {
    let mut profile = Profile::new(&batch(0, 0).schema(), 200, &["email".into()]).unwrap();
    for &(from, rows) in parts {
        profile.update(&batch(from, rows)).unwrap();
    }
    profile
}

#[test]
fn a_merged_profile_matches_the_profile_of_the_whole() {
    let whole = profile_of(&[(0, 30_000)]);
    let mut merged = profile_of(&[(0, 10_000)]);
    merged
        .merge(&profile_of(&[(10_000, 12_345), (22_345, 7_655)]))
        .unwrap();
    assert_eq!(merged.rows, whole.rows);
    for (a, b) in merged.columns.iter().zip(&whole.columns) {
        assert_eq!((a.nulls, a.values()), (b.nulls, b.values()), "{}", a.name);
        match (&a.stats, &b.stats) {
            (Stats::Numeric(a), Stats::Numeric(b)) => {
                assert_eq!(
                    (a.nan, a.positive_infinity, a.finite()),
                    (b.nan, b.positive_infinity, b.finite())
                );
                assert!((a.moments.mean - b.moments.mean).abs() < 1e-9 * b.moments.mean.abs());
                assert!((a.moments.m2 - b.moments.m2).abs() < 1e-9 * b.moments.m2);
                if let (
                    Shape::Open {
                        range: ra,
                        quantiles: qa,
                        values: va,
                    },
                    Shape::Open {
                        range: rb,
                        values: vb,
                        ..
                    },
                ) = (&a.shape, &b.shape)
                {
                    assert_eq!(ra, rb);
                    assert_eq!(va, vb);
                    let exact_median = qa.quantile(0.5).unwrap();
                    assert!(exact_median.is_finite());
                }
                let (ea, eb) = (a.distinct().estimate(), b.distinct().estimate());
                assert!((ea - eb).abs() <= 0.05 * eb, "distinct {ea} vs {eb}");
            }
            (Stats::Categorical(a), Stats::Categorical(b)) => {
                assert_eq!(a.categories(), b.categories());
            }
            (a, b) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
        }
    }
    // Merging in the other order gives the same counts.
    let mut reversed = profile_of(&[(10_000, 12_345), (22_345, 7_655)]);
    reversed.merge(&profile_of(&[(0, 10_000)])).unwrap();
    assert_eq!(reversed.rows, merged.rows);
    for (a, b) in reversed.columns.iter().zip(&merged.columns) {
        assert_eq!((a.nulls, a.values()), (b.nulls, b.values()), "{}", a.name);
    }
}

#[test]
fn profiles_round_trip_through_bytes() {
    let profile = profile_of(&[(0, 5_000)]);
    let back = Profile::from_bytes(&profile.to_bytes()).unwrap();
    assert_eq!(
        (back.k, back.rows, back.names()),
        (profile.k, profile.rows, profile.names())
    );
    for (a, b) in back.columns.iter().zip(&profile.columns) {
        match (&a.stats, &b.stats) {
            // A frequent-items sketch writes its hash map in its own order.
            (Stats::Categorical(a), Stats::Categorical(b)) => {
                assert_eq!(a.categories(), b.categories())
            }
            _ => {
                let (mut bytes_a, mut bytes_b) = (Vec::new(), Vec::new());
                a.write(&mut bytes_a);
                b.write(&mut bytes_b);
                assert!(bytes_a == bytes_b, "column {} changed", a.name);
            }
        }
    }
}

#[test]
fn sensitive_columns_keep_no_raw_values() {
    let bytes = profile_of(&[(0, 2_000)]).to_bytes();
    assert!(!bytes.windows(7).any(|w| w == b"example"));
    assert!(bytes.windows(4).any(|w| w == b"oslo"));
}

#[test]
fn cut_or_damaged_bytes_are_refused_without_a_panic() {
    let bytes = profile_of(&[(0, 3_000)]).to_bytes();
    for len in 0..bytes.len() {
        assert!(
            Profile::from_bytes(&bytes[..len]).is_err(),
            "prefix of {len} bytes"
        );
    }
    // Deterministic xorshift: the same damage every run.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3_000 {
        let mut damaged = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % damaged.len() as u64) as usize;
            damaged[at] ^= 1 << (next() % 8);
        }
        // Either refused or a profile that writes itself back: never a panic.
        if let Ok(profile) = Profile::from_bytes(&damaged) {
            Profile::from_bytes(&profile.to_bytes()).unwrap();
        }
    }
}

#[test]
fn merging_different_columns_or_sensitivity_is_refused() {
    let profile = profile_of(&[(0, 100)]);
    let mut other = Profile::new(&batch(0, 0).schema(), 200, &[]).unwrap();
    other.update(&batch(0, 100)).unwrap();
    let err = other.clone().merge(&profile).unwrap_err().to_string();
    assert!(
        err.contains("column 'email': cannot merge a string profile with a sensitive string one"),
        "{err}"
    );
    let narrow = Profile::new(&batch(0, 0).project(&[0]).unwrap().schema(), 200, &[]).unwrap();
    assert!(other.merge(&narrow).is_err());
}
