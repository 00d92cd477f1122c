//! Emailed one-time codes: six decimal digits, a bounded number of wrong tries.

/// Digits in an emailed code.
pub const CODE_DIGITS: usize = 6;

/// Wrong codes a code or challenge survives: the fifth wrong try ends it, so that guessing
/// one of a million codes succeeds with probability at most 5 in 1,000,000.
pub const MAX_CODE_ATTEMPTS: u32 = 5;

/// Whether a stored code (or MFA challenge) can still be tried at `now` (Unix seconds): not
/// expired, and with tries left. A closed one is removed without comparing the presented code.
#[must_use]
pub fn still_open(expires_at: i64, attempts: i64, now: i64) -> bool {
    expires_at > now && attempts < i64::from(MAX_CODE_ATTEMPTS)
}

/// What a wrong try does to an open code that had `attempts` wrong tries before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrongTry {
    /// Tries remain: the try is counted.
    Counted,
    /// That was the last try: the code (or challenge) ends.
    Ended,
}

/// The one attempt-limit rule for emailed codes and MFA challenges alike.
#[must_use]
pub fn after_wrong_try(attempts: i64) -> WrongTry {
    if attempts + 1 < i64::from(MAX_CODE_ATTEMPTS) {
        WrongTry::Counted
    } else {
        WrongTry::Ended
    }
}

/// A code from eight random bytes (the caller draws them from the OS RNG). The modulo bias of
/// 2^64 over 10^6 is below 10^-13, far under what a guesser could use.
#[must_use]
pub fn code_from_random(random: [u8; 8]) -> String {
    format!("{:06}", u64::from_le_bytes(random) % 1_000_000)
}

/// Whether `input` has the shape of a code (exactly six ASCII digits). Anything else is
/// refused before it reaches storage or counts as a try.
#[must_use]
pub fn is_code_shaped(input: &str) -> bool {
    input.len() == CODE_DIGITS && input.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_with_leading_zeros() {
        assert_eq!(code_from_random([0; 8]), "000000");
        assert_eq!(code_from_random(7u64.to_le_bytes()), "000007");
        assert_eq!(code_from_random(u64::MAX.to_le_bytes()), "551615");
        for seed in 0..1000u64 {
            let code = code_from_random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
            assert!(is_code_shaped(&code), "{code}");
        }
    }

    #[test]
    fn the_fifth_wrong_try_ends_a_code_and_an_expired_one_is_closed() {
        let verdicts: Vec<_> = (0..5).map(after_wrong_try).collect();
        assert_eq!(
            verdicts,
            [
                WrongTry::Counted,
                WrongTry::Counted,
                WrongTry::Counted,
                WrongTry::Counted,
                WrongTry::Ended
            ]
        );
        assert!(still_open(100, 4, 99));
        assert!(!still_open(100, 5, 99));
        assert!(!still_open(100, 0, 100));
    }

    #[test]
    fn only_six_ascii_digits_are_code_shaped() {
        for bad in ["", "12345", "1234567", "12345a", " 123456", "١٢٣٤٥٦"] {
            assert!(!is_code_shaped(bad), "{bad:?}");
        }
        assert!(is_code_shaped("012345"));
    }
}
