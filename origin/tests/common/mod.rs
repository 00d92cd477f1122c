//! Test harness: the real origin on 127.0.0.1:0 over a fresh SQLite directory or a fresh
//! PostgreSQL database, driven over HTTP.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod smtp;

use std::collections::HashMap;
use std::net::SocketAddr;

use serde_json::{json, Value};
use tessera_core::model::{Email, TenantSlug, UserId};
use tessera_origin::clock::ManualClock;
use tessera_origin::config::{Argon2Params, Config};
use tessera_origin::state::AppState;
use tessera_origin::store::{DynStore, NewUser, Store, TenantChanges};
use tessera_origin::{clock, keys::MasterKey, server};

/// The claims of a JWT (not verified: the tests read what the origin issued).
pub fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&payload).expect("JSON claims")
}

pub const PASSWORD: &str = "correct horse battery staple";
pub const EDGE_SECRET: &str = "an-edge-secret-for-tests-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub use tessera_testing::PgDatabase;

/// The storage of one test, and what keeps it alive.
#[derive(Clone)]
pub struct TestStore {
    pub store: DynStore,
    pub backend: Backend,
    pub dir: std::sync::Arc<tempfile::TempDir>,
    pub pg: Option<std::sync::Arc<PgDatabase>>,
}

impl TestStore {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, pg): (DynStore, _) = match backend {
            Backend::Sqlite => (
                std::sync::Arc::new(Store::sqlite(dir.path()).await.expect("sqlite")),
                None,
            ),
            Backend::Postgres => {
                let pg = PgDatabase::create().await;
                (
                    std::sync::Arc::new(Store::postgres(&pg.url, 16).await.expect("postgres")),
                    Some(std::sync::Arc::new(pg)),
                )
            }
        };
        store.migrate().await.expect("migrate");
        Self {
            store,
            backend,
            dir: std::sync::Arc::new(dir),
            pg,
        }
    }
}

/// A running origin, on a clock that moves only when the test advances it.
pub struct TestServer {
    pub base: String,
    /// The operations listener (`/metrics` without a token).
    pub ops_base: String,
    pub addr: SocketAddr,
    pub state: AppState,
    pub clock: std::sync::Arc<ManualClock>,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    pub storage: TestStore,
}

/// An override value that stands for the test server's own address (`http://127.0.0.1:<port>`):
/// `("TESSERA_PUBLIC_URL", SELF_URL)` makes the issuers of the OpenID provider reachable.
pub const SELF_URL: &str = "{self}";

/// As [`SELF_URL`], by the name `localhost` (`http://localhost:<port>`): a domain, which
/// passkeys need, that browsers treat as a secure context.
pub const SELF_LOCALHOST_URL: &str = "{self-localhost}";

pub fn config(storage: &TestStore, overrides: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert(
        "TESSERA_DATA_DIR".into(),
        storage.dir.path().display().to_string(),
    );
    vars.insert("TESSERA_EDGE_SECRET".into(), EDGE_SECRET.into());
    vars.insert("TESSERA_ISSUER".into(), "http://tessera.test".into());
    if let Some(pg) = &storage.pg {
        vars.insert("TESSERA_DATABASE_URL".into(), pg.url.clone());
        // PostgreSQL requires a relay. Tests that read mail start an SmtpSink and override
        // this; for the others no relay listens here, so any mail they caused stays queued.
        vars.insert("TESSERA_SMTP_URL".into(), "smtp://127.0.0.1:9".into());
    }
    vars.insert("TESSERA_MAIL_POLL_MS".into(), "100".into());
    vars.insert(
        "TESSERA_PUBLIC_URL".into(),
        "https://auth.tessera.test".into(),
    );
    for (k, v) in overrides {
        vars.insert((*k).into(), (*v).into());
    }
    Config::from_map(&vars).expect("test config")
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[]).await
    }

    pub async fn start_with(backend: Backend, overrides: &[(&str, &str)]) -> Self {
        Self::start_on(TestStore::new(backend).await, overrides).await
    }

    /// Another node on this server's PostgreSQL database, with a store (pool) of its own.
    pub async fn second_node(&self, overrides: &[(&str, &str)]) -> Self {
        let pg = self
            .storage
            .pg
            .clone()
            .expect("a second node needs PostgreSQL");
        let store: DynStore =
            std::sync::Arc::new(Store::postgres(&pg.url, 16).await.expect("postgres"));
        let storage = TestStore {
            store,
            backend: Backend::Postgres,
            dir: std::sync::Arc::new(tempfile::tempdir().expect("tempdir")),
            pg: Some(pg),
        };
        Self::start_on(storage, overrides).await
    }

    pub async fn start_on(storage: TestStore, overrides: &[(&str, &str)]) -> Self {
        Self::start_with_master(storage, overrides, MasterKey::new([42; 32])).await
    }

    /// Whether a server could start on `storage` with `master` (its state builds: every sealed
    /// key it needs opens).
    pub async fn try_start_with_master(
        storage: TestStore,
        master: MasterKey,
    ) -> Result<(), tessera_origin::state::StartError> {
        let config = config(&storage, &[]);
        let clock = std::sync::Arc::new(ManualClock::starting_now());
        AppState::with_clock(config, storage.store.clone(), master, clock)
            .await
            .map(|_| ())
    }

    /// A server on `storage` with the master key `master`.
    pub async fn start_with_master(
        storage: TestStore,
        overrides: &[(&str, &str)],
        master: MasterKey,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let own = format!("http://{addr}");
        let own_name = format!("http://localhost:{}", addr.port());
        let overrides: Vec<(&str, &str)> = overrides
            .iter()
            .map(|&(k, v)| match v {
                SELF_URL => (k, own.as_str()),
                SELF_LOCALHOST_URL => (k, own_name.as_str()),
                _ => (k, v),
            })
            .collect();
        let config = config(&storage, &overrides);
        server::ensure_default_tenant(&storage.store, &config)
            .await
            .expect("default tenant");
        let clock = std::sync::Arc::new(ManualClock::starting_now());
        let state = AppState::with_clock(config, storage.store.clone(), master, clock.clone())
            .await
            .expect("state");
        let ops = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind ops");
        let ops_addr = ops.local_addr().expect("ops addr");
        let (tx, rx) = tokio::sync::watch::channel(false);
        let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        };
        tokio::spawn(server::serve(
            listener,
            state.clone(),
            until_stopped(rx.clone()),
        ));
        tokio::spawn(server::serve_ops(ops, state.clone(), until_stopped(rx)));
        Self {
            base: format!("http://{addr}"),
            ops_base: format!("http://{ops_addr}"),
            addr,
            state,
            clock,
            http: reqwest::Client::new(),
            shutdown: Some(tx),
            storage,
        }
    }

    /// The `tessera` command over this server's storage, with its master key (the test
    /// servers' `[42; 32]`), its output piped.
    pub fn cli(&self, args: &[&str]) -> std::process::Command {
        use base64::Engine as _;
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
        command
            .args(args)
            .env("TESSERA_DATA_DIR", self.storage.dir.path())
            .env(
                "TESSERA_MASTER_KEY",
                base64::engine::general_purpose::STANDARD.encode([42u8; 32]),
            )
            .env("TESSERA_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(pg) = &self.storage.pg {
            command
                .env("TESSERA_DATABASE_URL", &pg.url)
                .env("TESSERA_SMTP_URL", "smtp://127.0.0.1:9");
        }
        command
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The tenant's latest audit events, newest first, as `event` and `event detail`.
    pub async fn audit_events(&self, tenant: &str) -> Vec<String> {
        let slug = TenantSlug::parse(tenant).expect("slug");
        let mut read = self.state.store.read(&slug).await.expect("read");
        let events = read.audit().latest(50).await.expect("audit log");
        events
            .into_iter()
            .map(|e| format!("{} {}", e.event, e.detail).trim_end().to_owned())
            .collect()
    }

    pub async fn create_tenant(&self, slug: &str) -> TenantSlug {
        let slug = TenantSlug::parse(slug).expect("slug");
        self.state
            .store
            .create_tenant(&slug, slug.as_str(), clock::system_now_secs())
            .await
            .expect("create tenant");
        slug
    }

    /// Applies `changes` to `tenant`'s settings (the store's update, as `tenant update` does).
    pub async fn change_tenant(&self, tenant: &str, changes: impl Into<TenantChanges>) {
        let slug = TenantSlug::parse(tenant).expect("slug");
        self.state
            .store
            .update_tenant(&slug, &changes.into())
            .await
            .expect("update tenant")
            .expect("the tenant exists");
    }

    pub async fn create_user(&self, tenant: &str, email: &str, password: &str) -> UserId {
        self.create_user_as(tenant, email, password, "user").await
    }

    pub async fn create_user_as(
        &self,
        tenant: &str,
        email: &str,
        password: &str,
        role: &str,
    ) -> UserId {
        let tenant = TenantSlug::parse(tenant).expect("slug");
        let hash = self
            .state
            .hasher
            .hash(password.to_owned().into())
            .await
            .expect("hash");
        let user = NewUser {
            id: UserId::from_random_bytes(clock::random()),
            email: Email::parse(email).expect("email"),
            name: "Test User".into(),
            role: role.into(),
            password_hash: Some(hash),
            now: clock::system_now_secs(),
        };
        let mut tx = self.state.store.write(&tenant).await.expect("unit");
        tx.users().create(&user).await.expect("create user");
        tx.commit().await.expect("commit");
        user.id
    }

    /// POST JSON from `client_ip` as the edge would forward it (so that per-IP limits of one
    /// test do not collide with another request's).
    pub async fn post_from(&self, path: &str, body: &Value, client_ip: &str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("x-tessera-edge-secret", EDGE_SECRET)
            .header("x-tessera-client-ip", client_ip)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// A server whose mail goes to a fresh SMTP sink.
    pub async fn with_sink(backend: Backend, overrides: &[(&str, &str)]) -> (Self, smtp::SmtpSink) {
        let sink = smtp::SmtpSink::start();
        let url = sink.url();
        let mut all = vec![("TESSERA_SMTP_URL", url.as_str())];
        all.extend_from_slice(overrides);
        (Self::start_with(backend, &all).await, sink)
    }

    /// POST JSON with a bearer token from a fresh client IP.
    pub async fn post_auth(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.send_auth(reqwest::Method::POST, path, token, body)
            .await
    }

    /// DELETE with a JSON body and a bearer token from a fresh client IP.
    pub async fn delete_auth(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.send_auth(reqwest::Method::DELETE, path, token, body)
            .await
    }

    /// PUT JSON with a bearer token from a fresh client IP.
    pub async fn put_auth(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.send_auth(reqwest::Method::PUT, path, token, body)
            .await
    }

    /// `method` with a JSON body and a bearer token, from a fresh client IP as the edge would
    /// forward it.
    pub async fn send_auth(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.http
            .request(method, self.url(path))
            .header("x-tessera-edge-secret", EDGE_SECRET)
            .header("x-tessera-client-ip", unique_ip())
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// GET, with a bearer token if given, from a fresh client IP as the edge would forward it.
    pub async fn get_fresh(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self
            .http
            .get(self.url(path))
            .header("x-tessera-edge-secret", EDGE_SECRET)
            .header("x-tessera-client-ip", unique_ip());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    /// Enrols and confirms an authenticator app for the holder of `access` (an ordinary token:
    /// the change takes `password`); answers the app's secret and the recovery codes.
    pub async fn enrol_totp(&self, access: &str, password: &str) -> (String, Vec<String>) {
        let enrolment: Value = self
            .post_auth(
                "/api/auth/mfa/totp/enroll",
                access,
                &json!({"password": password}),
            )
            .await
            .json()
            .await
            .expect("an enrolment");
        let secret = enrolment["secret"].as_str().expect("a secret").to_owned();
        let now = u64::try_from(clock::Clock::now_secs(&*self.clock)).expect("a time");
        let confirm = json!({"code": tessera_testing::pyotp(&secret, now), "password": password});
        let confirmed = self
            .post_auth("/api/auth/mfa/totp/confirm", access, &confirm)
            .await;
        assert_eq!(confirmed.status(), 200, "confirmation");
        let confirmed: Value = confirmed.json().await.expect("recovery codes");
        let codes = confirmed["recovery_codes"]
            .as_array()
            .expect("recovery codes")
            .iter()
            .map(|c| c.as_str().expect("a code").to_owned())
            .collect();
        (secret, codes)
    }

    /// Signs in and returns the token response, asserting success.
    /// Presents the refresh token of `tokens` (a sign-in's or a refresh's answer).
    pub async fn refresh(&self, tokens: &Value) -> reqwest::Response {
        let body = json!({"refresh_token": tokens["refresh_token"]});
        self.post_from("/api/auth/refresh", &body, &unique_ip())
            .await
    }

    pub async fn login(&self, tenant: &str, email: &str, password: &str) -> Value {
        let response = self
            .post_from(
                "/api/auth/login",
                &json!({"email": email, "password": password, "tenant": tenant}),
                &unique_ip(),
            )
            .await;
        assert_eq!(response.status(), 200, "login of {email} in {tenant}");
        response.json().await.expect("json")
    }
}

impl TestServer {
    /// Stops serving; the storage stays, for a server started on it afterwards.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts a helper process that prints `ready` on its first line once it serves; `missing`
/// says what to install when it does not.
pub fn spawn_ready(mut command: std::process::Command, missing: &str) -> std::process::Child {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("python3 runs the helper");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("its standard output");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
        .expect("its first line");
    assert_eq!(line.trim(), "ready", "{missing}");
    child
}

/// A loopback TCP port free right now, for a server process a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A client IP no other request of this process used.
pub fn unique_ip() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255)
}

/// Asserts a problem+json answer with this status and code, and returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_security_headers(response.headers());
    let body: Value = response.json().await.expect("json body");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    body
}

/// Asserts every header of core's policy is present with its value.
pub fn assert_security_headers(headers: &reqwest::header::HeaderMap) {
    for (name, value) in tessera_core::headers::SECURITY_HEADERS {
        assert_eq!(
            headers.get(*name).and_then(|v| v.to_str().ok()),
            Some(*value),
            "{name}"
        );
    }
}

/// Argon2 parameters weaker than the configured ones, to test rehashing.
pub const WEAK_ARGON2: Argon2Params = Argon2Params {
    m_kib: 1024,
    t: 1,
    p: 1,
};

/// Declares a test for each backend: `both!(name, body_fn)` → `name_sqlite`, `name_postgres`.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await;
            }
        }
    };
}
