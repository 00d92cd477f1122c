//! The origin's clock and randomness: the `*_now` conveniences that core leaves to its callers.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore as _;

/// Unix time in seconds.
#[must_use]
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Unix time in milliseconds.
#[must_use]
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `N` bytes from the operating system's CSPRNG.
#[must_use]
pub fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// RFC 3339 text of Unix seconds (core's one formatting, shared with the edge).
#[must_use]
pub fn rfc3339(unix_secs: i64) -> String {
    tessera_core::api::rfc3339(unix_secs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn core_formatting_agrees_with_the_time_crate() {
        let format = time::format_description::well_known::Rfc3339;
        for secs in (0..4_102_444_800i64)
            .step_by(7_654_321)
            .chain([1_761_215_400, 951_868_799])
        {
            let expected = time::OffsetDateTime::from_unix_timestamp(secs)
                .unwrap()
                .format(&format)
                .unwrap();
            assert_eq!(super::rfc3339(secs), expected);
        }
    }
}
