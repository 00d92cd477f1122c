//! One conformance suite for the store and its repositories, run against SQLite and PostgreSQL.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use common::{Backend, TestStore};
use tessera_core::model::{Email, SessionId, TenantSlug, UserId};
use tessera_core::ratelimit::Quota;
use tessera_core::token::{OpaqueToken, TokenKind};
use tessera_origin::allowed_origin::AllowedOrigin;
use tessera_origin::store::{
    AuditEvent, DynStore, NewUser, Session, StoreError, StoredKey, TenantChanges, TenantPolicy,
    TenantSettings, User,
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

fn new_session(user: UserId, now: i64) -> Session {
    Session {
        id: SessionId::from_random_bytes(rand_bytes()),
        user_id: user,
        created_at: now,
        last_used_at: now,
        expires_at: now + 100,
        revoked_at: None,
        ip: "10.0.0.1".into(),
        user_agent: "ua".into(),
        amr: vec!["pwd".into()],
        api: "canonical".into(),
    }
}

fn refresh_token(tenant: &TenantSlug) -> OpaqueToken {
    OpaqueToken::generate(TokenKind::Refresh, tenant, rand_bytes())
}

/// Creates a user in its own committed unit.
async fn create_user(store: &DynStore, tenant: &TenantSlug, email: &str) -> User {
    let mut tx = store.write(tenant).await.unwrap();
    let user = tx.users().create(&new_user(email)).await.unwrap();
    tx.commit().await.unwrap();
    user
}

/// Whether the tenant's tables hold this user, read back through the store.
async fn is_stored(store: &DynStore, tenant: &TenantSlug, user: &User) -> bool {
    let found = store
        .read(tenant)
        .await
        .unwrap()
        .users()
        .by_id(&user.id)
        .await
        .unwrap();
    found.is_some_and(|u| u.id == user.id)
}

/// Creates a session with its first refresh token in its own committed unit.
async fn create_session(
    store: &DynStore,
    tenant: &TenantSlug,
    session: &Session,
    token: &OpaqueToken,
) {
    let mut tx = store.write(tenant).await.unwrap();
    tx.sessions()
        .create(session, &token.digest())
        .await
        .unwrap();
    tx.commit().await.unwrap();
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
    // Migrating again is a no-op.
    t.store.migrate().await.unwrap();
}
both!(tenants_are_created_once_and_listed);

fn party(id: &str, origin: &str) -> tessera_origin::relying_party::RelyingParty {
    tessera_origin::relying_party::RelyingParty::new(id, origin).unwrap()
}

async fn a_tenant_is_registered_with_its_settings_and_changed_in_place(backend: Backend) {
    let t = TestStore::new(backend).await;
    let origin = |o: &str| AllowedOrigin::parse(o).unwrap();
    let strict = TenantPolicy {
        registration_open: false,
        require_verified_email: true,
        require_mfa: true,
        email_lookup: false,
    };
    let settings = TenantSettings {
        name: "Acme".into(),
        cors_origins: vec![origin("https://a.example"), origin("https://b.example")],
        app_url: Some(tessera_origin::app_url::AppUrl::parse("https://a.example/app").unwrap()),
        relying_party: Some(party("a.example", "https://login.a.example")),
        policy: strict,
    };
    let created = t
        .store
        .create_tenant_with(&slug("acme"), &settings, 5)
        .await
        .unwrap();
    let read = t.store.tenant(&slug("acme")).await.unwrap().unwrap();
    assert_eq!(read, created);
    assert_eq!(read.policy, strict);
    assert_eq!(
        read.cors_origins,
        ["https://a.example", "https://b.example"]
    );

    // Only what is given changes.
    let changed = t
        .store
        .update_tenant(
            &slug("acme"),
            &TenantChanges {
                name: Some("Acme Inc".into()),
                require_mfa: Some(false),
                ..TenantChanges::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.name, "Acme Inc");
    assert_eq!(
        changed.policy,
        TenantPolicy {
            require_mfa: false,
            ..strict
        }
    );
    assert_eq!(changed.cors_origins, read.cors_origins);
    assert_eq!(changed.app_url.as_deref(), Some("https://a.example/app"));
    assert_eq!(
        changed.relying_party,
        Some(party("a.example", "https://login.a.example"))
    );
    assert_eq!(changed.created_at, 5);

    // The WebAuthn relying party is replaced, or dropped for the public URL's, only when given.
    for relying_party in [Some(party("b.example", "https://b.example")), None] {
        let changes = TenantChanges {
            relying_party: Some(relying_party.clone()),
            ..TenantChanges::default()
        };
        let changed = t
            .store
            .update_tenant(&slug("acme"), &changes)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(changed.relying_party, relying_party);
    }

    // The app URL is replaced, or removed, only when given.
    for app_url in [
        Some(tessera_origin::app_url::AppUrl::parse("https://b.example/").unwrap()),
        None,
    ] {
        let changes = TenantChanges {
            app_url: Some(app_url.clone()),
            ..TenantChanges::default()
        };
        let changed = t
            .store
            .update_tenant(&slug("acme"), &changes)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            changed.app_url.as_deref(),
            app_url.as_ref().map(|u| u.as_str())
        );
    }
    let back = TenantChanges {
        app_url: Some(Some(
            tessera_origin::app_url::AppUrl::parse("https://a.example/app").unwrap(),
        )),
        ..TenantChanges::default()
    };
    let changed = t
        .store
        .update_tenant(&slug("acme"), &back)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.store.tenant(&slug("acme")).await.unwrap(), Some(changed));

    // A list of origins replaces the old one; an empty one allows none.
    for origins in [vec![origin("https://c.example")], vec![]] {
        let changes = TenantChanges {
            cors_origins: Some(origins.clone()),
            ..TenantChanges::default()
        };
        let changed = t
            .store
            .update_tenant(&slug("acme"), &changes)
            .await
            .unwrap()
            .unwrap();
        let expected: Vec<String> = origins.iter().map(ToString::to_string).collect();
        assert_eq!(changed.cors_origins, expected);
    }
    let unknown = t
        .store
        .update_tenant(&slug("nope"), &TenantPolicy::default().into())
        .await
        .unwrap();
    assert_eq!(unknown, None);
}
both!(a_tenant_is_registered_with_its_settings_and_changed_in_place);

async fn users_are_unique_per_tenant_and_isolated(backend: Backend) {
    let t = TestStore::new(backend).await;
    for s in ["acme", "beta"] {
        t.store.create_tenant(&slug(s), s, 1).await.unwrap();
    }
    let ann = create_user(&t.store, &slug("acme"), "ann@x.io").await;
    let mut tx = t.store.write(&slug("acme")).await.unwrap();
    assert!(matches!(
        tx.users().create(&new_user("ann@x.io")).await,
        Err(StoreError::Conflict)
    ));
    drop(tx);
    let other = create_user(&t.store, &slug("beta"), "ann@x.io").await;
    let email = Email::parse("ann@x.io").unwrap();
    let mut acme = t.store.read(&slug("acme")).await.unwrap();
    assert_eq!(
        acme.users().by_email(&email).await.unwrap().unwrap().id,
        ann.id
    );
    drop(acme);
    let mut beta = t.store.read(&slug("beta")).await.unwrap();
    assert_eq!(
        beta.users().by_email(&email).await.unwrap().unwrap().id,
        other.id
    );
    assert_eq!(
        beta.users().by_id(&ann.id).await.unwrap(),
        None,
        "acme's user is not in beta"
    );
    drop(beta);
    let mut tx = t.store.write(&slug("acme")).await.unwrap();
    tx.users()
        .set_password_hash(&ann.id, "$new", 2)
        .await
        .unwrap();
    tx.users().set_disabled(&ann.id, true, 2).await.unwrap();
    tx.commit().await.unwrap();
    let ann = t
        .store
        .read(&slug("acme"))
        .await
        .unwrap()
        .users()
        .by_id(&ann.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann.password_hash.as_deref(), Some("$new"));
    assert!(ann.disabled);
    let beta = t
        .store
        .read(&slug("beta"))
        .await
        .unwrap()
        .users()
        .by_id(&other.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(beta.password_hash.as_deref(), Some("$argon2id$placeholder"));
}
both!(users_are_unique_per_tenant_and_isolated);

async fn a_unit_of_work_commits_all_or_nothing(backend: Backend) {
    let t = TestStore::new(backend).await;
    let acme = slug("acme");
    t.store.create_tenant(&acme, "Acme", 1).await.unwrap();
    let email = Email::parse("ann@x.io").unwrap();
    {
        let mut tx = t.store.write(&acme).await.unwrap();
        tx.users().create(&new_user("ann@x.io")).await.unwrap();
        tx.audit().append(&event("user_created")).await.unwrap();
        // Dropped without commit: neither the user nor its audit event exists.
    }
    let mut read = t.store.read(&acme).await.unwrap();
    assert_eq!(read.users().by_email(&email).await.unwrap(), None);
    assert_eq!(read.audit().latest(10).await.unwrap(), []);
    drop(read);
    let mut tx = t.store.write(&acme).await.unwrap();
    let user = tx.users().create(&new_user("ann@x.io")).await.unwrap();
    tx.audit().append(&event("user_created")).await.unwrap();
    tx.commit().await.unwrap();
    let mut read = t.store.read(&acme).await.unwrap();
    assert_eq!(
        read.users().by_email(&email).await.unwrap().unwrap().id,
        user.id
    );
    assert_eq!(read.audit().latest(10).await.unwrap().len(), 1);
}
both!(a_unit_of_work_commits_all_or_nothing);

async fn refresh_tokens_rotate_within_their_family(backend: Backend) {
    let t = TestStore::new(backend).await;
    let acme = slug("acme");
    t.store.create_tenant(&acme, "Acme", 1).await.unwrap();
    let user = create_user(&t.store, &acme, "ann@x.io").await;
    let (first, second) = (refresh_token(&acme), refresh_token(&acme));
    let session = new_session(user.id, 1_000);
    create_session(&t.store, &acme, &session, &first).await;

    let mut tx = t.store.write(&acme).await.unwrap();
    let presented = tx
        .sessions()
        .refresh_token_for_update(&first.digest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(presented.session.id, session.id);
    assert_eq!(presented.user.id, user.id);
    assert_eq!((presented.rotated_at, presented.successor), (None, None));
    tx.sessions()
        .rotate(&first.digest(), &second.digest(), &session.id, 1_010)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.store.write(&acme).await.unwrap();
    let used = tx
        .sessions()
        .refresh_token_for_update(&first.digest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(used.rotated_at, Some(1_010));
    assert_eq!(
        used.successor.as_deref(),
        Some(second.digest().as_bytes().as_slice())
    );
    let next = tx
        .sessions()
        .refresh_token_for_update(&second.digest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((next.session.id, next.rotated_at), (session.id, None));
    assert!(tx
        .sessions()
        .refresh_token_for_update(&refresh_token(&acme).digest())
        .await
        .unwrap()
        .is_none());
    drop(tx);
    let listed = t
        .store
        .read(&acme)
        .await
        .unwrap()
        .sessions()
        .active_for(&user.id, 1_011)
        .await
        .unwrap();
    assert_eq!(
        listed[0].last_used_at, 1_010,
        "last use is the newest token's creation"
    );
}
both!(refresh_tokens_rotate_within_their_family);

async fn sessions_list_and_revoke(backend: Backend) {
    let t = TestStore::new(backend).await;
    let acme = slug("acme");
    t.store.create_tenant(&acme, "Acme", 1).await.unwrap();
    let user = create_user(&t.store, &acme, "ann@x.io").await;
    let (a, b) = (new_session(user.id, 1_000), new_session(user.id, 1_001));
    create_session(&t.store, &acme, &a, &refresh_token(&acme)).await;
    create_session(&t.store, &acme, &b, &refresh_token(&acme)).await;
    let mut tx = t.store.write(&acme).await.unwrap();
    let listed = tx.sessions().active_for(&user.id, 1_002).await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id).collect::<Vec<_>>(),
        [b.id, a.id]
    );
    assert!(tx.sessions().revoke(&a.id, "logout", 1_003).await.unwrap());
    assert!(!tx.sessions().revoke(&a.id, "logout", 1_004).await.unwrap());
    tx.commit().await.unwrap();
    let mut read = t.store.read(&acme).await.unwrap();
    let ended = read.sessions().by_id(&a.id).await.unwrap().unwrap();
    assert_eq!(ended.revoked_at, Some(1_003));
    assert_eq!(
        read.sessions()
            .active_for(&user.id, 1_004)
            .await
            .unwrap()
            .len(),
        1
    );
    let (session, owner) = read.sessions().with_user(&b.id).await.unwrap().unwrap();
    assert_eq!((session.id, owner.id), (b.id, user.id));
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
    let now = 1_700_000_000_000;
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
    // A sweep removes only keys back at full capacity.
    assert_eq!(t.store.sweep_rate_limits(now).await.unwrap(), 0);
    assert_eq!(
        t.store.sweep_rate_limits(now + 12_000).await.unwrap(),
        1,
        "other is idle after one interval"
    );
    assert_eq!(
        t.store.rate_limit_keys().await.unwrap(),
        1,
        "the busy key keeps its state"
    );
    assert_eq!(t.store.sweep_rate_limits(now + 60_000).await.unwrap(), 1);
}
both!(shared_rate_limits_admit_exactly_the_quota_under_concurrency);

async fn audit_events_are_appended_per_tenant(backend: Backend) {
    let t = TestStore::new(backend).await;
    for s in ["acme", "beta"] {
        t.store.create_tenant(&slug(s), s, 1).await.unwrap();
    }
    let mut tx = t.store.write(&slug("acme")).await.unwrap();
    tx.audit().append(&event("login_failed")).await.unwrap();
    tx.audit().append(&event("login_succeeded")).await.unwrap();
    tx.commit().await.unwrap();
    let acme: Vec<String> = t
        .store
        .read(&slug("acme"))
        .await
        .unwrap()
        .audit()
        .latest(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(acme, ["login_succeeded", "login_failed"]);
    assert_eq!(
        t.store
            .read(&slug("beta"))
            .await
            .unwrap()
            .audit()
            .latest(10)
            .await
            .unwrap(),
        []
    );
}
both!(audit_events_are_appended_per_tenant);

/// Runs raw SQL on a tenant's tables, as an operator's tool would: the SQLite file or the
/// PostgreSQL schema, bypassing the store.
async fn raw_tenant_sql(t: &TestStore, tenant: &str, statements: &[&str]) {
    let (url, prefix) = match &t.pg {
        Some(pg) => (pg.url.clone(), format!("tenant_{tenant}.")),
        None => (
            format!(
                "sqlite://{}?mode=rw",
                t.dir.path().join(format!("tenants/{tenant}.db")).display()
            ),
            String::new(),
        ),
    };
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    for statement in statements {
        sqlx::query(&statement.replace("{p}", &prefix))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
}

async fn a_tenant_behind_on_migrations_is_migrated_on_first_use_not_at_start_up(backend: Backend) {
    let t = TestStore::new(backend).await;
    let acme = slug("acme");
    t.store.create_tenant(&acme, "Acme", 1).await.unwrap();
    // As if acme had been registered by a release whose migrations it never got.
    raw_tenant_sql(
        &t,
        "acme",
        &[
            "DROP TABLE {p}webhook_deliveries",
            "DROP TABLE {p}webhook_endpoints",
            "DROP TABLE {p}oidc_grants",
            "DROP TABLE {p}oidc_browser_sessions",
            "DROP TABLE {p}oidc_codes",
            "DROP TABLE {p}oidc_clients",
            "DROP TABLE {p}webauthn_ceremonies",
            "DROP TABLE {p}passkeys",
            "DROP TABLE {p}api_tokens",
            "DROP TABLE {p}recovery_codes",
            "DROP TABLE {p}totp_factors",
            "DROP TABLE {p}outbox",
            "DROP TABLE {p}projects",
            "DROP TABLE {p}team_members",
            "DROP TABLE {p}teams",
            "DROP TABLE {p}mfa_challenges",
            "DROP TABLE {p}email_secrets",
            "DROP TABLE {p}audit_log",
            "DROP TABLE {p}refresh_tokens",
            "DROP TABLE {p}sessions",
            "DROP TABLE {p}users",
            "DELETE FROM {p}schema_migrations",
        ],
    )
    .await;
    // A new process: start-up migrates the global scope only.
    let reopened: DynStore = std::sync::Arc::new(match &t.pg {
        Some(pg) => tessera_origin::store::Store::postgres(&pg.url, 4)
            .await
            .unwrap(),
        None => tessera_origin::store::Store::sqlite(t.dir.path())
            .await
            .unwrap(),
    });
    reopened.migrate_global().await.unwrap();
    assert_eq!(
        reopened.open_tenant_databases(),
        0,
        "start-up opened no tenant"
    );
    // First use of the tenant brings it up to date, then works.
    let mut tx = reopened.write(&acme).await.unwrap();
    tx.audit().append(&event("login_failed")).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        reopened
            .read(&acme)
            .await
            .unwrap()
            .audit()
            .latest(5)
            .await
            .unwrap()
            .len(),
        1
    );
}
both!(a_tenant_behind_on_migrations_is_migrated_on_first_use_not_at_start_up);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_the_configured_number_of_sqlite_tenants_are_open() {
    let dir = tempfile::tempdir().unwrap();
    let store: DynStore = std::sync::Arc::new(
        tessera_origin::store::Store::sqlite_with(dir.path(), 2)
            .await
            .unwrap(),
    );
    store.migrate_global().await.unwrap();
    let slugs: Vec<TenantSlug> = (0..6).map(|i| slug(&format!("tenant-{i}"))).collect();
    for s in &slugs {
        store.create_tenant(s, s.as_str(), 1).await.unwrap();
    }
    for round in 0..2 {
        for s in &slugs {
            let email = format!("u{round}@x.io");
            let user = create_user(&store, s, &email).await;
            assert!(is_stored(&store, s, &user).await, "{s} after eviction");
            assert!(store.open_tenant_databases() <= 2);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_left_by_a_failed_creation_is_replaced_and_a_registered_one_never_is() {
    let dir = tempfile::tempdir().unwrap();
    let store: DynStore = std::sync::Arc::new(
        tessera_origin::store::Store::sqlite(dir.path())
            .await
            .unwrap(),
    );
    store.migrate_global().await.unwrap();
    // What a creation that died between placing the file and registering it leaves behind.
    std::fs::write(dir.path().join("tenants/acme.db"), b"not a database").unwrap();
    std::fs::write(dir.path().join("tenants/acme.db-wal"), b"stale").unwrap();
    store.create_tenant(&slug("acme"), "Acme", 1).await.unwrap();
    let user = create_user(&store, &slug("acme"), "ann@x.io").await;
    // A second creation of the same slug is refused and leaves the first one's data alone.
    assert!(matches!(
        store.create_tenant(&slug("acme"), "Again", 2).await,
        Err(StoreError::Conflict)
    ));
    assert!(is_stored(&store, &slug("acme"), &user).await);
}

/// PostgreSQL: the names of the spare tenant schemas ready, oldest first.
async fn spare_names(pg: &common::PgDatabase) -> Vec<String> {
    let pool = sqlx::AnyPool::connect(&pg.url).await.unwrap();
    let names =
        sqlx::query_scalar("SELECT name FROM tessera.spare_schemas ORDER BY created_at, name")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    names
}

/// PostgreSQL: runs raw SQL on the test's database, as an operator's tool would, each statement
/// required to succeed.
async fn pg_sql(pg: &common::PgDatabase, statements: &[String]) {
    let pool = sqlx::AnyPool::connect(&pg.url).await.unwrap();
    for statement in statements {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

/// PostgreSQL: whether a schema of this name exists.
async fn schema_exists(pg: &common::PgDatabase, name: &str) -> bool {
    let pool = sqlx::AnyPool::connect(&pg.url).await.unwrap();
    let found: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname::text = $1")
            .bind(name)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    found == 1
}

/// A tenant created while spares are ready takes the oldest (renamed to the tenant's schema,
/// its tables in use at once), and its creation wakes whoever makes the next one; making spares
/// again makes only the missing ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_postgres_tenant_takes_a_spare_schema() {
    let t = TestStore::new(Backend::Postgres).await;
    let pg = t.pg.clone().unwrap();
    assert_eq!(t.store.prepare_spare_schemas(2).await.unwrap(), 2);
    assert_eq!(t.store.prepare_spare_schemas(2).await.unwrap(), 0);
    let spares = spare_names(&pg).await;
    assert_eq!(spares.len(), 2);
    let taken = t.store.spare_taken();

    t.store
        .create_tenant(&slug("acme"), "Acme", 1)
        .await
        .unwrap();
    assert_eq!(spare_names(&pg).await, spares[1..]);
    assert!(
        !schema_exists(&pg, &spares[0]).await,
        "the oldest spare was renamed"
    );
    assert!(schema_exists(&pg, "tenant_acme").await);
    tokio::time::timeout(std::time::Duration::from_secs(1), taken.notified())
        .await
        .expect("taking a spare wakes the maker of spares");
    let user = create_user(&t.store, &slug("acme"), "a@example.com").await;
    assert!(is_stored(&t.store, &slug("acme"), &user).await);
    assert_eq!(t.store.prepare_spare_schemas(2).await.unwrap(), 1);
    assert_eq!(t.store.spare_schemas().await.unwrap(), 2);
}

/// A spare made by an older release gets the migrations it lacks when a tenant takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spare_schema_behind_on_migrations_is_completed_when_taken() {
    let t = TestStore::new(Backend::Postgres).await;
    let pg = t.pg.clone().unwrap();
    t.store.prepare_spare_schemas(1).await.unwrap();
    let spare = spare_names(&pg).await.remove(0);
    pg_sql(
        &pg,
        &[
            format!("DROP TABLE {spare}.api_tokens"),
            format!("DELETE FROM {spare}.schema_migrations WHERE version = '0004_api_tokens'"),
        ],
    )
    .await;

    t.store
        .create_tenant(&slug("acme"), "Acme", 1)
        .await
        .unwrap();
    assert!(spare_names(&pg).await.is_empty(), "the spare was taken");
    let pool = sqlx::AnyPool::connect(&pg.url).await.unwrap();
    let tokens: i64 = sqlx::query_scalar("SELECT count(*) FROM tenant_acme.api_tokens")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tokens, 0);
    pool.close().await;
}

/// Creations at once take different spares, and one that finds none ready makes its schema
/// itself; a spare whose schema was dropped by hand is never handed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_postgres_creations_never_share_a_spare() {
    let t = TestStore::new(Backend::Postgres).await;
    let pg = t.pg.clone().unwrap();
    t.store.prepare_spare_schemas(3).await.unwrap();
    let dropped = spare_names(&pg).await.remove(0);
    pg_sql(&pg, &[format!("DROP SCHEMA {dropped} CASCADE")]).await;

    let (a, b, c) = (slug("alpha"), slug("bravo"), slug("charlie"));
    let (a, b, c) = tokio::join!(
        t.store.create_tenant(&a, "A", 1),
        t.store.create_tenant(&b, "B", 1),
        t.store.create_tenant(&c, "C", 1),
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    assert_eq!(
        spare_names(&pg).await,
        [dropped],
        "the two real spares were taken"
    );
    for tenant in ["alpha", "bravo", "charlie"] {
        create_user(&t.store, &slug(tenant), "x@example.com").await;
    }
    // Making spares forgets the record of the dropped one.
    assert_eq!(t.store.prepare_spare_schemas(1).await.unwrap(), 1);
    assert_eq!(t.store.spare_schemas().await.unwrap(), 1);
}

/// `tessera serve` on PostgreSQL makes its spares at start-up, and another as soon as a
/// creation on it takes one (not at the next minute's count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_keeps_its_spare_schemas_made() {
    let server = common::TestServer::start(Backend::Postgres).await;
    let pg = server.storage.pg.clone().unwrap();
    let ready = |count: usize| {
        let store = server.state.store.clone();
        async move {
            for _ in 0..200 {
                if store.spare_schemas().await.unwrap() == count {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("{count} spare schemas were not made within 10 s");
        }
    };
    ready(2).await;
    let before = spare_names(&pg).await;
    server.create_tenant("acme").await;
    ready(2).await;
    let after = spare_names(&pg).await;
    assert!(!after.contains(&before[0]), "the oldest was taken");
    assert!(
        after.contains(&before[1]),
        "the other is still there, beside a new one"
    );
}

async fn the_revocation_log_is_written_with_the_change_and_backfilled_once(backend: Backend) {
    let t = TestStore::new(backend).await;
    let acme = slug("acme");
    t.store.create_tenant(&acme, "Acme", 1).await.unwrap();
    let user = create_user(&t.store, &acme, "ann@x.io").await;
    let (a, b, c) = (
        new_session(user.id, 1_000),
        new_session(user.id, 1_000),
        new_session(user.id, 1_000),
    );
    for session in [&a, &b, &c] {
        create_session(&t.store, &acme, session, &refresh_token(&acme)).await;
    }
    let logged = |entries: Vec<tessera_origin::store::revocation_log::LogEntry>| {
        entries
            .into_iter()
            .map(|e| (e.tenant, e.subject, e.until))
            .collect::<Vec<_>>()
    };
    let until = |at: u64| i64::try_from(tessera_core::edge::longest_token_end(at)).unwrap();
    // Committed: in the log. Rolled back: not.
    let mut tx = t.store.write(&acme).await.unwrap();
    assert!(tx.sessions().revoke(&a.id, "logout", 1_003).await.unwrap());
    tx.commit().await.unwrap();
    let mut tx = t.store.write(&acme).await.unwrap();
    assert!(tx.sessions().revoke(&b.id, "logout", 1_004).await.unwrap());
    drop(tx);
    assert_eq!(
        logged(t.store.revocations_after(0, 1_005, 100).await.unwrap()),
        [("acme".to_owned(), a.id.to_string(), until(1_003))]
    );
    // A session ended before the log existed (as an older release ended it) is put in by the
    // backfill, once.
    raw_tenant_sql(
        &t,
        "acme",
        &[&format!(
            "UPDATE {{p}}sessions SET revoked_at = 1005 WHERE id = '{}'",
            c.id
        )],
    )
    .await;
    assert!(t
        .store
        .backfill_revocation_log(1_010)
        .await
        .unwrap()
        .is_some());
    let entries = logged(t.store.revocations_after(0, 1_010, 100).await.unwrap());
    assert!(
        entries.contains(&("acme".to_owned(), c.id.to_string(), until(1_005))),
        "{entries:?}"
    );
    assert_eq!(t.store.backfill_revocation_log(1_011).await.unwrap(), None);
}
both!(the_revocation_log_is_written_with_the_change_and_backfilled_once);
