//! Any bytes as the JSON body of each endpoint that takes one: deserialising into the
//! handler's input type never panics, and a body that deserialises never prints a secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_origin::http::auth::{LoginRequest, RefreshRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(login) = serde_json::from_slice::<LoginRequest>(data) {
        let shown = format!("{login:?}");
        assert!(!shown.contains("password: \""), "{shown}");
    }
    let _ = serde_json::from_slice::<RefreshRequest>(data);
});
