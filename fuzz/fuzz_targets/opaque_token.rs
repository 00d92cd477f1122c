//! Any string presented as an opaque token of any kind: parsing never panics, and what parses
//! prints back exactly as presented.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::token::{OpaqueToken, TokenKind};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for kind in [
        TokenKind::Refresh,
        TokenKind::Session,
        TokenKind::MfaChallenge,
        TokenKind::EmailLink,
        TokenKind::ServiceApi,
    ] {
        if let Ok(token) = OpaqueToken::parse(kind, text) {
            assert_eq!(token.expose(), text);
            let _ = token.digest();
        }
    }
});
