//! Storage: one trait, implemented for PostgreSQL (a schema per tenant) and embedded SQLite
//! (a file per tenant) by [`sql::SqlStore`]. Every tenant-scoped method takes the tenant's
//! validated slug, and the implementation derives the schema or file from it and nothing else,
//! so no query of one tenant can reach another's tables.

pub mod migrate;
pub mod sql;

use async_trait::async_trait;
use tessera_core::model::{Email, SessionId, TenantSlug, UserId};
use tessera_core::ratelimit::{Decision, Quota};
use tessera_core::token::TokenDigest;

/// A storage failure. Only `Conflict` is a client's doing; the rest are 500s.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value (tenant slug, email) already exists.
    #[error("already exists")]
    Conflict,
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A stored value could not be read back (a bug or a manual edit).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// Shared handle to the store.
pub type DynStore = std::sync::Arc<dyn Store>;

/// Result of a storage call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Its slug.
    pub slug: TenantSlug,
    /// Display name.
    pub name: String,
    /// Browser origins allowed to call the API (CORS).
    pub cors_origins: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A user of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Normalised email.
    pub email: Email,
    /// Display name.
    pub name: String,
    /// Role (`user`, `admin`, …).
    pub role: String,
    /// argon2id PHC string; `None` for passwordless accounts.
    pub password_hash: Option<String>,
    /// A disabled account cannot sign in.
    pub disabled: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Id.
    pub id: UserId,
    /// Normalised email.
    pub email: Email,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: String,
    /// argon2id PHC string.
    pub password_hash: Option<String>,
    /// Unix seconds.
    pub now: i64,
}

/// A session: one sign-in and its refresh family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Id (the `sid` claim).
    pub id: SessionId,
    /// Its user.
    pub user_id: UserId,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last refresh.
    pub last_used_at: i64,
    /// Absolute end of the family, Unix seconds.
    pub expires_at: i64,
    /// When it was ended, if it was.
    pub revoked_at: Option<i64>,
    /// Client IP at sign-in.
    pub ip: String,
    /// Client user agent at sign-in.
    pub user_agent: String,
    /// Authentication methods (RFC 8176).
    pub amr: Vec<String>,
}

impl Session {
    /// Whether the session may still be used at `now`.
    #[must_use]
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// What a refresh-token presentation led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// First use: the token was rotated to the given successor.
    Rotated(Session, User),
    /// A second use inside the grace window: the same successor stands.
    GraceReplay(Session, User),
    /// A rotated token used again after the grace window: the family was revoked.
    ReuseDetected(Session),
    /// Unknown token, or its family is revoked or expired.
    Invalid,
}

/// A signing key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Key id.
    pub kid: String,
    /// `EdDSA`.
    pub algorithm: String,
    /// Public key bytes.
    pub public_key: Vec<u8>,
    /// Private key sealed with the master key.
    pub private_key_sealed: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
    /// When it stopped signing; `None` for the current key.
    pub retired_at: Option<i64>,
}

/// A security event for the tenant's audit log. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Unix seconds.
    pub at: i64,
    /// `login_succeeded`, `login_failed`, `refresh`, `refresh_reuse_detected`, `logout`,
    /// `session_ended`.
    pub event: String,
    /// The user concerned, when known.
    pub user_id: Option<String>,
    /// The session concerned, when known.
    pub session_id: Option<String>,
    /// Client IP.
    pub ip: String,
    /// Client user agent.
    pub user_agent: String,
    /// Free text without secrets (e.g. the email tried on a failed sign-in).
    pub detail: String,
}

/// A new session with its first refresh token.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The session.
    pub session: Session,
    /// Digest of its first refresh token.
    pub refresh_digest: TokenDigest,
    /// The sign-in's audit event, written in the same transaction.
    pub audit: AuditEvent,
}

/// Everything Tessera stores.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Runs pending migrations of the global scope and of every tenant.
    async fn migrate(&self) -> StoreResult<()>;

    /// Creates and migrates a tenant's schema or file, then registers it.
    async fn create_tenant(&self, slug: &TenantSlug, name: &str, now: i64) -> StoreResult<Tenant>;
    /// A tenant by slug.
    async fn tenant(&self, slug: &TenantSlug) -> StoreResult<Option<Tenant>>;
    /// All tenants.
    async fn tenants(&self) -> StoreResult<Vec<Tenant>>;
    /// Replaces a tenant's allowed CORS origins.
    async fn set_cors_origins(&self, slug: &TenantSlug, origins: &[String]) -> StoreResult<()>;

    /// Adds a signing key and retires every other current key, atomically.
    async fn rotate_in_key(&self, key: &StoredKey, now: i64) -> StoreResult<()>;
    /// All signing keys, newest first.
    async fn keys(&self) -> StoreResult<Vec<StoredKey>>;

    /// Runs GCRA for `key` atomically against state shared by every node.
    async fn rate_limit(&self, key: &str, now_ms: u64, quota: Quota) -> StoreResult<Decision>;
    /// Deletes rate-limit state that is idle at `now_ms` (back at full capacity, so it decides
    /// nothing). Returns how many keys were removed.
    async fn sweep_rate_limits(&self, now_ms: u64) -> StoreResult<u64>;

    /// Creates a user; `Conflict` if the email is taken in this tenant.
    async fn create_user(&self, tenant: &TenantSlug, user: &NewUser) -> StoreResult<User>;
    /// A user by normalised email.
    async fn user_by_email(&self, tenant: &TenantSlug, email: &Email) -> StoreResult<Option<User>>;
    /// A user by id.
    async fn user_by_id(&self, tenant: &TenantSlug, id: &UserId) -> StoreResult<Option<User>>;
    /// Replaces a user's password hash (rehash on sign-in, password change).
    async fn set_password_hash(
        &self,
        tenant: &TenantSlug,
        id: &UserId,
        hash: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// Enables or disables a user.
    async fn set_disabled(
        &self,
        tenant: &TenantSlug,
        id: &UserId,
        disabled: bool,
        now: i64,
    ) -> StoreResult<()>;

    /// Creates a session and its first refresh token, atomically.
    async fn create_session(&self, tenant: &TenantSlug, new: &NewSession) -> StoreResult<()>;
    /// A session by id.
    async fn session(&self, tenant: &TenantSlug, id: &SessionId) -> StoreResult<Option<Session>>;
    /// A session and its user in one lookup: what every authenticated request needs.
    async fn session_with_user(
        &self,
        tenant: &TenantSlug,
        id: &SessionId,
    ) -> StoreResult<Option<(Session, User)>>;
    /// A user's active sessions, most recently used first.
    async fn active_sessions(
        &self,
        tenant: &TenantSlug,
        user: &UserId,
        now: i64,
    ) -> StoreResult<Vec<Session>>;
    /// Ends a session and its refresh family. Returns whether it was active.
    async fn revoke_session(
        &self,
        tenant: &TenantSlug,
        id: &SessionId,
        reason: &str,
        now: i64,
    ) -> StoreResult<bool>;
    /// Presents a refresh token. `successor` is the digest of the token that replaces it (derived
    /// from it, so that a concurrent second presentation names the same successor). `audit` is
    /// written, with the session and user filled in, in the rotation's own transaction.
    async fn rotate_refresh(
        &self,
        tenant: &TenantSlug,
        presented: &TokenDigest,
        successor: &TokenDigest,
        now: i64,
        grace_secs: i64,
        audit: &AuditEvent,
    ) -> StoreResult<RefreshOutcome>;

    /// Appends to the tenant's audit log.
    async fn audit(&self, tenant: &TenantSlug, event: &AuditEvent) -> StoreResult<()>;
    /// The tenant's latest audit events, newest first.
    async fn audit_events(&self, tenant: &TenantSlug, limit: i64) -> StoreResult<Vec<AuditEvent>>;
}
