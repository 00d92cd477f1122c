//! Tenant slugs and emails: parsing never panics, a parsed value parses again to itself, and a
//! slug only ever holds what may be spliced into SQL as a schema name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::model::{Email, TenantSlug};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(slug) = TenantSlug::parse(text) {
        assert_eq!(TenantSlug::parse(slug.as_str()).as_ref(), Ok(&slug));
        assert!(slug
            .schema_name()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
    }
    if let Ok(email) = Email::parse(text) {
        assert_eq!(Email::parse(email.as_str()).as_ref(), Ok(&email));
    }
});
