//! RFC 6238 Appendix B: all 18 test vectors (8 digits, 30-second steps, each hash with its own
//! seed), through both `generate` and `verify`.

// Test helpers: a panic is a failed test.
#![allow(clippy::expect_used)]

use tessera_core::totp::{self, Digits, TotpAlgorithm, TotpParams, TotpSecret};

const SHA1_SEED: &[u8] = b"12345678901234567890";
const SHA256_SEED: &[u8] = b"12345678901234567890123456789012";
const SHA512_SEED: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

const VECTORS: &[(u64, &str, &str, &str)] = &[
    // (time, SHA1, SHA256, SHA512)
    (59, "94287082", "46119246", "90693936"),
    (1_111_111_109, "07081804", "68084774", "25091201"),
    (1_111_111_111, "14050471", "67062674", "99943326"),
    (1_234_567_890, "89005924", "91819424", "93441116"),
    (2_000_000_000, "69279037", "90698825", "38618901"),
    (20_000_000_000, "65353130", "77737706", "47863826"),
];

type Pick = fn(&(u64, &'static str, &'static str, &'static str)) -> &'static str;

fn params(algorithm: TotpAlgorithm) -> TotpParams {
    TotpParams {
        algorithm,
        digits: Digits::Eight,
        step_secs: 30,
    }
}

fn check(algorithm: TotpAlgorithm, seed: &[u8], pick: Pick) {
    let secret = TotpSecret::from_bytes(seed).expect("seed is long enough");
    for vector in VECTORS {
        let (time, expected) = (vector.0, pick(vector));
        assert_eq!(
            totp::generate(&secret, params(algorithm), time),
            expected,
            "{algorithm:?} at {time}"
        );
        assert_eq!(
            totp::verify(&secret, params(algorithm), expected, time, None),
            Ok(time / 30),
            "{algorithm:?} at {time}"
        );
    }
}

#[test]
fn sha1_vectors() {
    check(TotpAlgorithm::Sha1, SHA1_SEED, |v| v.1);
}

#[test]
fn sha256_vectors() {
    check(TotpAlgorithm::Sha256, SHA256_SEED, |v| v.2);
}

#[test]
fn sha512_vectors() {
    check(TotpAlgorithm::Sha512, SHA512_SEED, |v| v.3);
}
