//! Hot paths of core: JWT sign/verify (EdDSA, HS256), the identity the edge signs for an
//! upstream (and its check), a TOTP check and one GCRA decision.
//! Run: `cargo bench -p tessera-core --bench core`.

// criterion_group! and criterion_main! generate undocumented public items.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use tessera_core::jwt::{AccessClaims, KeySet, SigningKey, Verifier};
use tessera_core::ratelimit::{check, GcraState, Quota};
use tessera_core::secret::sha256;
use tessera_core::totp::{self, TotpParams, TotpSecret};

const NOW: u64 = 1_700_000_000;

fn claims() -> AccessClaims {
    AccessClaims {
        iss: "https://auth.example.test".into(),
        sub: "3f2c1a9e-0000-4000-8000-000000000001".into(),
        email: "ann@example.com".into(),
        role: "user".into(),
        aud: tessera_core::jwt::Audience::for_tenant("tessera", "acme"),
        tid: "acme".into(),
        sid: "3f2c1a9e-0000-4000-8000-000000000002".into(),
        iat: NOW,
        nbf: NOW,
        exp: NOW + 900,
        jti: "3f2c1a9e-0000-4000-8000-000000000003".into(),
        amr: vec!["pwd".into()],
        email_verified: true,
        scope: None,
        team: None,
        team_role: None,
    }
}

fn jwt(c: &mut Criterion) {
    let keys = [
        ("eddsa", SigningKey::ed25519("ed-1", [7; 32])),
        ("hs256", SigningKey::hs256("hs-1", &[9; 32])),
    ];
    for (name, key) in keys {
        let Ok(key) = key else { return };
        let verifier = Verifier::new(
            KeySet::new([key.verification_key().clone()]),
            "https://auth.example.test",
            "tessera",
        );
        let claims = claims();
        let Ok(token) = key.sign(&claims) else { return };
        c.bench_function(&format!("jwt_sign_{name}"), |b| {
            b.iter(|| key.sign(black_box(&claims)));
        });
        c.bench_function(&format!("jwt_verify_{name}"), |b| {
            b.iter(|| verifier.verify(black_box(&token), NOW));
        });
    }
    // Baseline for the verify figures: the raw signature check alone, no JWT parsing.
    let raw = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let public = raw.verifying_key();
    let message = [0u8; 300];
    let signature = ed25519_dalek::Signer::sign(&raw, &message);
    c.bench_function("baseline_ed25519_verify_raw", |b| {
        b.iter(|| public.verify_strict(black_box(&message), &signature));
    });
    c.bench_function("baseline_sha256_300_bytes", |b| {
        b.iter(|| sha256(black_box(&message)));
    });
}

/// The edge signs every request it lets through to a `ROUTES` upstream; the upstream checks it.
/// Baseline: a raw Ed25519 signature over a message of the same size.
fn identity(c: &mut Criterion) {
    use tessera_core::identity::{Identity, IdentityKey, SignedRequest};
    let key = IdentityKey::from_seed([7; 32]);
    let public = key.public();
    let body = [b'x'; 1024];
    let request = SignedRequest {
        method: "POST",
        host: "orders.internal:8443",
        path_and_query: "/app/orders?page=2",
        body: &body,
    };
    let identity = Identity {
        user: "3f2c1a9e-0000-4000-8000-000000000001",
        tenant: "acme",
        session: "3f2c1a9e-0000-4000-8000-000000000002",
    };
    let signature = key.sign(request, identity, NOW);
    c.bench_function("identity_sign_1k_body", |b| {
        b.iter(|| key.sign(black_box(request), identity, NOW));
    });
    c.bench_function("identity_verify_1k_body", |b| {
        b.iter(|| public.verify(black_box(request), identity, NOW, &signature, NOW, 60));
    });
    let raw = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let message = [0u8; 200];
    c.bench_function("baseline_ed25519_sign_raw", |b| {
        b.iter(|| ed25519_dalek::Signer::sign(&raw, black_box(&message)));
    });
}

fn totp_check(c: &mut Criterion) {
    let secret = TotpSecret::from_random([5; 20]);
    let code = totp::generate(&secret, TotpParams::AUTHENTICATOR, NOW);
    c.bench_function("totp_verify", |b| {
        b.iter(|| {
            totp::verify(
                &secret,
                TotpParams::AUTHENTICATOR,
                black_box(&code),
                NOW,
                None,
            )
        });
    });
}

fn gcra(c: &mut Criterion) {
    let quota = Quota::per_minute(5);
    let state = Some(GcraState { tat_ms: NOW * 1000 });
    c.bench_function("gcra_decision", |b| {
        b.iter(|| check(black_box(state), NOW * 1000, quota));
    });
}

criterion_group!(benches, jwt, identity, totp_check, gcra);
criterion_main!(benches);
