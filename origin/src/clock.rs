//! The origin's clock and randomness: the `*_now` conveniences that core leaves to its callers.
//!
//! Services read time only through an injected [`Clock`]: the system clock in production, a
//! [`ManualClock`] in tests, so that no test sleeps to let a lifetime, a grace window or a cache
//! TTL pass.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngCore as _;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Unix time in milliseconds.
    fn now_millis(&self) -> u64;

    /// Unix time in seconds.
    fn now_secs(&self) -> i64 {
        i64::try_from(self.now_millis() / 1000).unwrap_or(i64::MAX)
    }

    /// Unix time in milliseconds, as stored (a signed database integer).
    fn now_millis_i64(&self) -> i64 {
        i64::try_from(self.now_millis()).unwrap_or(i64::MAX)
    }
}

/// The clock services are given.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to: for tests.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock showing the system's time now, then standing still.
    #[must_use]
    pub fn starting_now() -> Self {
        Self(AtomicU64::new(SystemClock.now_millis()))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The system's Unix time in seconds, for what is not a service's decision (a migration's
/// record, a CLI command's timestamp).
#[must_use]
pub fn system_now_secs() -> i64 {
    SystemClock.now_secs()
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

/// ISO 8601 text of Unix seconds with a numeric UTC offset, as Back Office v2's document
/// writes times (`2022-01-01T00:00:00+00:00`).
#[must_use]
pub fn iso8601_offset(unix_secs: i64) -> String {
    let mut text = rfc3339(unix_secs);
    text.pop();
    text.push_str("+00:00");
    text
}

#[cfg(test)]
mod tests {
    use super::{Clock as _, ManualClock};

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

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::starting_now();
        let start = clock.now_millis();
        assert_eq!(clock.now_millis(), start);
        clock.advance(std::time::Duration::from_millis(1_500));
        assert_eq!(clock.now_millis(), start + 1_500);
        assert_eq!(
            clock.now_secs(),
            i64::try_from((start + 1_500) / 1000).unwrap()
        );
    }
}
