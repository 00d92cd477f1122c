//! Configuration from `TESSERA_*` environment variables, an optional `KEY=VALUE` file named by
//! `TESSERA_CONFIG_FILE` (the environment wins), and `*_FILE` variants for secrets. A wrong value
//! stops start-up with an error that names the variable.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use tessera_core::model::TenantSlug;

/// A configuration value that is wrong, with the variable that holds it.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    /// The variable, e.g. `TESSERA_BIND`.
    pub var: String,
    /// What is wrong with it.
    pub reason: String,
}

fn invalid(var: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.to_owned(),
        reason: reason.into(),
    }
}

/// Where rate-limit state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitStore {
    /// In this process: right for one node.
    Memory,
    /// In the database: shared by every node.
    Database,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for collectors.
    Json,
    /// Human-readable, for a terminal.
    Pretty,
    /// Pretty on a terminal, JSON otherwise (the default).
    Auto,
}

impl LogFormat {
    /// The format to write in, given whether the log goes to a terminal.
    #[must_use]
    pub fn resolve(self, terminal: bool) -> Self {
        match self {
            Self::Auto if terminal => Self::Pretty,
            Self::Auto => Self::Json,
            chosen => chosen,
        }
    }
}

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Parallelism.
    pub p: u32,
}

impl Argon2Params {
    /// OWASP's recommendation for argon2id: m = 19 MiB, t = 2, p = 1.
    pub const OWASP: Self = Self {
        m_kib: 19 * 1024,
        t: 2,
        p: 1,
    };
}

/// The origin's whole configuration. `Debug` prints no secret (see below).
#[derive(Clone)]
pub struct Config {
    /// `TESSERA_BIND`: listen address (default `127.0.0.1:8080`).
    pub bind: SocketAddr,
    /// `TESSERA_OPS_BIND`: the operations listener, where `/metrics` is served without a token
    /// (default `127.0.0.1:9464`, loopback only; `off` for none). On the public listener
    /// `/metrics` exists only with `TESSERA_METRICS_TOKEN`.
    pub ops_bind: Option<SocketAddr>,
    /// `TESSERA_DATA_DIR`: the embedded SQLite databases and generated master key (default `./data`).
    pub data_dir: PathBuf,
    /// `TESSERA_DATABASE_URL[_FILE]`: `postgres://…` for PostgreSQL; unset for embedded SQLite.
    pub database_url: Option<String>,
    /// `TESSERA_HEADER_READ_TIMEOUT_SECS`: a connection must deliver a request's headers within
    /// this time from when the server starts waiting for them, on a new connection and on an
    /// idle keep-alive one alike, or it is closed (default 10, 1–300). It is therefore also the
    /// keep-alive idle timeout.
    pub header_read_timeout_secs: u64,
    /// `TESSERA_BODY_READ_TIMEOUT_SECS`: a request body must arrive within this time, else 408
    /// (default 10, 1–300).
    pub body_read_timeout_secs: u64,
    /// `TESSERA_MAX_CONNECTIONS`: connections served at once; more wait in the listen backlog
    /// (default 1024, 1–1,000,000).
    pub max_connections: usize,
    /// `TESSERA_DATABASE_CONNECTIONS`: PostgreSQL connections at most (default 16, 1–1000;
    /// two at least): a quarter for the global tables, the rest in shards of two, each shard
    /// serving its share of the tenants first.
    pub database_connections: u32,
    /// `TESSERA_SPARE_SCHEMAS`: PostgreSQL, tenant schemas kept made and migrated ahead, so
    /// that creating a tenant renames one instead of running its DDL (default 2, 0–100; 0
    /// makes each tenant's schema when it is created).
    pub spare_schemas: usize,
    /// `TESSERA_SQLITE_OPEN_TENANTS`: embedded mode, tenant databases kept open at once, the
    /// least recently used closed first (default 128, 1–100,000). Each open tenant holds up to
    /// 2 connections of 3 files (database, WAL, shared memory) while in use.
    pub sqlite_open_tenants: usize,
    /// `TESSERA_MASTER_KEY[_FILE]`: base64 of 32 bytes that seal signing keys. Required with
    /// PostgreSQL; generated into the data directory in embedded mode when unset.
    pub master_key: Option<[u8; 32]>,
    /// `TESSERA_MASTER_KEY_ACCEPTED[_FILE]`: while the master key is rotated, the other key
    /// (base64 of 32 bytes), which opens what it sealed and seals nothing. See
    /// `tessera keys rotate-master`.
    pub master_key_accepted: Option<[u8; 32]>,
    /// `TESSERA_ISSUER`: the `iss` of access tokens (default `http://<bind>`).
    pub issuer: String,
    /// `TESSERA_AUDIENCE`: the `aud` of access tokens (default `tessera`).
    pub audience: String,
    /// `TESSERA_DEFAULT_TENANT`: the tenant of requests that name none (default `default`).
    pub default_tenant: TenantSlug,
    /// `TESSERA_BASE_DOMAIN`: when set, a request to `<slug>.<base domain>` names tenant `<slug>`.
    pub base_domain: Option<String>,
    /// `TESSERA_EDGE_SECRET[_FILE]`: the secret the edge sends with the client IP (≥ 32 chars).
    pub edge_secret: Option<String>,
    /// `TESSERA_EDGE_URL`: where the edge Worker listens; revocations are pushed to it.
    pub edge_url: Option<String>,
    /// `TESSERA_METRICS_TOKEN[_FILE]`: when set, `/metrics` answers only requests carrying
    /// `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    /// `TESSERA_TRUSTED_PROXIES`: comma-separated proxy IPs whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// `TESSERA_IPV6_PREFIX`: per-IP limits charge an IPv6 client's network of this many bits,
    /// not its address (default 64, 32–128; the edge's `IPV6_PREFIX` must match).
    pub ipv6_prefix: u8,
    /// `TESSERA_RATE_LIMIT_STORE`: `memory` (default) or `database`.
    pub rate_limit_store: RateLimitStore,
    /// `TESSERA_RATE_LIMIT_SWEEP_SECS`: how often idle rows of the shared rate-limit table are
    /// deleted, with `TESSERA_RATE_LIMIT_STORE=database` (default 60, 1–3600).
    pub rate_limit_sweep_secs: u64,
    /// `TESSERA_CACHE_SWEEP_SECS`: how often the session cache forgets entries past their TTL
    /// and the verified-token cache forgets expired tokens (default 10, 1–3600).
    pub cache_sweep_secs: u64,
    /// `TESSERA_PASSWORD_MIN_LENGTH`: minimum password length in characters (default 12, 8–64).
    pub password_min_length: usize,
    /// `TESSERA_REFRESH_GRACE_SECS`: reuse grace window for rotated refresh tokens (default 5, ≤ 60).
    pub refresh_grace_secs: u64,
    /// `TESSERA_SESSION_IDLE_SECS`: a session whose newest refresh token goes unused for longer
    /// than this ends when that token is next presented (default 0: no idle limit, only the
    /// 7-day absolute one; otherwise from the access token's 900 s to those 7 days). It holds
    /// for every renewal: refresh tokens and the team/vault API's `GET /api/refresh` alike.
    pub session_idle_secs: u64,
    /// `TESSERA_SESSION_CACHE_MS`: how long a node trusts its cached view of a session (default
    /// 1000, 0 turns the cache off): a revocation made by another node is seen within this time.
    pub session_cache_ms: u64,
    /// `TESSERA_TOKEN_CACHE_ENTRIES`: access tokens whose verification this node remembers until
    /// they expire, so that a token presented again skips its signature check (never its
    /// session check); default 10,000 (about 7 MiB), 0 turns the cache off.
    pub token_cache_entries: usize,
    /// `TESSERA_HASH_CONCURRENCY`: password hashes computed at once (default: the core count).
    pub hash_concurrency: usize,
    /// `TESSERA_HASH_QUEUE`: sign-ins allowed to wait for a hash slot before 503 (default 512).
    pub hash_queue: usize,
    /// `TESSERA_ARGON2_M_KIB`, `TESSERA_ARGON2_T`, `TESSERA_ARGON2_P` (default OWASP).
    pub argon2: Argon2Params,
    /// `TESSERA_SMTP_URL[_FILE]`: the relay, in lettre's URL form (`smtp://host:2525`,
    /// `smtp://host:587?tls=required`, `smtps://user:pass@host`). Unset: development transport
    /// (each email written to `<data dir>/outbox/<id>.eml`, its link or code logged); required
    /// with PostgreSQL.
    pub smtp_url: Option<String>,
    /// `TESSERA_SMTP_CA_FILE`: a PEM certificate to trust for the relay's TLS besides the
    /// public roots (a relay with a private CA).
    pub smtp_ca_file: Option<PathBuf>,
    /// `TESSERA_MAIL_FROM`: the sender of every email (default `Tessera <no-reply@localhost>`).
    pub mail_from: String,
    /// `TESSERA_PUBLIC_URL`: the base of every link in an email (default `http://<bind>`);
    /// never taken from a request's Host header.
    pub public_url: String,
    /// `TESSERA_MAIL_POLL_MS`: how often the mail worker looks for mail queued by other nodes
    /// and for retries that became due (default 1000, 50–60,000); mail queued on this node is
    /// sent at once.
    pub mail_poll_ms: u64,
    /// `TESSERA_REVOCATION_POLL_MS`: how often each node reads the revocation log written by
    /// other nodes and the CLI into its index (default 250, 50–1,000: a sign-out on one node is
    /// refused on every other within a second); this node's own revocations apply at once.
    pub revocation_poll_ms: u64,
    /// `TESSERA_BREACHED_PASSWORDS_URL`: a Pwned Passwords range API (for instance
    /// `https://api.pwnedpasswords.com/range/`) asked whether each new password is known from
    /// data breaches, by the first five hex digits of its SHA-1 (off when unset).
    pub breached_passwords_url: Option<String>,
    /// `TESSERA_CAPTCHA_SECRET[_FILE]` and `TESSERA_CAPTCHA_VERIFY_URL`: a Turnstile-compatible
    /// verifier for the `captcha` field of resend-verification (off when the secret is unset).
    pub captcha: Option<Captcha>,
    /// `TESSERA_LOG`: tracing filter (default `info`).
    pub log_filter: String,
    /// `TESSERA_LOG_FORMAT`: `json` or `pretty`; unset, pretty on a terminal and JSON
    /// otherwise.
    pub log_format: LogFormat,
    /// `TESSERA_DEV`: development mode (`1`): rate limits ×100 and one readable log line per
    /// request. Embedded SQLite only: refused with `TESSERA_DATABASE_URL`.
    pub dev: bool,
}

/// A Turnstile-compatible captcha verifier.
#[derive(Clone)]
pub struct Captcha {
    /// The secret sent with each check.
    pub secret: String,
    /// Where checks are posted (default Cloudflare Turnstile's `siteverify`).
    pub verify_url: String,
}

/// Cloudflare Turnstile's verification endpoint.
pub const TURNSTILE_VERIFY_URL: &str = "https://challenges.cloudflare.com/turnstile/v0/siteverify";

/// Shown as `***` when set: a secret never reaches a log line through `{:?}`.
fn redacted<T>(value: Option<&T>) -> &'static str {
    value.map_or("unset", |_| "***")
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("ops_bind", &self.ops_bind)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redacted(self.database_url.as_ref()))
            .field("master_key", &redacted(self.master_key.as_ref()))
            .field(
                "master_key_accepted",
                &redacted(self.master_key_accepted.as_ref()),
            )
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("default_tenant", &self.default_tenant)
            .field("base_domain", &self.base_domain)
            .field("edge_secret", &redacted(self.edge_secret.as_ref()))
            .field("edge_url", &self.edge_url)
            .field("metrics_token", &redacted(self.metrics_token.as_ref()))
            .field("trusted_proxies", &self.trusted_proxies)
            .field("rate_limit_store", &self.rate_limit_store)
            .field("smtp_url", &redacted(self.smtp_url.as_ref()))
            .field("mail_from", &self.mail_from)
            .field("public_url", &self.public_url)
            .field("captcha", &redacted(self.captcha.as_ref()))
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the process environment and, if `TESSERA_CONFIG_FILE` names one, that file.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut values: HashMap<String, String> = HashMap::new();
        if let Ok(path) = std::env::var("TESSERA_CONFIG_FILE") {
            let entries = dotenvy::from_path_iter(&path)
                .map_err(|e| invalid("TESSERA_CONFIG_FILE", format!("cannot read {path}: {e}")))?;
            for entry in entries {
                let (k, v) = entry.map_err(|e| {
                    invalid("TESSERA_CONFIG_FILE", format!("cannot parse {path}: {e}"))
                })?;
                values.insert(k, v);
            }
        }
        values.extend(std::env::vars().filter(|(k, _)| k.starts_with("TESSERA_")));
        Self::from_map(&values)
    }

    /// Builds the configuration from a map of variables (the environment, in production).
    pub fn from_map(values: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = Source(values);
        let bind: SocketAddr = env.parse(
            "TESSERA_BIND",
            "127.0.0.1:8080",
            "a socket address such as 127.0.0.1:8080",
        )?;
        let ops_bind = match env.get("TESSERA_OPS_BIND").as_deref() {
            Some("off") => None,
            _ => Some(env.parse(
                "TESSERA_OPS_BIND",
                "127.0.0.1:9464",
                "a socket address such as 127.0.0.1:9464, or off",
            )?),
        };
        let database_url = env.secret("TESSERA_DATABASE_URL")?;
        if let Some(url) = &database_url {
            if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                return Err(invalid(
                    "TESSERA_DATABASE_URL",
                    "must be a postgres:// URL; leave it unset for embedded SQLite",
                ));
            }
        }
        let master_key = env.key_bytes("TESSERA_MASTER_KEY")?;
        let master_key_accepted = env.key_bytes("TESSERA_MASTER_KEY_ACCEPTED")?;
        let edge_secret = env.secret("TESSERA_EDGE_SECRET")?;
        if edge_secret.as_ref().is_some_and(|s| s.len() < 32) {
            return Err(invalid(
                "TESSERA_EDGE_SECRET",
                "must be at least 32 characters",
            ));
        }
        // A bearer token in front of the process's metrics: as long as the edge secret, so that
        // guessing it is hopeless even unmetered.
        let metrics_token = env.secret("TESSERA_METRICS_TOKEN")?;
        if metrics_token.as_ref().is_some_and(|s| s.len() < 32) {
            return Err(invalid(
                "TESSERA_METRICS_TOKEN",
                "must be at least 32 characters",
            ));
        }
        let edge_url = env
            .get("TESSERA_EDGE_URL")
            .map(|u| u.trim_end_matches('/').to_owned());
        if edge_url.is_some() && edge_secret.is_none() {
            return Err(invalid(
                "TESSERA_EDGE_URL",
                "needs TESSERA_EDGE_SECRET to authenticate to the edge",
            ));
        }
        if edge_url
            .as_ref()
            .is_some_and(|u| !u.starts_with("http://") && !u.starts_with("https://"))
        {
            return Err(invalid(
                "TESSERA_EDGE_URL",
                "must be an http:// or https:// URL",
            ));
        }
        let trusted_proxies = env
            .get("TESSERA_TRUSTED_PROXIES")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|ip| {
                        ip.parse().map_err(|_| {
                            invalid(
                                "TESSERA_TRUSTED_PROXIES",
                                format!("'{ip}' is not an IP address"),
                            )
                        })
                    })
                    .collect::<Result<Vec<IpAddr>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let rate_limit_store = match env.get("TESSERA_RATE_LIMIT_STORE").as_deref() {
            None | Some("memory") => RateLimitStore::Memory,
            Some("database") => RateLimitStore::Database,
            Some(other) => {
                return Err(invalid(
                    "TESSERA_RATE_LIMIT_STORE",
                    format!("'{other}' is not one of memory, database"),
                ))
            }
        };
        let log_format = match env.get("TESSERA_LOG_FORMAT").as_deref() {
            None => LogFormat::Auto,
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(invalid(
                    "TESSERA_LOG_FORMAT",
                    format!("'{other}' is not one of json, pretty"),
                ))
            }
        };
        let dev = match env.get("TESSERA_DEV").as_deref() {
            None | Some("0" | "false") => false,
            Some("1" | "true") => true,
            Some(other) => {
                return Err(invalid(
                    "TESSERA_DEV",
                    format!("'{other}' is not one of 1, 0"),
                ))
            }
        };
        if dev && database_url.is_some() {
            return Err(invalid(
                "TESSERA_DEV",
                "development mode runs on embedded SQLite only: unset TESSERA_DATABASE_URL or TESSERA_DEV",
            ));
        }
        let default_tenant = env
            .get("TESSERA_DEFAULT_TENANT")
            .unwrap_or_else(|| "default".into());
        let default_tenant = TenantSlug::parse(&default_tenant)
            .map_err(|e| invalid("TESSERA_DEFAULT_TENANT", e.to_string()))?;
        let smtp_url = env.secret("TESSERA_SMTP_URL")?;
        match &smtp_url {
            Some(url) if !url.starts_with("smtp://") && !url.starts_with("smtps://") => {
                return Err(invalid(
                    "TESSERA_SMTP_URL",
                    "must be an smtp:// or smtps:// URL",
                ))
            }
            None if database_url.is_some() => {
                return Err(invalid(
                    "TESSERA_SMTP_URL",
                    "is required with PostgreSQL (production): set the relay, e.g. smtp://mail.internal:587?tls=required",
                ))
            }
            _ => {}
        }
        let public_url = env
            .get("TESSERA_PUBLIC_URL")
            .unwrap_or_else(|| format!("http://{bind}"))
            .trim_end_matches('/')
            .to_owned();
        if !public_url.starts_with("http://") && !public_url.starts_with("https://") {
            return Err(invalid(
                "TESSERA_PUBLIC_URL",
                "must be an http:// or https:// URL",
            ));
        }
        let breached_passwords_url = env.get("TESSERA_BREACHED_PASSWORDS_URL");
        if breached_passwords_url.as_deref().is_some_and(|url| {
            url::Url::parse(url).map_or(true, |u| !matches!(u.scheme(), "http" | "https"))
        }) {
            return Err(invalid(
                "TESSERA_BREACHED_PASSWORDS_URL",
                "must be an http:// or https:// URL",
            ));
        }
        let captcha = env.secret("TESSERA_CAPTCHA_SECRET")?.map(|secret| Captcha {
            secret,
            verify_url: env
                .get("TESSERA_CAPTCHA_VERIFY_URL")
                .unwrap_or_else(|| TURNSTILE_VERIFY_URL.into()),
        });
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(Self {
            bind,
            ops_bind,
            data_dir: PathBuf::from(
                env.get("TESSERA_DATA_DIR")
                    .unwrap_or_else(|| "./data".into()),
            ),
            database_url,
            master_key,
            master_key_accepted,
            issuer: env
                .get("TESSERA_ISSUER")
                .unwrap_or_else(|| format!("http://{bind}")),
            audience: env
                .get("TESSERA_AUDIENCE")
                .unwrap_or_else(|| "tessera".into()),
            default_tenant,
            base_domain: env
                .get("TESSERA_BASE_DOMAIN")
                .map(|d| d.trim_matches('.').to_ascii_lowercase()),
            edge_secret,
            edge_url,
            metrics_token,
            trusted_proxies,
            ipv6_prefix: env.ranged(
                "TESSERA_IPV6_PREFIX",
                tessera_core::ratelimit::DEFAULT_IPV6_PREFIX,
                tessera_core::ratelimit::MIN_IPV6_PREFIX,
                128,
            )?,
            rate_limit_store,
            rate_limit_sweep_secs: env.ranged("TESSERA_RATE_LIMIT_SWEEP_SECS", 60, 1, 3600)?,
            cache_sweep_secs: env.ranged("TESSERA_CACHE_SWEEP_SECS", 10, 1, 3600)?,
            password_min_length: env.ranged("TESSERA_PASSWORD_MIN_LENGTH", 12, 8, 64)?,
            refresh_grace_secs: env.ranged(
                "TESSERA_REFRESH_GRACE_SECS",
                tessera_core::lifetimes::REFRESH_REUSE_GRACE_SECS,
                0,
                60,
            )?,
            session_idle_secs: env.session_idle_secs()?,
            session_cache_ms: env.ranged("TESSERA_SESSION_CACHE_MS", 1000, 0, 60_000)?,
            header_read_timeout_secs: env.ranged("TESSERA_HEADER_READ_TIMEOUT_SECS", 10, 1, 300)?,
            body_read_timeout_secs: env.ranged("TESSERA_BODY_READ_TIMEOUT_SECS", 10, 1, 300)?,
            max_connections: env.ranged("TESSERA_MAX_CONNECTIONS", 1024, 1, 1_000_000)?,
            database_connections: env.ranged("TESSERA_DATABASE_CONNECTIONS", 16, 1, 1000)?,
            spare_schemas: env.ranged("TESSERA_SPARE_SCHEMAS", 2, 0, 100)?,
            sqlite_open_tenants: env.ranged(
                "TESSERA_SQLITE_OPEN_TENANTS",
                crate::store::DEFAULT_OPEN_TENANTS,
                1,
                100_000,
            )?,
            token_cache_entries: env.ranged(
                "TESSERA_TOKEN_CACHE_ENTRIES",
                10_000,
                0,
                10_000_000,
            )?,
            hash_concurrency: env.ranged("TESSERA_HASH_CONCURRENCY", cores, 1, 1024)?,
            hash_queue: env.ranged("TESSERA_HASH_QUEUE", 512, 1, 1_000_000)?,
            argon2: Argon2Params {
                m_kib: env.ranged(
                    "TESSERA_ARGON2_M_KIB",
                    Argon2Params::OWASP.m_kib,
                    8,
                    4 * 1024 * 1024,
                )?,
                t: env.ranged("TESSERA_ARGON2_T", Argon2Params::OWASP.t, 1, 100)?,
                p: env.ranged("TESSERA_ARGON2_P", Argon2Params::OWASP.p, 1, 64)?,
            },
            smtp_url,
            smtp_ca_file: env.get("TESSERA_SMTP_CA_FILE").map(PathBuf::from),
            mail_from: env
                .get("TESSERA_MAIL_FROM")
                .unwrap_or_else(|| "Tessera <no-reply@localhost>".into()),
            public_url,
            mail_poll_ms: env.ranged("TESSERA_MAIL_POLL_MS", 1000, 50, 60_000)?,
            revocation_poll_ms: env.ranged("TESSERA_REVOCATION_POLL_MS", 250, 50, 1_000)?,
            breached_passwords_url,
            captcha,
            log_filter: env.get("TESSERA_LOG").unwrap_or_else(|| "info".into()),
            log_format,
            dev,
        })
    }

    /// Whether the embedded SQLite backend is in use.
    #[must_use]
    pub fn is_embedded(&self) -> bool {
        self.database_url.is_none()
    }
}

struct Source<'a>(&'a HashMap<String, String>);

impl Source<'_> {
    fn get(&self, var: &str) -> Option<String> {
        self.0.get(var).filter(|v| !v.is_empty()).cloned()
    }

    /// A secret from `VAR`, or from the file named by `VAR_FILE`; both set is an error.
    /// A secret that is the base64 of exactly 32 bytes (a master key).
    fn key_bytes(&self, var: &str) -> Result<Option<[u8; 32]>, ConfigError> {
        self.secret(var)?
            .map(|text| {
                STANDARD
                    .decode(text.trim())
                    .ok()
                    .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                    .ok_or_else(|| invalid(var, "must be the base64 of exactly 32 bytes"))
            })
            .transpose()
    }

    fn secret(&self, var: &str) -> Result<Option<String>, ConfigError> {
        let file_var = format!("{var}_FILE");
        match (self.get(var), self.get(&file_var)) {
            (Some(_), Some(_)) => Err(invalid(
                var,
                format!("set either {var} or {file_var}, not both"),
            )),
            (Some(value), None) => Ok(Some(value)),
            (None, Some(path)) => std::fs::read_to_string(&path)
                .map(|s| Some(s.trim_end_matches(['\n', '\r']).to_owned()))
                .map_err(|e| invalid(&file_var, format!("cannot read {path}: {e}"))),
            (None, None) => Ok(None),
        }
    }

    fn parse<T: std::str::FromStr>(
        &self,
        var: &str,
        default: &str,
        what: &str,
    ) -> Result<T, ConfigError> {
        let text = self.get(var).unwrap_or_else(|| default.to_owned());
        text.parse()
            .map_err(|_| invalid(var, format!("'{text}' is not {what}")))
    }

    /// `TESSERA_SESSION_IDLE_SECS`: 0, or at least an access token's lifetime (a shorter limit
    /// would end sessions whose client refreshes only when its access token expires).
    fn session_idle_secs(&self) -> Result<u64, ConfigError> {
        const VAR: &str = "TESSERA_SESSION_IDLE_SECS";
        use tessera_core::lifetimes::{ACCESS_TOKEN_SECS, REFRESH_FAMILY_SECS};
        let secs = self.ranged(VAR, 0, 0, REFRESH_FAMILY_SECS)?;
        if secs != 0 && secs < ACCESS_TOKEN_SECS {
            return Err(invalid(
                VAR,
                format!("{secs} is shorter than an access token's {ACCESS_TOKEN_SECS} s (0 turns the limit off)"),
            ));
        }
        Ok(secs)
    }

    fn ranged<T>(&self, var: &str, default: T, min: T, max: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(text) = self.get(var) else {
            return Ok(default);
        };
        let value: T = text
            .parse()
            .map_err(|_| invalid(var, format!("'{text}' is not a whole number")))?;
        if value < min || value > max {
            return Err(invalid(var, format!("{value} is outside {min}..={max}")));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_map(&map)
    }

    #[test]
    fn defaults_run_embedded_on_loopback() {
        let config = config(&[]).expect("defaults are valid");
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert!(config.is_embedded());
        assert_eq!(config.password_min_length, 12);
        assert_eq!(config.argon2, Argon2Params::OWASP);
        assert_eq!(config.session_idle_secs, 0);
        assert!(!config.dev);
        // Logs are pretty on a terminal and JSON for a collector, unless chosen.
        assert_eq!(config.log_format.resolve(true), LogFormat::Pretty);
        assert_eq!(config.log_format.resolve(false), LogFormat::Json);
    }

    /// Development mode is for embedded SQLite on a developer's machine only.
    #[test]
    fn development_mode_is_refused_with_postgresql() {
        assert!(config(&[("TESSERA_DEV", "1")]).expect("embedded").dev);
        let error = config(&[
            ("TESSERA_DEV", "1"),
            ("TESSERA_DATABASE_URL", "postgres://localhost/tessera"),
            (
                "TESSERA_MASTER_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ),
        ])
        .expect_err("refused")
        .to_string();
        assert!(error.contains("TESSERA_DEV"), "{error}");
        let chosen = config(&[("TESSERA_LOG_FORMAT", "json")]).expect("valid");
        assert_eq!(chosen.log_format.resolve(true), LogFormat::Json);
    }

    #[test]
    fn a_wrong_value_names_its_variable() {
        for (var, value) in [
            ("TESSERA_BIND", "nowhere"),
            ("TESSERA_DATABASE_URL", "mysql://x"),
            ("TESSERA_MASTER_KEY", "c2hvcnQ="),
            ("TESSERA_MASTER_KEY_ACCEPTED", "c2hvcnQ="),
            ("TESSERA_EDGE_SECRET", "short"),
            ("TESSERA_METRICS_TOKEN", "a-short-metrics-token"),
            ("TESSERA_IPV6_PREFIX", "16"),
            ("TESSERA_TRUSTED_PROXIES", "10.0.0.1, banana"),
            ("TESSERA_RATE_LIMIT_STORE", "redis"),
            ("TESSERA_PASSWORD_MIN_LENGTH", "4"),
            ("TESSERA_DEFAULT_TENANT", "Not A Slug"),
            ("TESSERA_HASH_QUEUE", "-1"),
            ("TESSERA_SMTP_URL", "http://relay"),
            ("TESSERA_PUBLIC_URL", "auth.example.com"),
            ("TESSERA_SESSION_IDLE_SECS", "899"),
            (
                "TESSERA_BREACHED_PASSWORDS_URL",
                "api.pwnedpasswords.com/range/",
            ),
            ("TESSERA_SESSION_IDLE_SECS", "604801"),
        ] {
            let error = config(&[(var, value)]).expect_err(var);
            assert_eq!(error.var, var, "{error}");
        }
    }

    #[test]
    fn postgres_without_a_relay_is_refused_by_name() {
        let error =
            config(&[("TESSERA_DATABASE_URL", "postgres://db/tessera")]).expect_err("no SMTP URL");
        assert_eq!(error.var, "TESSERA_SMTP_URL");
        let config = config(&[
            ("TESSERA_DATABASE_URL", "postgres://db/tessera"),
            ("TESSERA_SMTP_URL", "smtp://relay:2525"),
        ])
        .expect("valid");
        assert_eq!(config.smtp_url.as_deref(), Some("smtp://relay:2525"));
    }

    #[test]
    fn a_secret_comes_from_its_file_variant() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        std::fs::write(&path, format!("{}\n", "s".repeat(40))).expect("write");
        let config =
            config(&[("TESSERA_EDGE_SECRET_FILE", path.to_str().expect("utf-8"))]).expect("valid");
        assert_eq!(config.edge_secret, Some("s".repeat(40)));
        let both = self::config(&[
            ("TESSERA_EDGE_SECRET", &"x".repeat(40)),
            ("TESSERA_EDGE_SECRET_FILE", path.to_str().expect("utf-8")),
        ]);
        assert!(both.is_err());
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let config = config(&[
            (
                "TESSERA_DATABASE_URL",
                "postgres://app:hunter2-db@db/tessera",
            ),
            (
                "TESSERA_MASTER_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ),
            (
                "TESSERA_EDGE_SECRET",
                "an-edge-secret-that-must-not-leak-0123",
            ),
            (
                "TESSERA_METRICS_TOKEN",
                "a-metrics-token-that-must-not-leak",
            ),
            (
                "TESSERA_SMTP_URL",
                "smtps://mailer:smtp-must-not-leak@relay",
            ),
        ])
        .unwrap();
        let shown = format!("{config:?}");
        for secret in ["hunter2-db", "AAAAAAAA", "must-not-leak"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("edge_secret: \"***\""), "{shown}");
    }
}
