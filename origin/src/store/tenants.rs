//! The tenant registry (global), and the provisioning of a tenant's schema or file.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor as _, Row as _, Transaction};
use tessera_core::model::TenantSlug;

use super::migrate::{self, Scope};
use super::{corrupt, dialect, is_unique_violation, Dialect, Store, StoreError, StoreResult};
use crate::allowed_origin::AllowedOrigin;
use crate::app_url::AppUrl;
use crate::relying_party::RelyingParty;

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Its slug.
    pub slug: TenantSlug,
    /// Display name.
    pub name: String,
    /// Browser origins allowed to call the API (CORS).
    pub cors_origins: Vec<String>,
    /// Where the hosted pages send the user afterwards (`--app-url`), if set.
    pub app_url: Option<String>,
    /// Its own WebAuthn relying party (`--rp-id`, `--webauthn-origin`), if set.
    pub relying_party: Option<RelyingParty>,
    /// Unix seconds.
    pub created_at: i64,
    /// Sign-up and sign-in rules.
    pub policy: TenantPolicy,
}

/// A tenant's sign-up and sign-in rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantPolicy {
    /// Whether anyone may register (`--registration open|closed`).
    pub registration_open: bool,
    /// Whether sign-in needs a confirmed email address (`--require-verified-email`).
    pub require_verified_email: bool,
    /// Whether every sign-in needs a second factor (`--require-mfa`).
    pub require_mfa: bool,
    /// Whether the team/vault API tells whether an address has an account
    /// (`--exist-email on|off`).
    pub email_lookup: bool,
}

impl Default for TenantPolicy {
    fn default() -> Self {
        Self {
            registration_open: true,
            require_verified_email: false,
            require_mfa: false,
            email_lookup: true,
        }
    }
}

/// What an operator sets for a new tenant. Written with the tenant's registry row in one
/// statement, so a tenant never exists, even for a moment, with rules it was not given (a
/// registration that should be closed, open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSettings {
    /// Display name.
    pub name: String,
    /// Browser origins allowed to call the API (CORS).
    pub cors_origins: Vec<AllowedOrigin>,
    /// Where the hosted pages send the user afterwards.
    pub app_url: Option<AppUrl>,
    /// Its own WebAuthn relying party; `None`: the one of `TESSERA_PUBLIC_URL`.
    pub relying_party: Option<RelyingParty>,
    /// Sign-up and sign-in rules.
    pub policy: TenantPolicy,
}

impl TenantSettings {
    /// A tenant named `name`, with no CORS origins and the default rules.
    #[must_use]
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            cors_origins: Vec::new(),
            app_url: None,
            relying_party: None,
            policy: TenantPolicy::default(),
        }
    }
}

/// Changes to a tenant's settings: `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantChanges {
    /// A new display name.
    pub name: Option<String>,
    /// A new list of allowed origins, replacing the old one (empty: none).
    pub cors_origins: Option<Vec<AllowedOrigin>>,
    /// A new app URL (`Some(None)`: none any more).
    pub app_url: Option<Option<AppUrl>>,
    /// A new WebAuthn relying party (`Some(None)`: the one of `TESSERA_PUBLIC_URL` again).
    pub relying_party: Option<Option<RelyingParty>>,
    /// Whether anyone may register.
    pub registration_open: Option<bool>,
    /// Whether sign-in needs a confirmed email address.
    pub require_verified_email: Option<bool>,
    /// Whether every sign-in needs a second factor.
    pub require_mfa: Option<bool>,
    /// Whether the team/vault API tells whether an address has an account.
    pub email_lookup: Option<bool>,
}

impl From<TenantPolicy> for TenantChanges {
    /// Every rule set to `policy`'s; name and origins unchanged.
    fn from(policy: TenantPolicy) -> Self {
        Self {
            registration_open: Some(policy.registration_open),
            require_verified_email: Some(policy.require_verified_email),
            require_mfa: Some(policy.require_mfa),
            email_lookup: Some(policy.email_lookup),
            ..Self::default()
        }
    }
}

/// The stored form of a list of origins: a JSON array.
fn origins_json(origins: &[AllowedOrigin]) -> StoreResult<String> {
    let origins: Vec<&str> = origins.iter().map(AllowedOrigin::as_str).collect();
    serde_json::to_string(&origins).map_err(|_| corrupt("cors origins"))
}

const TENANT_COLUMNS: &str =
    "slug, name, cors_origins, app_url, created_at, registration_open, require_verified_email, \
     require_mfa, email_lookup, rp_id, webauthn_origin";

fn tenant_from_row(row: &AnyRow) -> StoreResult<Tenant> {
    let slug: String = row.try_get("slug")?;
    let origins: String = row.try_get("cors_origins")?;
    let flag = |name: &str| row.try_get::<i64, _>(name).map(|v| v != 0);
    Ok(Tenant {
        slug: TenantSlug::parse(&slug).map_err(|_| corrupt("tenant slug"))?,
        name: row.try_get("name")?,
        cors_origins: serde_json::from_str(&origins).map_err(|_| corrupt("tenant cors_origins"))?,
        app_url: row.try_get("app_url")?,
        relying_party: match (
            row.try_get::<Option<String>, _>("rp_id")?,
            row.try_get::<Option<String>, _>("webauthn_origin")?,
        ) {
            (Some(id), Some(origin)) => {
                Some(RelyingParty::new(&id, &origin).map_err(|_| corrupt("tenant relying party"))?)
            }
            _ => None,
        },
        created_at: row.try_get("created_at")?,
        policy: TenantPolicy {
            registration_open: flag("registration_open")?,
            require_verified_email: flag("require_verified_email")?,
            require_mfa: flag("require_mfa")?,
            email_lookup: flag("email_lookup")?,
        },
    })
}

/// What a tenant's deletion ended.
#[derive(Debug)]
pub struct DeletedTenant {
    /// Its sessions that were still active: each is in the revocation log.
    pub sessions: Vec<tessera_core::model::SessionId>,
    /// How many of its service tokens were still unrevoked: each is in the revocation log.
    pub tokens: usize,
    /// PostgreSQL: the log entries written in the deletion's own transaction.
    log: Vec<(String, i64)>,
}

impl DeletedTenant {
    /// The log entries of `sessions` and service `tokens` of `slug` ended at `now`.
    fn of(
        slug: &TenantSlug,
        sessions: &[String],
        tokens: &[String],
        now: i64,
    ) -> StoreResult<Self> {
        use tessera_core::edge::Revocation;
        let at = u64::try_from(now).unwrap_or(0);
        let sessions = sessions
            .iter()
            .map(|id| tessera_core::model::SessionId::parse(id).map_err(|_| corrupt("session id")))
            .collect::<StoreResult<Vec<_>>>()?;
        let mut log = Vec::with_capacity(sessions.len() + tokens.len());
        for session in &sessions {
            let r = Revocation::ended_at(slug.as_str(), &session.to_string(), at);
            log.push((r.session, i64::try_from(r.until).unwrap_or(i64::MAX)));
        }
        for token in tokens {
            let r = Revocation::service_token_revoked(slug.as_str(), token, at);
            log.push((r.session, i64::try_from(r.until).unwrap_or(i64::MAX)));
        }
        log.push(tenant_deleted_entry(now));
        Ok(Self {
            sessions,
            tokens: tokens.len(),
            log,
        })
    }
}

/// The log entry that tells every origin node to forget a deleted tenant.
fn tenant_deleted_entry(now: i64) -> (String, i64) {
    let until = now
        .saturating_add(i64::try_from(tessera_core::edge::TENANT_DELETED_SECS).unwrap_or(i64::MAX));
    (tessera_core::edge::TENANT_DELETED.to_owned(), until)
}

/// PostgreSQL: the name of every spare tenant schema starts with this (a tenant's starts with
/// `tenant_`, so the two never meet).
const SPARE_SCHEMA_PREFIX: &str = "spare_";

/// Whether `name` is a spare schema's as [`Store::prepare_spare_schemas`] makes them: it is
/// written into DDL, so nothing else passes.
fn is_spare_schema_name(name: &str) -> bool {
    name.strip_prefix(SPARE_SCHEMA_PREFIX).is_some_and(|rest| {
        rest.len() == 16
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl Store {
    /// Creates a tenant with the default settings, named `name`: see
    /// [`Store::create_tenant_with`].
    pub async fn create_tenant(
        &self,
        slug: &TenantSlug,
        name: &str,
        now: i64,
    ) -> StoreResult<Tenant> {
        self.create_tenant_with(slug, &TenantSettings::named(name), now)
            .await
    }

    /// Creates a tenant's schema or file, migrated, and registers it with its settings;
    /// `Conflict` if the slug is taken. On PostgreSQL the schema (a spare made ahead and
    /// renamed, when one is ready), its tables and the registry row are one transaction; on
    /// SQLite the file is a copy of a pre-migrated template, registered once it is in place (a
    /// failure in between leaves an unregistered file that a retry replaces). Either way the
    /// tenant is registered with all its settings at once.
    pub async fn create_tenant_with(
        &self,
        slug: &TenantSlug,
        settings: &TenantSettings,
        now: i64,
    ) -> StoreResult<Tenant> {
        if self.tenant(slug).await?.is_some() {
            return Err(StoreError::Conflict);
        }
        let sql = self.global_sql(
            "INSERT INTO {p}tenants (slug, name, cors_origins, created_at, registration_open, \
             require_verified_email, require_mfa, email_lookup, app_url, rp_id, webauthn_origin) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        );
        let origins = origins_json(&settings.cors_origins)?;
        let policy = settings.policy;
        let insert = || {
            sqlx::query(&sql)
                .bind(slug.as_str())
                .bind(&settings.name)
                .bind(&origins)
                .bind(now)
                .bind(i64::from(policy.registration_open))
                .bind(i64::from(policy.require_verified_email))
                .bind(i64::from(policy.require_mfa))
                .bind(i64::from(policy.email_lookup))
                .bind(settings.app_url.as_ref().map(|u| u.as_str().to_owned()))
                .bind(settings.relying_party.as_ref().map(|p| p.id().to_owned()))
                .bind(
                    settings
                        .relying_party
                        .as_ref()
                        .map(|p| p.origin().to_owned()),
                )
        };
        let registered = match self.dialect {
            Dialect::Postgres => {
                let mut tx = self.dialect.begin_write(&self.global).await?;
                let claimed = self.claim_spare_schema(&mut tx, slug).await?;
                migrate::apply(&mut tx, self.dialect, Scope::Tenant(slug)).await?;
                let committed = match insert().execute(&mut *tx).await {
                    Ok(_) => tx.commit().await,
                    Err(e) => Err(e),
                };
                if committed.is_ok() && claimed {
                    self.spare_taken.notify_one();
                }
                committed
            }
            Dialect::Sqlite => {
                self.copy_template(slug).await?;
                insert().execute(&self.global).await.map(|_| ())
            }
        };
        match registered {
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict),
            Err(e) => Err(e.into()),
            Ok(()) => {
                self.mark_migrated(slug);
                Ok(Tenant {
                    slug: slug.clone(),
                    name: settings.name.clone(),
                    cors_origins: settings
                        .cors_origins
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                    app_url: settings.app_url.as_ref().map(|u| u.as_str().to_owned()),
                    relying_party: settings.relying_party.clone(),
                    created_at: now,
                    policy,
                })
            }
        }
    }

    /// PostgreSQL: renames the oldest ready spare schema to the tenant's, inside the creation's
    /// transaction, so that the migrations that follow find its tables and apply only what the
    /// spare lacks (one made by an older release). Answers whether one was taken. A spare that
    /// another creation is taking is skipped, not waited for; none is taken if the tenant's
    /// schema exists already (left by an earlier release), which the migrations then complete.
    async fn claim_spare_schema(
        &self,
        tx: &mut Transaction<'static, Any>,
        slug: &TenantSlug,
    ) -> StoreResult<bool> {
        let schema = slug.schema_name();
        let claim = self.global_sql(
            "DELETE FROM {p}spare_schemas WHERE name = ( \
               SELECT s.name FROM {p}spare_schemas s \
               WHERE NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) \
                 AND EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = s.name) \
               ORDER BY s.created_at, s.name LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING name",
        );
        let spare: Option<String> = sqlx::query_scalar(&claim)
            .bind(&schema)
            .fetch_optional(&mut **tx)
            .await?;
        let Some(spare) = spare else {
            return Ok(false);
        };
        if !is_spare_schema_name(&spare) {
            return Err(corrupt("spare schema name"));
        }
        tx.execute(format!("ALTER SCHEMA {spare} RENAME TO {schema}").as_str())
            .await?;
        Ok(true)
    }

    /// PostgreSQL: makes spare tenant schemas until `wanted` are ready, each migrated and
    /// recorded in a transaction of its own; answers how many it made. Creating a tenant then
    /// renames one (milliseconds) instead of running the tenant migrations' DDL (tens of
    /// milliseconds) while the operator waits. Records whose schema was dropped by hand are
    /// forgotten first. Two nodes making spares at once may leave a few more than `wanted`.
    /// Nothing to do on SQLite, whose equivalent is the template file.
    pub async fn prepare_spare_schemas(&self, wanted: usize) -> StoreResult<usize> {
        if self.dialect != Dialect::Postgres {
            return Ok(0);
        }
        sqlx::query(&self.global_sql(
            "DELETE FROM {p}spare_schemas \
             WHERE name NOT IN (SELECT nspname::text FROM pg_namespace)",
        ))
        .execute(&self.global)
        .await?;
        let missing = wanted.saturating_sub(self.spare_schemas().await?);
        let record =
            self.global_sql("INSERT INTO {p}spare_schemas (name, created_at) VALUES ($1, $2)");
        for _ in 0..missing {
            let name = format!(
                "{SPARE_SCHEMA_PREFIX}{}",
                tessera_core::secret::hex(&rand::random::<[u8; 8]>())
            );
            let mut tx = self.dialect.begin_write(&self.global).await?;
            migrate::apply(&mut tx, self.dialect, Scope::Spare(&name)).await?;
            sqlx::query(&record)
                .bind(&name)
                .bind(crate::clock::system_now_secs())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(missing)
    }

    /// PostgreSQL: how many spare tenant schemas are ready.
    pub async fn spare_schemas(&self) -> StoreResult<usize> {
        if self.dialect != Dialect::Postgres {
            return Ok(0);
        }
        let ready: i64 =
            sqlx::query_scalar(&self.global_sql("SELECT count(*) FROM {p}spare_schemas"))
                .fetch_one(&self.global)
                .await?;
        Ok(usize::try_from(ready).unwrap_or(0))
    }

    /// SQLite: puts a copy of the pre-migrated template in place as the tenant's file. The
    /// template is brought up to date once per process, under a lock that copies also take, so
    /// no copy ever sees it half-migrated.
    async fn copy_template(&self, slug: &TenantSlug) -> StoreResult<()> {
        let io = |what: &str, e: std::io::Error| StoreError::Corrupt(format!("{what}: {e}"));
        let template = self.tenant_dir.join(".template.db");
        let mut current = self.template.lock().await;
        if !*current {
            let pool = dialect::sqlite_pool(&template, 1).await?;
            migrate::run(&pool, self.dialect, Scope::Tenant(slug)).await?;
            // Everything into the main file, so that copying that one file copies it all.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&pool)
                .await?;
            pool.close().await;
            *current = true;
        }
        let file = self.tenant_file(slug);
        let part = file.with_extension("db.part");
        tokio::fs::copy(&template, &part)
            .await
            .map_err(|e| io("copying the tenant template", e))?;
        // A hard link never replaces: if another creator of the same slug got there first,
        // its file stays and this one fails (its registration will find the slug taken).
        let placed = tokio::fs::hard_link(&part, &file).await;
        let _ = tokio::fs::remove_file(&part).await;
        match placed {
            Ok(()) => Ok(()),
            // Left by an earlier attempt that failed before registering: nobody can be using
            // it (unregistered tenants are never opened), so it is replaced, and any WAL of
            // its own with it, which would otherwise be replayed into the new database.
            Err(e)
                if e.kind() == std::io::ErrorKind::AlreadyExists
                    && self.tenant(slug).await?.is_none() =>
            {
                for leftover in ["db-wal", "db-shm"] {
                    let _ = tokio::fs::remove_file(file.with_extension(leftover)).await;
                }
                tokio::fs::copy(&template, &file)
                    .await
                    .map(|_| ())
                    .map_err(|e| io("replacing a leftover tenant file", e))
            }
            Err(e) => Err(io("placing the tenant file", e)),
        }
    }

    /// A tenant by slug.
    pub async fn tenant(&self, slug: &TenantSlug) -> StoreResult<Option<Tenant>> {
        let sql = self.global_sql(&format!(
            "SELECT {TENANT_COLUMNS} FROM {{p}}tenants WHERE slug = $1"
        ));
        sqlx::query(&sql)
            .bind(slug.as_str())
            .fetch_optional(&self.global)
            .await?
            .as_ref()
            .map(tenant_from_row)
            .transpose()
    }

    /// All tenants, by slug.
    pub async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        let sql = self.global_sql(&format!(
            "SELECT {TENANT_COLUMNS} FROM {{p}}tenants ORDER BY slug"
        ));
        sqlx::query(&sql)
            .fetch_all(&self.global)
            .await?
            .iter()
            .map(tenant_from_row)
            .collect()
    }

    /// Up to `limit` tenants, newest first, after the tenant `after` (its creation time and
    /// slug: a page's last), for the operator API's pages.
    pub async fn tenants_page(
        &self,
        after: Option<(i64, &TenantSlug)>,
        limit: i64,
    ) -> StoreResult<Vec<Tenant>> {
        let rows = match after {
            None => {
                let sql = self.global_sql(&format!(
                    "SELECT {TENANT_COLUMNS} FROM {{p}}tenants \
                     ORDER BY created_at DESC, slug DESC LIMIT $1"
                ));
                sqlx::query(&sql)
                    .bind(limit)
                    .fetch_all(&self.global)
                    .await?
            }
            Some((created_at, slug)) => {
                let sql = self.global_sql(&format!(
                    "SELECT {TENANT_COLUMNS} FROM {{p}}tenants \
                     WHERE created_at < $1 OR (created_at = $1 AND slug < $2) \
                     ORDER BY created_at DESC, slug DESC LIMIT $3"
                ));
                sqlx::query(&sql)
                    .bind(created_at)
                    .bind(slug.as_str())
                    .bind(limit)
                    .fetch_all(&self.global)
                    .await?
            }
        };
        rows.iter().map(tenant_from_row).collect()
    }

    /// Deletes a tenant: every unended session and unrevoked service token goes into the
    /// revocation log (the edge refuses their tokens), then its registry row, its pending-mail
    /// entry and its schema or file go. `None` if there was no such tenant. The slug may be
    /// created again at once.
    ///
    /// PostgreSQL does it all in one transaction, the tenant's sessions and tokens locked
    /// against new rows first, so that no session opened meanwhile escapes the log. SQLite
    /// unregisters the tenant first (no new request finds it), ends what is left in the
    /// tenant's own unit of work, then closes and removes the file.
    pub async fn delete_tenant(
        &self,
        slug: &TenantSlug,
        now: i64,
    ) -> StoreResult<Option<DeletedTenant>> {
        let unregister = self.global_sql("DELETE FROM {p}tenants WHERE slug = $1");
        let undue = self.global_sql("DELETE FROM {p}mail_due WHERE slug = $1");
        let deleted = match self.dialect {
            Dialect::Postgres => {
                let schema = slug.schema_name();
                let mut tx = self.dialect.begin_write(&self.global).await?;
                let done = sqlx::query(&unregister)
                    .bind(slug.as_str())
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                sqlx::query(&undue)
                    .bind(slug.as_str())
                    .execute(&mut *tx)
                    .await?;
                // The schema name comes from a validated slug: [a-z0-9_] only.
                tx.execute(
                    format!("LOCK TABLE {schema}.sessions, {schema}.api_tokens IN EXCLUSIVE MODE")
                        .as_str(),
                )
                .await?;
                let sessions: Vec<String> = sqlx::query_scalar(&format!(
                    "SELECT id FROM {schema}.sessions WHERE revoked_at IS NULL AND expires_at > $1"
                ))
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
                let tokens: Vec<String> = sqlx::query_scalar(&format!(
                    "SELECT id FROM {schema}.api_tokens WHERE revoked_at IS NULL"
                ))
                .fetch_all(&mut *tx)
                .await?;
                let deleted = DeletedTenant::of(slug, &sessions, &tokens, now)?;
                super::revocation_log::append(
                    &mut tx,
                    self.dialect,
                    slug.as_str(),
                    &deleted.log,
                    now,
                )
                .await?;
                tx.execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str())
                    .await?;
                tx.commit().await?;
                deleted
            }
            Dialect::Sqlite => {
                let done = sqlx::query(&unregister)
                    .bind(slug.as_str())
                    .execute(&self.global)
                    .await?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                sqlx::query(&undue)
                    .bind(slug.as_str())
                    .execute(&self.global)
                    .await?;
                let mut tx = self.write(slug).await?;
                let sessions = tx.sessions().end_all("tenant_deleted", now).await?;
                let tokens = tx.api_tokens().revoke_all(now).await?;
                let (subject, until) = tenant_deleted_entry(now);
                tx.revoked(subject, u64::try_from(until).unwrap_or(0), now);
                tx.commit().await?;
                if let Some(pool) = self.tenant_pools.remove(slug) {
                    pool.close().await;
                }
                let file = self.tenant_file(slug);
                for path in [
                    file.with_extension("db-wal"),
                    file.with_extension("db-shm"),
                    file.clone(),
                ] {
                    match tokio::fs::remove_file(&path).await {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            return Err(StoreError::Corrupt(format!(
                                "removing {}: {e}",
                                path.display()
                            )))
                        }
                        _ => {}
                    }
                }
                DeletedTenant {
                    sessions,
                    tokens,
                    log: Vec::new(),
                }
            }
        };
        self.forget_migrated(slug);
        if !deleted.log.is_empty() {
            self.revocations_written.notify_waiters();
        }
        Ok(Some(deleted))
    }

    /// Applies `changes` to a tenant's settings in one statement (what is not given stays as
    /// it is, whatever another change did meanwhile); answers the tenant as it now is, or
    /// `None` if there is no such tenant. Running servers see the change within the tenant
    /// directory's cache time.
    pub async fn update_tenant(
        &self,
        slug: &TenantSlug,
        changes: &TenantChanges,
    ) -> StoreResult<Option<Tenant>> {
        let sql = self.global_sql(&format!(
            "UPDATE {{p}}tenants SET name = COALESCE($1, name), \
             cors_origins = COALESCE($2, cors_origins), \
             registration_open = COALESCE($3, registration_open), \
             require_verified_email = COALESCE($4, require_verified_email), \
             require_mfa = COALESCE($5, require_mfa), \
             email_lookup = COALESCE($6, email_lookup), \
             app_url = CASE WHEN $8 = 1 THEN $9 ELSE app_url END, \
             rp_id = CASE WHEN $10 = 1 THEN $11 ELSE rp_id END, \
             webauthn_origin = CASE WHEN $10 = 1 THEN $12 ELSE webauthn_origin END \
             WHERE slug = $7 RETURNING {TENANT_COLUMNS}"
        ));
        let origins = changes
            .cors_origins
            .as_deref()
            .map(origins_json)
            .transpose()?;
        let flag = |value: Option<bool>| value.map(i64::from);
        let party = changes.relying_party.as_ref().and_then(Option::as_ref);
        sqlx::query(&sql)
            .bind(changes.name.as_deref())
            .bind(origins)
            .bind(flag(changes.registration_open))
            .bind(flag(changes.require_verified_email))
            .bind(flag(changes.require_mfa))
            .bind(flag(changes.email_lookup))
            .bind(slug.as_str())
            .bind(i64::from(changes.app_url.is_some()))
            .bind(
                changes
                    .app_url
                    .as_ref()
                    .and_then(|url| url.as_ref().map(|u| u.as_str().to_owned())),
            )
            .bind(i64::from(changes.relying_party.is_some()))
            .bind(party.map(|p| p.id().to_owned()))
            .bind(party.map(|p| p.origin().to_owned()))
            .fetch_optional(&self.global)
            .await?
            .as_ref()
            .map(tenant_from_row)
            .transpose()
    }
}
