//! Harness for end-to-end tests: the real origin (in this process, on 127.0.0.1:0, embedded
//! SQLite) and the built Worker under Miniflare (workerd, on 127.0.0.1), wired to each other.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tessera_core::model::{Email, TenantSlug, UserId};
use tessera_origin::config::Config;
use tessera_origin::keys::MasterKey;
use tessera_origin::state::AppState;
use tessera_origin::store::{DynStore, NewUser};
use tessera_origin::{clock, server};
use tokio::io::{AsyncBufReadExt, BufReader};

pub const EDGE_SECRET: &str = "an-edge-secret-for-e2e-tests-0123456789";
pub const ISSUER: &str = "http://tessera.test";
pub const PASSWORD: &str = "correct horse battery staple";
/// The master key of every stack (so a restarted origin opens what it sealed).
const MASTER_KEY: [u8; 32] = [9; 32];
pub const METRICS_TOKEN: &str = "a-metrics-token-for-the-end-to-end-tests";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The Worker under Miniflare.
pub struct Edge {
    pub url: String,
    child: tokio::process::Child,
}

impl Edge {
    /// Starts the Worker on `port` (0: any free port).
    async fn start(origin_url: &str, options: &Options, port: u16) -> Self {
        let root = repo_root();
        assert!(
            root.join("edge/build/index.js").exists(),
            "the Worker is not built: run scripts/build-edge (scripts/test does it)"
        );
        assert!(
            root.join("node_modules/miniflare").exists(),
            "miniflare is not installed: run `npm ci` at the repository root (scripts/test does it)"
        );
        let mut child = tokio::process::Command::new("node")
            .arg(root.join("tests/edge/miniflare.mjs"))
            .current_dir(&root)
            .env("ORIGIN_URL", origin_url)
            .env("ISSUER", ISSUER)
            .env("AUDIENCE", "tessera")
            .env("EDGE_SECRET", EDGE_SECRET)
            .env("IDENTITY_KEY", identity_key().to_text())
            .env("ROUTES", &options.routes)
            .env("BASE_DOMAIN", &options.base_domain)
            .env("PORT", port.to_string())
            // Keys are refetched for an unknown kid at most this often: short, so that the
            // rotation test waits for the fetch, not for a throttle.
            .env("JWKS_REFETCH_MIN_MS", "100")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            // Its own process group, so that Drop can stop workerd with it.
            .process_group(0)
            .spawn()
            .expect("node is required for the edge tests");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("READY ") {
                    return url.trim_end_matches('/').to_owned();
                }
            }
            panic!("miniflare exited before it was ready");
        })
        .await
        .expect("miniflare did not start within 60 s");
        // Keep draining stdout so the Worker's logs never block it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { url: ready, child }
    }
}

impl Drop for Edge {
    /// Stops node and the workerd it started, passed, failed or panicked: SIGTERM to the whole
    /// process group, then SIGKILL if anything of it is still there after 2 s. (Signalling node
    /// alone left workerd running with parent 1 once node was killed mid-shutdown.)
    fn drop(&mut self) {
        let Some(pid) = self.child.id() else {
            return;
        };
        let group = format!("-{pid}");
        let signal = |sig: &str| {
            std::process::Command::new("kill")
                .args([sig, "--", &group])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        signal("-TERM");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let _ = self.child.try_wait();
        while group_running(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let _ = self.child.try_wait();
        }
        signal("-KILL");
    }
}

/// Whether a process of group `pgid` is still running (zombies, which only wait to be reaped,
/// do not count).
fn group_running(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after its ')'.
        let mut fields = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let pgrp = fields.nth(1).and_then(|g| g.parse::<u32>().ok());
        pgrp == Some(pgid) && state != "Z" && state != "X"
    })
}

/// What an application upstream behind the edge received.
pub type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// The edge's identity key in these tests (the Worker's `IDENTITY_KEY`); upstreams check with
/// its public half only.
#[must_use]
pub fn identity_key() -> tessera_core::identity::IdentityKey {
    tessera_core::identity::IdentityKey::from_seed([42; 32])
}

/// An application upstream that records every request it receives: its headers, with the
/// method, path, path and query, and body under `:`-prefixed names.
pub async fn upstream() -> (String, Seen) {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let record = record.clone();
        async move {
            let mut headers: HashMap<String, String> = request
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        v.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            headers.insert(":method".into(), request.method().to_string());
            headers.insert(":path".into(), request.uri().path().to_owned());
            let path_and_query = request
                .uri()
                .path_and_query()
                .map_or_else(String::new, ToString::to_string);
            headers.insert(":path_and_query".into(), path_and_query);
            let body = axum::body::to_bytes(request.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            headers.insert(":body".into(), String::from_utf8_lossy(&body).into_owned());
            record.lock().unwrap().push(headers);
            "from upstream"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Origin and edge, wired together.
pub struct Stack {
    pub origin_url: String,
    pub state: AppState,
    pub http: reqwest::Client,
    edge: Option<Edge>,
    edge_url: String,
    options: Options,
    config: Config,
    origin_addr: SocketAddr,
    origin: Option<RunningOrigin>,
    _dir: tempfile::TempDir,
    _pg: Option<tessera_testing::PgDatabase>,
}

/// The origin's server task and the way to stop it.
struct RunningOrigin {
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// How a stack is configured beyond the defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// The edge's `ROUTES`.
    pub routes: String,
    /// `BASE_DOMAIN` at the edge and `TESSERA_BASE_DOMAIN` at the origin (empty: none).
    pub base_domain: String,
    /// The origin on a fresh PostgreSQL database instead of embedded SQLite (mail then stays
    /// queued: no relay listens, so [`Stack::emailed_code`] is for SQLite stacks).
    pub postgres: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            routes: "[]".into(),
            base_domain: String::new(),
            postgres: false,
        }
    }
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with_routes(routes: &str) -> Self {
        Self::start_with(Options {
            routes: routes.to_owned(),
            ..Options::default()
        })
        .await
    }

    pub async fn start_with(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin_addr: SocketAddr = listener.local_addr().unwrap();
        let origin_url = format!("http://{origin_addr}");
        let edge = Edge::start(&origin_url, &options, 0).await;
        let mut vars: HashMap<String, String> = [
            ("TESSERA_DATA_DIR", dir.path().display().to_string()),
            ("TESSERA_EDGE_SECRET", EDGE_SECRET.to_owned()),
            // The public listener serves /metrics only with a token; the tests read it there.
            ("TESSERA_METRICS_TOKEN", METRICS_TOKEN.to_owned()),
            ("TESSERA_EDGE_URL", edge.url.clone()),
            ("TESSERA_ISSUER", ISSUER.to_owned()),
            // Clients reach Tessera through the edge: its links and OpenID issuers are there.
            ("TESSERA_PUBLIC_URL", edge.url.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if !options.base_domain.is_empty() {
            vars.insert("TESSERA_BASE_DOMAIN".into(), options.base_domain.clone());
        }
        let pg = if options.postgres {
            Some(tessera_testing::PgDatabase::create().await)
        } else {
            None
        };
        if let Some(pg) = &pg {
            use base64::Engine as _;
            vars.insert("TESSERA_DATABASE_URL".into(), pg.url.clone());
            vars.insert(
                "TESSERA_MASTER_KEY".into(),
                base64::engine::general_purpose::STANDARD.encode(MASTER_KEY),
            );
            vars.insert("TESSERA_SMTP_URL".into(), "smtp://127.0.0.1:9".into());
        }
        let config = Config::from_map(&vars).unwrap();
        let store: DynStore = server::open_store(&config).await.unwrap();
        server::ensure_default_tenant(&store, &config)
            .await
            .unwrap();
        let (state, origin) = Self::serve_origin(&config, store, listener).await;
        Self {
            origin_url,
            state,
            http: reqwest::Client::new(),
            edge_url: edge.url.clone(),
            edge: Some(edge),
            options,
            config,
            origin_addr,
            origin: Some(origin),
            _dir: dir,
            _pg: pg,
        }
    }

    async fn serve_origin(
        config: &Config,
        store: DynStore,
        listener: tokio::net::TcpListener,
    ) -> (AppState, RunningOrigin) {
        let state = AppState::new(config.clone(), store, MasterKey::new(MASTER_KEY))
            .await
            .unwrap();
        let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
        let serve_state = state.clone();
        let task = tokio::spawn(async move {
            let _ = server::serve(listener, serve_state, async {
                let _ = rx.await;
            })
            .await;
        });
        (state, RunningOrigin { shutdown, task })
    }

    /// Stops the origin (the edge keeps running).
    pub fn stop_origin(&mut self) {
        if let Some(origin) = self.origin.take() {
            let _ = origin.shutdown.send(());
        }
    }

    /// Stops the origin, waits until it has let go of its port, and starts a new process's
    /// worth of it (new state, new jobs) on the same port and data: a restart.
    pub async fn restart_origin(&mut self) {
        if let Some(origin) = self.origin.take() {
            let _ = origin.shutdown.send(());
            tokio::time::timeout(std::time::Duration::from_secs(10), origin.task)
                .await
                .expect("the origin stopped within 10 s")
                .unwrap();
        }
        let listener = tokio::net::TcpListener::bind(self.origin_addr)
            .await
            .unwrap();
        let store: DynStore = server::open_store(&self.config).await.unwrap();
        let (state, origin) = Self::serve_origin(&self.config, store, listener).await;
        self.state = state;
        self.origin = Some(origin);
    }

    /// Stops the Worker, with everything its Durable Objects held.
    pub fn stop_edge(&mut self) {
        self.edge = None;
    }

    /// Starts a fresh Worker (empty Durable Objects) on the stopped one's address.
    pub async fn start_edge(&mut self) {
        let port = self
            .edge_url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap();
        self.edge = Some(Edge::start(&self.origin_url, &self.options, port).await);
    }

    /// The Worker's base URL.
    pub fn edge_url(&self) -> &str {
        &self.edge_url
    }

    pub fn edge(&self, path: &str) -> String {
        format!("{}{path}", self.edge_url)
    }

    pub async fn create_user(&self, email: &str) {
        self.create_user_in("default", email).await;
    }

    /// Creates `email` (password [`PASSWORD`]) in `tenant`.
    pub async fn create_user_in(&self, tenant: &str, email: &str) {
        let hash = self.state.hasher.hash(PASSWORD.into()).await.unwrap();
        let user = NewUser {
            id: UserId::from_random_bytes(clock::random()),
            email: Email::parse(email).unwrap(),
            name: String::new(),
            role: "user".into(),
            password_hash: Some(hash),
            now: clock::system_now_secs(),
        };
        let tenant = TenantSlug::parse(tenant).unwrap();
        let mut tx = self.state.store.write(&tenant).await.unwrap();
        tx.users().create(&user).await.unwrap();
        tx.commit().await.unwrap();
    }

    /// Signs in through the edge from client IP `ip`.
    pub async fn sign_in(&self, email: &str, ip: &str) -> serde_json::Value {
        let response = self
            .http
            .post(self.edge("/api/auth/login"))
            .header("cf-connecting-ip", ip)
            .json(&serde_json::json!({"email": email, "password": PASSWORD, "tenant": "default"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "sign-in through the edge");
        response.json().await.unwrap()
    }

    /// The six-digit code of the first email the origin wrote (the development transport
    /// writes each message to `<data dir>/outbox/<id>.eml`), waiting up to 10 s for it.
    pub async fn emailed_code(&self) -> String {
        let outbox = self._dir.path().join("outbox");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = std::fs::read_dir(&outbox)
                .ok()
                .and_then(|mut entries| entries.next())
                .and_then(Result::ok)
                .and_then(|e| std::fs::read_to_string(e.path()).ok());
            let code = text.as_deref().and_then(|text| {
                text.lines()
                    .map(str::trim)
                    .find(|l| tessera_core::otp::is_code_shaped(l))
                    .map(str::to_owned)
            });
            if let Some(code) = code {
                return code;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no emailed code in {}",
                outbox.display()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The `token=` of the link in the first email the origin wrote to `to` (SQLite stacks,
    /// see [`Stack::emailed_code`]), waiting up to 10 s for it.
    pub async fn emailed_link_token(&self, to: &str) -> String {
        let outbox = self._dir.path().join("outbox");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let found = std::fs::read_dir(&outbox)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .filter(|text| {
                    text.lines()
                        .any(|l| l.eq_ignore_ascii_case(&format!("To: {to}")))
                })
                // Quoted-printable bodies: soft line breaks joined, `=3D` back to `=`.
                .map(|text| {
                    text.replace("=\r\n", "")
                        .replace("=\n", "")
                        .replace("=3D", "=")
                })
                .find_map(|text| {
                    let start = text.find("token=")? + "token=".len();
                    Some(
                        text[start..]
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                            .collect::<String>(),
                    )
                });
            if let Some(token) = found {
                return token;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no emailed link to {to} in {}",
                outbox.display()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Signs in through the edge the VoiceStamp way (emailed code) from client IP `ip`;
    /// answers the `verify-code` body. Needs an empty outbox (see [`Stack::emailed_code`]).
    pub async fn voicestamp_sign_in(&self, email: &str, ip: &str) -> serde_json::Value {
        let asked = self
            .http
            .post(self.edge("/api/v1/auth/login"))
            .header("cf-connecting-ip", ip)
            .json(&serde_json::json!({"email": email}))
            .send()
            .await
            .unwrap();
        assert_eq!(asked.status(), 200, "VoiceStamp login through the edge");
        let code = self.emailed_code().await;
        let signed = self
            .http
            .post(self.edge("/api/v1/auth/verify-code"))
            .header("cf-connecting-ip", ip)
            .json(&serde_json::json!({"email": email, "code": code}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            signed.status(),
            200,
            "VoiceStamp verify-code through the edge"
        );
        signed.json().await.unwrap()
    }

    /// Creates a service token named `name` in the default tenant; answers it and its record.
    pub async fn create_service_token(
        &self,
        name: &str,
    ) -> tessera_origin::services::api_tokens::Created {
        self.state
            .services
            .api_tokens
            .create(
                &TenantSlug::parse("default").unwrap(),
                tessera_origin::services::api_tokens::NewApiToken {
                    name: name.into(),
                    scopes: vec![],
                    expires_in_days: None,
                },
            )
            .await
            .unwrap()
    }

    /// How many requests of a route class reached the origin. Read from the operations app in
    /// process, so that reading is not itself a request of a class (`/metrics` on the public
    /// listener is a Public one).
    pub async fn origin_requests(&self, class: &str) -> u64 {
        use tower::ServiceExt as _;
        let request = axum::http::Request::get("/metrics")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = tessera_origin::http::ops::ops_app(self.state.clone())
            .oneshot(request)
            .await
            .unwrap();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
            .await
            .unwrap();
        let metrics = String::from_utf8(bytes.to_vec()).unwrap();
        let prefix = format!("tessera_http_requests_total{{class=\"{class}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |n| n.trim().parse().unwrap())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop_origin();
    }
}

/// Asserts core's security headers on a response.
pub fn assert_security_headers(response: &reqwest::Response) {
    for (name, value) in tessera_core::headers::SECURITY_HEADERS {
        assert_eq!(
            response.headers().get(*name).and_then(|v| v.to_str().ok()),
            Some(*value),
            "{name} on {} {}",
            response.status(),
            response.url()
        );
    }
}
