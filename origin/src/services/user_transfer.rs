//! Moving users in and out of a tenant: the import of accounts with their password hashes and
//! authenticator secrets (`tessera user import`, `POST /api/auth/admin/users/import`), and the
//! export in the same format (`tessera user export`), so that an export imports into another
//! Tessera unchanged.
//!
//! An import is idempotent (an address already in the tenant is skipped and reported) and
//! all-or-nothing per batch of [`BATCH_USERS`] accounts: an interrupted import leaves whole
//! batches, and running it again imports what is missing. Nothing is hashed at import: hashes
//! are checked and bounded (`imported_hash`) and replaced by argon2id at the first sign-in.

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tessera_core::model::{Email, TenantSlug, UserId};
use tessera_core::totp::TotpSecret;

use super::account::ROLES;
use super::totp::seal_context;
use super::{Actor, ServiceError, ServiceResult};
use crate::clock::SharedClock;
use crate::imported_hash::{self, FirebaseParams};
use crate::keys::MasterKey;
use crate::store::{corrupt, DynStore, User};
use crate::tenants::Directory;

/// Accounts written in one transaction.
pub const BATCH_USERS: usize = 1_000;
/// The longest line read (a user with every field takes well under 1 KiB).
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// How far in the future a `created_at` may be (clocks of other systems drift).
const CREATED_AT_SLACK_SECS: i64 = 24 * 3600;

/// One user, one line of JSON Lines: what an import reads and an export writes.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserLine {
    /// The address (normalised as at registration).
    pub email: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Whether the address is confirmed.
    #[serde(default)]
    pub email_verified: bool,
    /// `user` (default) or `admin`.
    #[serde(default = "default_role")]
    pub role: String,
    /// When the account was created, Unix seconds (default: the time of the import).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    /// The password hash in one of the formats of docs/API.md ("Importing users"); none for
    /// an account that signs in by emailed code or passkey.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// Firebase's `salt` of the user, standard base64: `password_hash` is then Firebase's
    /// modified scrypt, with the project's parameters given once per import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_salt: Option<String>,
    /// The authenticator app's secret, RFC 4648 base32 (at least 128 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_secret: Option<String>,
    /// A disabled account cannot sign in (default false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

fn default_role() -> String {
    "user".into()
}

impl std::fmt::Debug for UserLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserLine")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// What happened to one line that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LineOutcome {
    /// The line's number, from 1 (over HTTP, the user's position in `users`).
    pub line: usize,
    /// `skipped` (the address is in the tenant, or earlier in the file) or `refused`.
    pub outcome: &'static str,
    /// A stable code: `email_taken`, `duplicate_in_file`, `invalid_json`, `invalid_email`,
    /// `invalid_name`, `invalid_role`, `invalid_created_at`, `invalid_totp_secret`,
    /// `line_too_long`, `unknown_hash_format`, `malformed_hash`, `hash_too_costly`,
    /// `firebase_params_required`.
    pub code: &'static str,
    /// Why, for people.
    pub detail: String,
}

/// The summary of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportSummary {
    /// Accounts created.
    pub imported: usize,
    /// Lines whose address was already in the tenant (or earlier in the input).
    pub skipped: usize,
    /// Lines refused, each in `lines` with why.
    pub refused: usize,
    /// Every line skipped or refused, in input order.
    pub lines: Vec<LineOutcome>,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "imported {}, skipped {}, refused {}",
            self.imported, self.skipped, self.refused
        )
    }
}

/// A line that passed every check, waiting for its batch.
struct Accepted {
    line: usize,
    user: User,
    totp: Option<TotpSecret>,
}

/// Imports and exports.
#[derive(Clone)]
pub struct UserTransfer {
    store: DynStore,
    tenants: Arc<Directory>,
    master: MasterKey,
    clock: SharedClock,
}

impl UserTransfer {
    /// The service over its dependencies.
    #[must_use]
    pub fn new(
        store: DynStore,
        tenants: Arc<Directory>,
        master: MasterKey,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            tenants,
            master,
            clock,
        }
    }

    /// Imports `lines` (numbered from 1, blank ones ignored) into `tenant`. `progress` is
    /// called with the number of lines read after each batch commits. A line that cannot be
    /// read as text ends the import with an error, after the batches already committed.
    pub async fn import<L>(
        &self,
        tenant: &TenantSlug,
        lines: L,
        firebase: Option<&FirebaseParams>,
        by: &Actor,
        mut progress: impl FnMut(usize),
    ) -> ServiceResult<ImportSummary>
    where
        L: IntoIterator<Item = std::io::Result<String>>,
    {
        self.tenants
            .get(tenant)
            .await?
            .ok_or(ServiceError::TenantNotFound)?;
        let mut summary = ImportSummary::default();
        let mut seen = HashSet::new();
        let mut batch = Vec::with_capacity(BATCH_USERS);
        let mut read = 0;
        for (index, line) in lines.into_iter().enumerate() {
            let number = index + 1;
            read = number;
            let line = line.map_err(|e| ServiceError::InvalidInput {
                code: "unreadable_input",
                detail: format!("line {number} could not be read: {e}"),
            })?;
            if line.trim().is_empty() {
                continue;
            }
            match self.accept_line(number, &line, firebase) {
                Err(outcome) => summary.push(outcome),
                Ok(accepted) if !seen.insert(accepted.user.email.clone()) => {
                    summary.push(LineOutcome {
                        line: number,
                        outcome: "skipped",
                        code: "duplicate_in_file",
                        detail: format!("{} is on an earlier line", accepted.user.email),
                    });
                }
                Ok(accepted) => batch.push(accepted),
            }
            if batch.len() == BATCH_USERS {
                self.write_batch(tenant, &mut batch, by, &mut summary)
                    .await?;
                progress(read);
            }
        }
        if !batch.is_empty() {
            self.write_batch(tenant, &mut batch, by, &mut summary)
                .await?;
        }
        progress(read);
        summary.lines.sort_by_key(|outcome| outcome.line);
        Ok(summary)
    }

    /// Checks one line; every refusal names its line.
    fn accept_line(
        &self,
        line: usize,
        text: &str,
        firebase: Option<&FirebaseParams>,
    ) -> Result<Accepted, LineOutcome> {
        let refuse = |code, detail| LineOutcome::refused(line, code, detail);
        if text.len() > MAX_LINE_BYTES {
            return Err(refuse(
                "line_too_long",
                format!("the line is longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
        let parsed: UserLine =
            serde_json::from_str(text).map_err(|e| refuse("invalid_json", e.to_string()))?;
        self.accept_user(line, parsed, firebase)
    }

    fn accept_user(
        &self,
        line: usize,
        given: UserLine,
        firebase: Option<&FirebaseParams>,
    ) -> Result<Accepted, LineOutcome> {
        let refuse = |code, detail| LineOutcome::refused(line, code, detail);
        let email =
            Email::parse(&given.email).map_err(|e| refuse("invalid_email", e.to_string()))?;
        let name = super::registration::checked_name(&given.name)
            .map_err(|e| refuse("invalid_name", e.to_string()))?
            .to_owned();
        if !ROLES.contains(&given.role.as_str()) {
            return Err(refuse(
                "invalid_role",
                format!(
                    "no role '{}': a user is one of {}",
                    given.role,
                    ROLES.join(", ")
                ),
            ));
        }
        let now = self.clock.now_secs();
        let created_at = given.created_at.unwrap_or(now);
        if !(0..=now + CREATED_AT_SLACK_SECS).contains(&created_at) {
            return Err(refuse(
                "invalid_created_at",
                "created_at must be Unix seconds, not in the future".into(),
            ));
        }
        let password_hash = match (&given.password_hash, &given.password_salt) {
            (Some(hash), salt) => Some(
                imported_hash::accept(hash, salt.as_deref(), firebase)
                    .map_err(|e| refuse(e.code(), e.to_string()))?,
            ),
            (None, Some(_)) => {
                return Err(refuse(
                    "malformed_hash",
                    "password_salt without password_hash".into(),
                ))
            }
            (None, None) => None,
        };
        let totp = match &given.totp_secret {
            None => None,
            Some(text) => Some(TotpSecret::from_base32(text).ok_or_else(|| {
                refuse(
                    "invalid_totp_secret",
                    "totp_secret must be RFC 4648 base32 of at least 128 bits".into(),
                )
            })?),
        };
        Ok(Accepted {
            line,
            user: User {
                id: UserId::from_random_bytes(crate::clock::random()),
                email,
                name,
                role: given.role,
                password_hash,
                disabled: given.disabled,
                email_verified_at: given.email_verified.then_some(created_at),
                mfa_email: false,
                created_at,
            },
            totp,
        })
    }

    /// Writes one batch in one transaction: the users whose address is new, their
    /// authenticators, and one audit event.
    async fn write_batch(
        &self,
        tenant: &TenantSlug,
        batch: &mut Vec<Accepted>,
        by: &Actor,
        summary: &mut ImportSummary,
    ) -> ServiceResult<()> {
        let now = self.clock.now_secs();
        let users: Vec<User> = batch.iter().map(|a| a.user.clone()).collect();
        let mut tx = self.store.write(tenant).await?;
        let inserted: HashSet<Email> = tx.users().import(&users, now).await?.into_iter().collect();
        let mut outcomes = Vec::new();
        for accepted in batch.iter() {
            if !inserted.contains(&accepted.user.email) {
                outcomes.push(LineOutcome {
                    line: accepted.line,
                    outcome: "skipped",
                    code: "email_taken",
                    detail: format!("{} is already in tenant {tenant}", accepted.user.email),
                });
                continue;
            }
            if let Some(secret) = &accepted.totp {
                let sealed = self.master.seal(
                    &seal_context(tenant.as_str(), &accepted.user.id),
                    secret.expose(),
                );
                tx.totp()
                    .put_confirmed(&accepted.user.id, &sealed, now)
                    .await?;
            }
        }
        let detail = format!(
            "imported={} skipped={}",
            inserted.len(),
            batch.len() - inserted.len()
        );
        tx.audit()
            .append(&by.event("users_imported", None, &detail, now))
            .await?;
        tx.commit().await?;
        summary.imported += inserted.len();
        for outcome in outcomes {
            summary.push(outcome);
        }
        batch.clear();
        Ok(())
    }

    /// Up to `limit` users of `tenant` as import lines, in address order after `after` (the
    /// last address of the previous page). Authenticator secrets are opened from their seal:
    /// an export is as secret as the password hashes it carries.
    pub async fn export_page(
        &self,
        tenant: &TenantSlug,
        after: Option<&Email>,
        limit: i64,
    ) -> ServiceResult<Vec<UserLine>> {
        self.tenants
            .get(tenant)
            .await?
            .ok_or(ServiceError::TenantNotFound)?;
        let mut tx = self.store.read(tenant).await?;
        let page = tx.users().export_page(after, limit).await?;
        page.into_iter()
            .map(|(user, sealed)| {
                let totp_secret = sealed
                    .map(|sealed| {
                        self.master
                            .open(&seal_context(tenant.as_str(), &user.id), &sealed)
                            .and_then(|bytes| TotpSecret::from_bytes(&bytes).ok())
                            .map(|secret| secret.to_base32())
                            .ok_or_else(|| corrupt("an authenticator secret that does not open"))
                    })
                    .transpose()?;
                Ok(UserLine {
                    email: user.email.as_str().to_owned(),
                    name: user.name,
                    email_verified: user.email_verified_at.is_some(),
                    role: user.role,
                    created_at: Some(user.created_at),
                    password_hash: user.password_hash,
                    password_salt: None,
                    totp_secret,
                    disabled: user.disabled,
                })
            })
            .collect()
    }
}

impl LineOutcome {
    fn refused(line: usize, code: &'static str, detail: String) -> Self {
        Self {
            line,
            outcome: "refused",
            code,
            detail,
        }
    }
}

impl ImportSummary {
    fn push(&mut self, outcome: LineOutcome) {
        match outcome.outcome {
            "skipped" => self.skipped += 1,
            _ => self.refused += 1,
        }
        self.lines.push(outcome);
    }
}
