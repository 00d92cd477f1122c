//! Any bytes as the JSON body of the passkey endpoints: deserialising never panics, and what
//! deserialises goes through webauthn-rs's own parsing (the client data, the CBOR attestation
//! object, the authenticator data) against real ceremony states, which must refuse it without
//! panicking. (A forged answer cannot verify: the states' challenges are random.)
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tessera_origin::http::mfa::MfaVerifyRequest;
use tessera_origin::http::passkeys::{PasskeyLoginRequest, RegisterPasskeyRequest};
use tessera_origin::relying_party::RelyingParty;
use webauthn_rs::prelude::{DiscoverableAuthentication, PasskeyRegistration, Uuid, Webauthn};

struct Ceremonies {
    webauthn: Webauthn,
    registration: PasskeyRegistration,
    discoverable: DiscoverableAuthentication,
}

fn ceremonies() -> &'static Ceremonies {
    static CEREMONIES: OnceLock<Ceremonies> = OnceLock::new();
    CEREMONIES.get_or_init(|| {
        let webauthn = RelyingParty::new("auth.tessera.test", "https://auth.tessera.test")
            .expect("a valid party")
            .webauthn("fuzz")
            .expect("a verifier");
        let (_, registration) = webauthn
            .start_passkey_registration(Uuid::nil(), "ann@example.com", "Ann", None)
            .expect("registration options");
        let (_, discoverable) = webauthn
            .start_discoverable_authentication()
            .expect("sign-in options");
        Ceremonies {
            webauthn,
            registration,
            discoverable,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let ceremonies = ceremonies();
    if let Ok(request) = serde_json::from_slice::<RegisterPasskeyRequest>(data) {
        assert!(ceremonies
            .webauthn
            .finish_passkey_registration(&request.credential, &ceremonies.registration)
            .is_err());
    }
    if let Ok(request) = serde_json::from_slice::<PasskeyLoginRequest>(data) {
        let _ = ceremonies
            .webauthn
            .identify_discoverable_authentication(&request.credential);
        assert!(ceremonies
            .webauthn
            .finish_discoverable_authentication(
                &request.credential,
                ceremonies.discoverable.clone(),
                &[],
            )
            .is_err());
    }
    if let Ok(request) = serde_json::from_slice::<MfaVerifyRequest>(data) {
        let shown = format!("{request:?}");
        assert!(!shown.contains("code: \""), "{shown}");
    }
});
