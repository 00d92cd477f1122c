//! Any string presented as an access token: the verifier and its deferred form never panic, and
//! agree on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::jwt::{KeySet, SigningKey, VerificationKey, Verifier};

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(ed) = SigningKey::ed25519("ed-1", [7; 32]) else {
        return;
    };
    let Ok(hs) = VerificationKey::hs256("hs-1", b"an-hs256-secret-of-at-least-32-bytes!!") else {
        return;
    };
    let verifier = Verifier::new(
        KeySet::new([ed.verification_key().clone(), hs]),
        "https://auth.example.test",
        "tessera",
    );
    let now = 1_700_000_000;
    let full = verifier.verify(token, now);
    let _ = verifier.verify_keyed(token, now);
    if let Ok(pending) = verifier.verify_deferred(token, now) {
        // Claims never come out of a deferred check whose signature was not valid.
        assert!(pending.finish(false).is_err());
    }
    if let Ok(claims) = full {
        assert!(claims.aud.contains("tessera"));
    }
});
