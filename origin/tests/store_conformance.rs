//! One conformance suite for the Store trait, run against SQLite and PostgreSQL.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use common::{Backend, TestStore};
use tessera_core::model::{Email, SessionId, TenantSlug, UserId};
use tessera_core::ratelimit::Quota;
use tessera_core::token::{OpaqueToken, TokenKind};
use tessera_origin::store::{
    AuditEvent, NewSession, NewUser, RefreshOutcome, Session, StoreError, StoredKey,
};

fn slug(s: &str) -> TenantSlug {
    TenantSlug::parse(s).unwrap()
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        id: UserId::from_random_bytes(rand_bytes()),
        email: Email::parse(email).unwrap(),
        name: "N".into(),
        role: "user".into(),
        password_hash: Some("$argon2id$placeholder".into()),
        now: 1_000,
    }
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    tessera_origin::clock::random()
}

fn new_session(user: UserId, token: &OpaqueToken, now: i64) -> NewSession {
    NewSession {
        session: Session {
            id: SessionId::from_random_bytes(rand_bytes()),
            user_id: user,
            created_at: now,
            last_used_at: now,
            expires_at: now + 100,
            revoked_at: None,
            ip: "10.0.0.1".into(),
            user_agent: "ua".into(),
            amr: vec!["pwd".into()],
        },
        refresh_digest: token.digest(),
        audit: event("login_succeeded"),
    }
}

fn event(name: &str) -> AuditEvent {
    AuditEvent {
        at: 5,
        event: name.into(),
        user_id: None,
        session_id: None,
        ip: "10.0.0.1".into(),
        user_agent: "ua".into(),
        detail: String::new(),
    }
}

async fn tenants_are_created_once_and_listed(backend: Backend) {
    let t = TestStore::new(backend).await;
    let created = t
        .store
        .create_tenant(&slug("acme"), "Acme", 5)
        .await
        .unwrap();
    assert_eq!(created.name, "Acme");
    assert!(matches!(
        t.store.create_tenant(&slug("acme"), "Again", 6).await,
        Err(StoreError::Conflict)
    ));
    t.store
        .create_tenant(&slug("beta"), "Beta", 7)
        .await
        .unwrap();
    let listed: Vec<String> = t
        .store
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.slug.to_string())
        .collect();
    assert_eq!(listed, ["acme", "beta"]);
    assert_eq!(t.store.tenant(&slug("nope")).await.unwrap(), None);
    t.store
        .set_cors_origins(&slug("acme"), &["https://a.example".into()])
        .await
        .unwrap();
    assert_eq!(
        t.store
            .tenant(&slug("acme"))
            .await
            .unwrap()
            .unwrap()
            .cors_origins,
        ["https://a.example"]
    );
    // Migrating again is a no-op.
    t.store.migrate().await.unwrap();
}
both!(tenants_are_created_once_and_listed);

async fn users_are_unique_per_tenant_and_isolated(backend: Backend) {
    let t = TestStore::new(backend).await;
    for s in ["acme", "beta"] {
        t.store.create_tenant(&slug(s), s, 1).await.unwrap();
    }
    let ann = t
        .store
        .create_user(&slug("acme"), &new_user("ann@x.io"))
        .await
        .unwrap();
    assert!(matches!(
        t.store
            .create_user(&slug("acme"), &new_user("ann@x.io"))
            .await,
        Err(StoreError::Conflict)
    ));
    let other = t
        .store
        .create_user(&slug("beta"), &new_user("ann@x.io"))
        .await
        .unwrap();
    let email = Email::parse("ann@x.io").unwrap();
    assert_eq!(
        t.store
            .user_by_email(&slug("acme"), &email)
            .await
            .unwrap()
            .unwrap()
            .id,
        ann.id
    );
    assert_eq!(
        t.store
            .user_by_email(&slug("beta"), &email)
            .await
            .unwrap()
            .unwrap()
            .id,
        other.id
    );
    assert_eq!(
        t.store.user_by_id(&slug("beta"), &ann.id).await.unwrap(),
        None,
        "acme's user is not in beta"
    );
    t.store
        .set_password_hash(&slug("acme"), &ann.id, "$new", 2)
        .await
        .unwrap();
    t.store
        .set_disabled(&slug("acme"), &ann.id, true, 2)
        .await
        .unwrap();
    let ann = t
        .store
        .user_by_id(&slug("acme"), &ann.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann.password_hash.as_deref(), Some("$new"));
    assert!(ann.disabled);
    let beta = t
        .store
        .user_by_id(&slug("beta"), &other.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(beta.password_hash.as_deref(), Some("$argon2id$placeholder"));
}
both!(users_are_unique_per_tenant_and_isolated);

async fn refresh_rotation_follows_the_family_rules(backend: Backend) {
    let t = TestStore::new(backend).await;
    let acme = slug("acme");
    t.store.create_tenant(&acme, "Acme", 1).await.unwrap();
    let user = t
        .store
        .create_user(&acme, &new_user("ann@x.io"))
        .await
        .unwrap();
    let first = OpaqueToken::generate(TokenKind::Refresh, &acme, rand_bytes());
    let second = OpaqueToken::generate(TokenKind::Refresh, &acme, rand_bytes());
    let third = OpaqueToken::generate(TokenKind::Refresh, &acme, rand_bytes());
    let new = new_session(user.id, &first, 1_000);
    t.store.create_session(&acme, &new).await.unwrap();
    let rotate = |p: &OpaqueToken, s: &OpaqueToken, now| {
        let (store, acme, p, s) = (t.store.clone(), acme.clone(), p.digest(), s.digest());
        async move {
            store
                .rotate_refresh(&acme, &p, &s, now, 5, &event("refresh"))
                .await
                .unwrap()
        }
    };
    assert!(
        matches!(rotate(&first, &second, 1_010).await, RefreshOutcome::Rotated(s, u) if s.last_used_at == 1_010 && u.id == user.id)
    );
    assert!(matches!(
        rotate(&first, &second, 1_012).await,
        RefreshOutcome::GraceReplay(..)
    ));
    // Inside the grace window but naming another successor: not the concurrent twin, reuse.
    assert!(matches!(
        rotate(&first, &third, 1_013).await,
        RefreshOutcome::ReuseDetected(_)
    ));
    assert!(
        matches!(
            rotate(&second, &third, 1_014).await,
            RefreshOutcome::Invalid
        ),
        "family revoked"
    );
    assert_eq!(
        t.store
            .active_sessions(&acme, &user.id, 1_014)
            .await
            .unwrap(),
        []
    );
    let unknown = OpaqueToken::generate(TokenKind::Refresh, &acme, rand_bytes());
    assert!(matches!(
        rotate(&unknown, &third, 1_014).await,
        RefreshOutcome::Invalid
    ));
    // A family past its absolute end refreshes no more.
    let fresh = OpaqueToken::generate(TokenKind::Refresh, &acme, rand_bytes());
    t.store
        .create_session(&acme, &new_session(user.id, &fresh, 2_000))
        .await
        .unwrap();
    assert!(matches!(
        rotate(&fresh, &third, 2_100).await,
        RefreshOutcome::Invalid
    ));
}
both!(refresh_rotation_follows_the_family_rules);

async fn sessions_list_and_revoke(backend: Backend) {
    let t = TestStore::new(backend).await;
    let acme = slug("acme");
    t.store.create_tenant(&acme, "Acme", 1).await.unwrap();
    let user = t
        .store
        .create_user(&acme, &new_user("ann@x.io"))
        .await
        .unwrap();
    let a = new_session(
        user.id,
        &OpaqueToken::generate(TokenKind::Refresh, &acme, rand_bytes()),
        1_000,
    );
    let b = new_session(
        user.id,
        &OpaqueToken::generate(TokenKind::Refresh, &acme, rand_bytes()),
        1_001,
    );
    t.store.create_session(&acme, &a).await.unwrap();
    t.store.create_session(&acme, &b).await.unwrap();
    let listed = t
        .store
        .active_sessions(&acme, &user.id, 1_002)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id).collect::<Vec<_>>(),
        [b.session.id, a.session.id]
    );
    assert!(t
        .store
        .revoke_session(&acme, &a.session.id, "logout", 1_003)
        .await
        .unwrap());
    assert!(!t
        .store
        .revoke_session(&acme, &a.session.id, "logout", 1_004)
        .await
        .unwrap());
    let ended = t
        .store
        .session(&acme, &a.session.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.revoked_at, Some(1_003));
    assert_eq!(
        t.store
            .active_sessions(&acme, &user.id, 1_004)
            .await
            .unwrap()
            .len(),
        1
    );
}
both!(sessions_list_and_revoke);

async fn keys_rotate_in_atomically(backend: Backend) {
    let t = TestStore::new(backend).await;
    let key = |kid: &str, at| StoredKey {
        kid: kid.into(),
        algorithm: "EdDSA".into(),
        public_key: vec![1; 32],
        private_key_sealed: vec![2; 72],
        created_at: at,
        retired_at: None,
    };
    t.store.rotate_in_key(&key("k1", 10), 10).await.unwrap();
    t.store.rotate_in_key(&key("k2", 20), 20).await.unwrap();
    let keys = t.store.keys().await.unwrap();
    assert_eq!(
        keys.iter()
            .map(|k| (k.kid.as_str(), k.retired_at))
            .collect::<Vec<_>>(),
        [("k2", None), ("k1", Some(20))]
    );
    assert_eq!(keys[0].public_key, vec![1; 32]);
}
both!(keys_rotate_in_atomically);

async fn shared_rate_limits_admit_exactly_the_quota_under_concurrency(backend: Backend) {
    let t = TestStore::new(backend).await;
    let now = tessera_origin::clock::now_millis();
    let calls = (0..20).map(|_| {
        let store = t.store.clone();
        tokio::spawn(async move {
            store
                .rate_limit("credential:k", now, Quota::per_minute(5))
                .await
                .unwrap()
        })
    });
    let decisions = futures::future::join_all(calls).await;
    let allowed = decisions
        .iter()
        .filter(|d| d.as_ref().unwrap().is_allowed())
        .count();
    assert_eq!(allowed, 5);
    let other = t
        .store
        .rate_limit("credential:other", now, Quota::per_minute(5))
        .await
        .unwrap();
    assert!(other.is_allowed());
}
both!(shared_rate_limits_admit_exactly_the_quota_under_concurrency);

async fn audit_events_are_appended_per_tenant(backend: Backend) {
    let t = TestStore::new(backend).await;
    for s in ["acme", "beta"] {
        t.store.create_tenant(&slug(s), s, 1).await.unwrap();
    }
    t.store
        .audit(&slug("acme"), &event("login_failed"))
        .await
        .unwrap();
    t.store
        .audit(&slug("acme"), &event("login_succeeded"))
        .await
        .unwrap();
    let acme: Vec<String> = t
        .store
        .audit_events(&slug("acme"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(acme, ["login_succeeded", "login_failed"]);
    assert_eq!(t.store.audit_events(&slug("beta"), 10).await.unwrap(), []);
}
both!(audit_events_are_appended_per_tenant);
