//! Every refusal of the access-token verifier, one test each, with tokens forged by hand.

// Test helpers: a panic is a failed test.
#![allow(clippy::expect_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tessera_core::jwt::{
    AccessClaims, Jwks, KeySet, SigningKey, VerificationKey, Verifier, VerifyError,
};

const SEED: [u8; 32] = [7; 32];
const HS_SECRET: &[u8] = b"an-hs256-secret-of-at-least-32-bytes!!";
const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://auth.example.test";
const AUD: &str = "tessera";

fn claims() -> AccessClaims {
    AccessClaims {
        iss: ISS.into(),
        sub: "3f2c1a9e-0000-4000-8000-000000000001".into(),
        email: "ann@example.com".into(),
        role: "user".into(),
        aud: tessera_core::jwt::Audience::for_tenant(AUD, "acme"),
        tid: "acme".into(),
        sid: "3f2c1a9e-0000-4000-8000-000000000002".into(),
        iat: NOW,
        nbf: NOW,
        exp: NOW + 900,
        jti: "jti-1".into(),
        amr: vec!["pwd".into()],
        email_verified: true,
        scope: None,
        team: None,
        team_role: None,
    }
}

fn ed_key() -> SigningKey {
    SigningKey::ed25519("ed-1", SEED).expect("valid kid")
}

fn verifier() -> Verifier {
    let hs = VerificationKey::hs256("hs-1", HS_SECRET).expect("long secret");
    Verifier::new(
        KeySet::new([ed_key().verification_key().clone(), hs]),
        ISS,
        AUD,
    )
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("json"))
}

/// Signs `header.claims` with the Ed25519 test key, whatever the header says.
fn forge_ed(header: Value, claims: Value) -> String {
    let input = format!("{}.{}", b64(&header), b64(&claims));
    let signature = ed25519_dalek::SigningKey::from_bytes(&SEED).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// Signs `header.claims` with HMAC-SHA-256 under `secret`.
fn forge_hs(header: Value, claims: Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(&header), b64(&claims));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any length");
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn ed_header() -> Value {
    json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "ed-1"})
}

fn claims_json() -> Value {
    serde_json::to_value(claims()).expect("json")
}

#[test]
fn a_signed_token_verifies_with_both_algorithms() {
    let token = ed_key().sign(&claims()).expect("sign");
    assert_eq!(verifier().verify(&token, NOW), Ok(claims()));
    let hs = SigningKey::hs256("hs-1", HS_SECRET).expect("key");
    let token = hs.sign(&claims()).expect("sign");
    assert_eq!(verifier().verify(&token, NOW), Ok(claims()));
}

#[test]
fn a_hand_forged_token_with_the_right_key_verifies() {
    // Proves the forging helpers are faithful, so the refusals below are for the stated reason.
    let token = forge_ed(ed_header(), claims_json());
    assert_eq!(verifier().verify(&token, NOW), Ok(claims()));
}

#[test]
fn alg_none_is_refused() {
    let token = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt", "kid": "ed-1"})),
        b64(&claims_json())
    );
    assert_eq!(
        verifier().verify(&token, NOW),
        Err(VerifyError::UnsupportedAlgorithm)
    );
}

#[test]
fn an_algorithm_that_is_not_configured_is_refused() {
    for alg in ["HS384", "HS512", "RS256", "ES256", "PS256", "ed25519", ""] {
        let token = forge_hs(
            json!({"alg": alg, "typ": "at+jwt", "kid": "hs-1"}),
            claims_json(),
            HS_SECRET,
        );
        assert_eq!(
            verifier().verify(&token, NOW),
            Err(VerifyError::UnsupportedAlgorithm),
            "{alg}"
        );
    }
}

#[test]
fn key_confusion_hs256_with_the_public_key_as_secret_is_refused() {
    let public = ed_key()
        .verification_key()
        .to_jwk()
        .expect("ed key has a jwk")
        .x
        .expect("an Ed25519 jwk has x");
    let public = URL_SAFE_NO_PAD.decode(public).expect("base64url");
    let token = forge_hs(
        json!({"alg": "HS256", "typ": "at+jwt", "kid": "ed-1"}),
        claims_json(),
        &public,
    );
    assert_eq!(
        verifier().verify(&token, NOW),
        Err(VerifyError::KeyMismatch)
    );
}

#[test]
fn an_eddsa_token_naming_the_hmac_key_is_refused() {
    let token = forge_ed(
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "hs-1"}),
        claims_json(),
    );
    assert_eq!(
        verifier().verify(&token, NOW),
        Err(VerifyError::KeyMismatch)
    );
}

#[test]
fn an_unknown_kid_is_reported_so_the_caller_can_refetch() {
    let token = forge_ed(
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "ed-2"}),
        claims_json(),
    );
    assert_eq!(
        verifier().verify(&token, NOW),
        Err(VerifyError::UnknownKid("ed-2".into()))
    );
}

#[test]
fn a_missing_or_malformed_kid_is_refused() {
    let long = "k".repeat(65);
    for header in [
        json!({"alg": "EdDSA", "typ": "at+jwt"}),
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": ""}),
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "../../etc/passwd"}),
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": long}),
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": 1}),
    ] {
        let token = forge_ed(header.clone(), claims_json());
        assert_eq!(
            verifier().verify(&token, NOW),
            Err(VerifyError::BadKid),
            "{header}"
        );
    }
}

#[test]
fn a_missing_exp_is_refused() {
    let mut claims = claims_json();
    claims.as_object_mut().expect("object").remove("exp");
    let token = forge_ed(ed_header(), claims);
    assert_eq!(verifier().verify(&token, NOW), Err(VerifyError::Malformed));
}

#[test]
fn an_expired_token_is_refused_after_the_leeway() {
    let token = ed_key().sign(&claims()).expect("sign");
    let exp = claims().exp;
    let leeway = Verifier::DEFAULT_LEEWAY_SECS;
    assert!(verifier().verify(&token, exp + leeway - 1).is_ok());
    assert_eq!(
        verifier().verify(&token, exp + leeway),
        Err(VerifyError::Expired)
    );
    let strict = verifier().with_leeway(0);
    assert_eq!(strict.verify(&token, exp), Err(VerifyError::Expired));
}

#[test]
fn grace_extends_only_the_expiry_and_never_the_signature() {
    let token = ed_key().sign(&claims()).expect("sign");
    let past = claims().exp + Verifier::DEFAULT_LEEWAY_SECS + 3_600;
    assert_eq!(verifier().verify(&token, past), Err(VerifyError::Expired));
    assert!(verifier().verify_with_grace(&token, past, 3_601).is_ok());
    assert_eq!(
        verifier().verify_with_grace(&token, past, 3_600),
        Err(VerifyError::Expired)
    );
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert!(verifier()
        .verify_with_grace(&tampered, past, 3_601)
        .is_err());
    let mut future = claims();
    future.nbf = NOW + 3_600;
    let token = ed_key().sign(&future).expect("sign");
    assert_eq!(
        verifier().verify_with_grace(&token, NOW, 86_400),
        Err(VerifyError::NotYetValid)
    );
}

#[test]
fn a_future_nbf_is_refused_beyond_the_leeway() {
    let mut claims = claims();
    claims.nbf = NOW + 60;
    let token = ed_key().sign(&claims).expect("sign");
    assert_eq!(
        verifier().verify(&token, NOW),
        Err(VerifyError::NotYetValid)
    );
    assert!(verifier().verify(&token, NOW + 30).is_ok());
}

#[test]
fn a_future_iat_is_refused() {
    let mut claims = claims();
    claims.iat = NOW + 3_600;
    let token = ed_key().sign(&claims).expect("sign");
    assert_eq!(
        verifier().verify(&token, NOW),
        Err(VerifyError::NotYetValid)
    );
}

#[test]
fn a_wrong_issuer_is_refused() {
    let mut claims = claims();
    claims.iss = "https://evil.example".into();
    let token = ed_key().sign(&claims).expect("sign");
    assert_eq!(
        verifier().verify(&token, NOW),
        Err(VerifyError::WrongIssuer)
    );
}

#[test]
fn a_wrong_audience_is_refused() {
    let mut claims = claims();
    claims.aud = "another-service".into();
    let token = ed_key().sign(&claims).expect("sign");
    assert_eq!(
        verifier().verify(&token, NOW),
        Err(VerifyError::WrongAudience)
    );
}

/// Issue 25, item 3: tokens carry the audience and `<audience>:<tenant>`; a single-string
/// audience of an earlier token still verifies, and a tenant audience that names another tenant
/// than `tid` is refused.
#[test]
fn the_audience_is_an_array_with_the_tenant_and_a_string_still_verifies() {
    use tessera_core::jwt::Audience;
    let issued = ed_key().sign(&claims()).expect("sign");
    let payload = issued.split('.').nth(1).expect("payload");
    let payload: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .expect("base64"),
    )
    .expect("json");
    assert_eq!(payload["aud"], json!([AUD, format!("{AUD}:acme")]));
    assert!(verifier().verify(&issued, NOW).is_ok());

    let mut earlier = claims();
    earlier.aud = Audience::One(AUD.into());
    let earlier = ed_key().sign(&earlier).expect("sign");
    assert!(verifier().verify(&earlier, NOW).is_ok());

    let mut foreign = claims();
    foreign.aud = Audience::for_tenant(AUD, "globex");
    let foreign = ed_key().sign(&foreign).expect("sign");
    assert_eq!(
        verifier().verify(&foreign, NOW),
        Err(VerifyError::WrongAudience)
    );
}

#[test]
fn a_token_of_another_type_is_refused() {
    for header in [
        json!({"alg": "EdDSA", "typ": "JWT", "kid": "ed-1"}),
        json!({"alg": "EdDSA", "kid": "ed-1"}),
        json!({"alg": "EdDSA", "typ": "id+jwt", "kid": "ed-1"}),
    ] {
        let token = forge_ed(header.clone(), claims_json());
        assert_eq!(
            verifier().verify(&token, NOW),
            Err(VerifyError::WrongType),
            "{header}"
        );
    }
    let media_type = forge_ed(
        json!({"alg": "EdDSA", "typ": "application/AT+JWT", "kid": "ed-1"}),
        claims_json(),
    );
    assert!(verifier().verify(&media_type, NOW).is_ok());
}

#[test]
fn key_locating_headers_are_refused_never_fetched() {
    let jwk = ed_key().verification_key().to_jwk().expect("jwk");
    for (name, value) in [
        ("jku", json!("https://evil.example/jwks.json")),
        ("jwk", serde_json::to_value(&jwk).expect("json")),
        ("x5u", json!("https://evil.example/cert.pem")),
        ("x5c", json!(["MIIB"])),
    ] {
        let mut header = ed_header();
        header[name] = value;
        let token = forge_ed(header, claims_json());
        assert_eq!(
            verifier().verify(&token, NOW),
            Err(VerifyError::ForbiddenHeader(name)),
            "{name}"
        );
    }
}

#[test]
fn any_bit_flipped_anywhere_is_refused() {
    let token = ed_key().sign(&claims()).expect("sign");
    let verifier = verifier();
    let bytes = token.as_bytes();
    for index in 0..bytes.len() {
        for bit in 0..8 {
            let mut flipped = bytes.to_vec();
            flipped[index] ^= 1 << bit;
            let Ok(flipped) = String::from_utf8(flipped) else {
                continue; // not a string a client could send
            };
            assert!(
                verifier.verify(&flipped, NOW).is_err(),
                "byte {index} bit {bit} accepted"
            );
        }
    }
}

#[test]
fn a_bad_signature_is_refused() {
    let other = SigningKey::ed25519("ed-1", [8; 32]).expect("key");
    let token = other.sign(&claims()).expect("sign");
    assert_eq!(
        verifier().verify(&token, NOW),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn garbage_and_oversized_input_is_malformed() {
    for garbage in ["", "a", "a.b", "a.b.c", "a.b.c.d", "...", "e30.e30.e30"] {
        assert!(verifier().verify(garbage, NOW).is_err(), "{garbage}");
    }
    let huge = format!("{}.{}.x", "a".repeat(9_000), "b");
    assert_eq!(verifier().verify(&huge, NOW), Err(VerifyError::Malformed));
}

#[test]
fn jwks_round_trips_and_never_publishes_a_shared_secret() {
    let jwks = verifier().keys().to_jwks();
    assert_eq!(jwks.keys.len(), 1);
    let json = serde_json::to_vec(&jwks).expect("json");
    let keys = Jwks::parse_keys(&json).expect("parse");
    let edge = Verifier::new(KeySet::new(keys), ISS, AUD);
    let token = ed_key().sign(&claims()).expect("sign");
    assert_eq!(edge.verify(&token, NOW), Ok(claims()));
}

#[test]
fn jwks_with_a_short_key_is_refused_not_panicked_on() {
    let doc = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "k", "alg": "EdDSA", "use": "sig"}]});
    assert!(Jwks::parse_keys(&serde_json::to_vec(&doc).expect("json")).is_err());
    let rsa = json!({"keys": [{"kty": "RSA", "n": "x", "e": "AQAB", "kid": "r"}]});
    assert_eq!(
        Jwks::parse_keys(&serde_json::to_vec(&rsa).expect("json")).map(|k| k.len()),
        Ok(0)
    );
}

/// The deferred path (signature checked by the caller) with the signature computed here.
fn deferred(verifier: &Verifier, token: &str, now: u64) -> Result<AccessClaims, VerifyError> {
    let pending = verifier.verify_deferred(token, now)?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(pending.public_key()).expect("valid key");
    let valid = ed25519_dalek::Signature::from_slice(pending.signature())
        .is_ok_and(|sig| key.verify_strict(pending.message(), &sig).is_ok());
    pending.finish(valid)
}

#[test]
fn deferred_verification_decides_every_token_as_verify_does() {
    let verifier = verifier();
    let good = ed_key().sign(&claims()).expect("sign");
    let mut expired = claims();
    expired.exp = NOW - 3_600;
    let mut corpus = vec![
        good.clone(),
        ed_key().sign(&expired).expect("sign"),
        SigningKey::ed25519("ed-1", [8; 32])
            .expect("key")
            .sign(&claims())
            .expect("sign"),
        forge_ed(
            json!({"alg": "EdDSA", "typ": "JWT", "kid": "ed-1"}),
            claims_json(),
        ),
        forge_ed(
            json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "ed-1", "jku": "x"}),
            claims_json(),
        ),
        forge_ed(
            json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "nope"}),
            claims_json(),
        ),
        forge_ed(ed_header(), json!({"sub": "x"})),
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "at+jwt", "kid": "ed-1"})),
            b64(&claims_json())
        ),
    ];
    let bytes = good.as_bytes();
    for index in (0..bytes.len()).step_by(3) {
        let mut flipped = bytes.to_vec();
        flipped[index] ^= 1 << (index % 8);
        corpus.extend(String::from_utf8(flipped));
    }
    for token in &corpus {
        assert_eq!(
            deferred(&verifier, token, NOW),
            verifier.verify(token, NOW),
            "{token}"
        );
    }
    let hs = SigningKey::hs256("hs-1", HS_SECRET)
        .expect("key")
        .sign(&claims())
        .expect("sign");
    assert_eq!(
        verifier.verify_deferred(&hs, NOW).map(|_| ()),
        Err(VerifyError::KeyMismatch)
    );
}

#[test]
fn a_remembered_token_is_rechecked_for_its_key_and_its_time() {
    let token = ed_key().sign(&claims()).expect("sign");
    let verified = verifier().verify_keyed(&token, NOW).expect("valid");
    assert_eq!(verified.kid, "ed-1");
    assert_eq!(verified.claims, claims());
    assert_eq!(verifier().recheck(&verified, NOW + 60), Ok(()));
    assert_eq!(
        verifier().recheck(&verified, NOW + 900 + Verifier::DEFAULT_LEEWAY_SECS),
        Err(VerifyError::Expired)
    );
    // The key left the set (rotated out): the remembered outcome no longer stands.
    let without_key = Verifier::new(
        KeySet::new([VerificationKey::hs256("hs-1", HS_SECRET).expect("long secret")]),
        ISS,
        AUD,
    );
    assert_eq!(
        without_key.recheck(&verified, NOW),
        Err(VerifyError::UnknownKid("ed-1".into()))
    );
    assert!(verifier().verify_keyed("not.a.token", NOW).is_err());
}
